/**
 * The conformance suite of the `MetadataStore` port, written once and run against every implementation.
 *
 * Every test builds the layer afresh and works in a namespace of its own: a real Redis keeps its state between tests
 * and between runs.
 *
 * @since 0.1.0
 */
// first: on Effect 4, our error that says what to do rather than one from @effect/vitest
import "../../src/internal/effectVersion.js"
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as crypto from "node:crypto"
import type { MetadataStoreError } from "../../src/CacheError.js"
import type { CommitResult, EntryRecord } from "../../src/MetadataStore.js"
import { MetadataStore } from "../../src/MetadataStore.js"

/**
 * @since 0.1.0
 */
export interface MetadataStoreSuiteOptions {
  /**
   * - `"test"`: the store reads Effect's `Clock`; the tests run under `TestClock` and move time with
   *   `TestClock.adjust`, so they are exact and instant.
   * - `"live"`: the store keeps time itself (Redis `PEXPIRE`/`PX`), which `TestClock` cannot drive; the tests run
   *   with the live clock, short TTLs and real sleeps.
   */
  readonly clock: "test" | "live"
  /**
   * With the live clock: the TTL of records and locks in the expiry tests, milliseconds (default 400). The tests
   * check at about half of it and a quarter past it, so raise it if the backend is slow to answer.
   */
  readonly ttlMs?: number | undefined
  /**
   * Shards per namespace (a Redis store's `slotsPerNamespace`; default 1). With more than one, the store keeps its
   * share of `maxEntries` per shard and orders entries within a shard: the tests of the LRU order put their entries
   * in one shard (`shardOf`) and give the namespace `shards` times their limit; a `clearNamespace` step works on every
   * shard at once (bounded per shard).
   */
  readonly shards?: number | undefined
  /** with `shards`: the shard a hash falls in, so that the tests of the LRU order can keep their entries in one */
  readonly shardOf?: ((hash: string) => number) | undefined
}

const runId = Math.random().toString(36).slice(2, 10)
let namespaceCounter = 0

/**
 * A namespace no other test, suite or earlier run has used; valid for `CacheKey.validateNamespace`.
 *
 * @since 0.1.0
 */
export const freshNamespace: Effect.Effect<string> = Effect.sync(() => `t-${runId}-${++namespaceCounter}`)

/**
 * A sha256 hex hash, as `CacheKey.hash` produces.
 *
 * @since 0.1.0
 */
export const hashOf = (label: string): string => crypto.createHash("sha256").update(label).digest("hex")

let writeCounter = 0

/**
 * A record whose object key is unique per call, as the cache writes them.
 *
 * @since 0.1.0
 */
export const makeRecord = (
  namespace: string,
  hash: string,
  overrides?: Partial<EntryRecord>
): EntryRecord => ({
  hash,
  namespace,
  objectKey: `${namespace}/${hash.slice(0, 2)}/${hash}-w${++writeCounter}`,
  format: "json",
  compression: "none",
  rawSize: 12,
  storedSize: 12,
  checksum: `sha256:${hashOf(`payload-${writeCounter}`)}`,
  createdAt: 1_700_000_000_000,
  ttlMs: 3_600_000,
  codecVersion: 1,
  keyPreview: `key ${hash.slice(0, 8)}`,
  ...overrides
})

const sorted = (keys: ReadonlyArray<string>): Array<string> => [...keys].sort()

let tokenCounter = 0

/**
 * Commit `record` the way a writer does: take the lock of its hash under a fresh token, then commit under it.
 *
 * @since 0.1.0
 */
export const commitHeld = (
  store: MetadataStore["Type"],
  record: EntryRecord,
  maxEntries: number
): Effect.Effect<CommitResult, MetadataStoreError> =>
  Effect.gen(function*() {
    const token = `writer-${++tokenCounter}`
    const held = yield* store.acquireLock(record.namespace, record.hash, { token, lockTtlMs: 60_000 })
    if (!held) return yield* Effect.dieMessage(`commitHeld: the lock of ${record.hash} is held by another token`)
    return yield* store.commit(record, { token, maxEntries })
  })

const committed = (obsolete: ReadonlyArray<string>, evicted: number): CommitResult => ({
  _tag: "Committed",
  obsolete,
  evicted
})

/** The obsolete keys and eviction count of a commit that must have happened. */
const committedOf = (result: CommitResult) => {
  if (result._tag !== "Committed") throw new Error("expected the commit to happen, got LockLost")
  return result
}

/**
 * Registers a `describe` block named `name` that runs the conformance tests against `layer`.
 *
 * @example
 * metadataStoreSuite("RedisMetadataStore (standalone)", RedisMetadataStore.layer({ url }), { clock: "live" })
 *
 * @since 0.1.0
 */
export const metadataStoreSuite = (
  name: string,
  layer: Layer.Layer<MetadataStore, unknown>,
  options: MetadataStoreSuiteOptions
): void => {
  const testClock = options.clock === "test"
  /** TTL of records and locks in the expiry tests. */
  const ttl = testClock ? 10_000 : (options.ttlMs ?? 400)
  const advance = (millis: number): Effect.Effect<void> =>
    testClock ? TestClock.adjust(Duration.millis(millis)) : Effect.sleep(Duration.millis(millis))
  /** Between two accesses, so that millisecond LRU scores differ. */
  const tick = advance(testClock ? 1 : 5)
  /** Well inside a TTL started now. */
  const halfTtl = advance(ttl / 2)
  /** From half of a TTL to well past its end. */
  const pastTtl = advance(ttl * 3 / 4)

  const lockOf = (token: string, lockTtlMs = 60_000) => ({ token, lockTtlMs })

  /** Clear a namespace step by step, as the cache does; the object keys of every step. */
  const clearAll = (namespace: string) =>
    Effect.gen(function*() {
      const store = yield* MetadataStore
      const keys: Array<string> = []
      for (let step = 0; step < 1000; step++) {
        const result = yield* store.clearNamespace(namespace)
        keys.push(...result.objectKeys)
        if (result.done) return keys
      }
      return yield* Effect.dieMessage("clearNamespace never finished")
    })

  // Each test builds the layer itself rather than sharing it through `it.layer`: in @effect/vitest 0.30, `it.layer`
  // overwrites the methods of the global `it`, which would change the environment of every later test in the file.
  const test = (title: string, self: () => Effect.Effect<void, unknown, MetadataStore>): void =>
    (testClock ? it.effect : it.live)(title, () => Effect.provide(self(), layer))
  // The tests of the LRU order hold within one shard: their entries go to the first, whose share of the namespace's
  // limit is the limit they mean.
  const shards = options.shards ?? 1
  const shardOf = options.shardOf ?? (() => 0)
  /** `hashOf(label)`, or with shards a hash derived from `label` that falls in the first shard */
  const oneShard = (label: string): string => {
    for (let k = 0;; k++) {
      const hash = hashOf(k === 0 ? label : `${label}#${k}`)
      if (shards === 1 || shardOf(hash) === 0) return hash
    }
  }
  /** the namespace's limit that gives each shard `n` */
  const perShard = (n: number): number => n * shards

  describe(name, () => {
    test("lookup of an unknown hash takes the lock; nothing is stored", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const hash = hashOf("a")
        assert.deepStrictEqual(yield* store.lookup(ns, hash, lockOf("A")), { _tag: "Acquired" })
        assert.strictEqual(yield* store.size(ns), 0)
        assert.deepStrictEqual(yield* store.getMany(ns, [hash]), [Option.none()])
        assert.deepStrictEqual(yield* store.getMany(ns, []), [])
      }))

    test("commit then lookup is a Hit with the same record", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const hash = hashOf("a")
        const record = makeRecord(ns, hash)
        assert.deepStrictEqual(yield* store.lookup(ns, hash, lockOf("A")), { _tag: "Acquired" })
        const result = yield* store.commit(record, { token: "A", maxEntries: 10 })
        assert.deepStrictEqual(result, committed([], 0))
        assert.deepStrictEqual(yield* store.lookup(ns, hash, lockOf("B")), { _tag: "Hit", record })
        assert.deepStrictEqual(yield* store.getMany(ns, [hash]), [Option.some(record)])
        assert.strictEqual(yield* store.size(ns), 1)
      }))

    test("getMany is aligned with its input", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const a = makeRecord(ns, hashOf("a"))
        const b = makeRecord(ns, hashOf("b"))
        yield* commitHeld(store, a, 10)
        yield* commitHeld(store, b, 10)
        assert.deepStrictEqual(
          yield* store.getMany(ns, [hashOf("x"), b.hash, a.hash, hashOf("y"), b.hash]),
          [Option.none(), Option.some(b), Option.some(a), Option.none(), Option.some(b)]
        )
      }))

    test("scan yields each live record of the namespace once by hash, not other namespaces', not expired ones", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        if (store.scan === undefined) return
        const scan = store.scan
        const ns = yield* freshNamespace
        const other = yield* freshNamespace
        assert.deepStrictEqual(yield* Stream.runCollect(scan(ns)).pipe(Effect.map((c) => Array.from(c))), [])
        // more than one page of a store that pages (Redis scans 500 at a time), over every shard
        const records = Array.from({ length: 1100 }, (_, i) => makeRecord(ns, hashOf(`scan-${i}`)))
        yield* Effect.forEach(records, (record) => commitHeld(store, record, 10_000), { concurrency: 16 })
        yield* commitHeld(store, makeRecord(other, hashOf("elsewhere")), 10)
        const shortLived = makeRecord(ns, hashOf("short"), { ttlMs: ttl })
        yield* commitHeld(store, shortLived, 10_000)
        const seen = new Map<string, EntryRecord>()
        yield* Stream.runForEach(scan(ns), (record) => Effect.sync(() => seen.set(record.hash, record)))
        assert.strictEqual(seen.size, records.length + 1)
        assert.deepStrictEqual(seen.get(records[7]!.hash), records[7])
        yield* advance(ttl + ttl / 2)
        const after = new Set<string>()
        yield* Stream.runForEach(scan(ns), (record) => Effect.sync(() => after.add(record.hash)))
        assert.strictEqual(after.size, records.length)
        assert.isFalse(after.has(shortLived.hash))
      }))

    test("the same hash in two namespaces is two entries", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns1 = yield* freshNamespace
        const ns2 = yield* freshNamespace
        const hash = hashOf("shared")
        const r1 = makeRecord(ns1, hash)
        yield* commitHeld(store, r1, 10)
        assert.deepStrictEqual(yield* store.lookup(ns2, hash, lockOf("A")), { _tag: "Acquired" })
        assert.deepStrictEqual(yield* store.getMany(ns2, [hash]), [Option.none()])
        assert.strictEqual(yield* store.size(ns2), 0)

        const r2 = makeRecord(ns2, hash)
        assert.deepStrictEqual(yield* store.commit(r2, { token: "A", maxEntries: 10 }), committed([], 0))
        assert.deepStrictEqual(yield* store.lookup(ns1, hash, lockOf("B")), { _tag: "Hit", record: r1 })
        assert.deepStrictEqual(yield* store.lookup(ns2, hash, lockOf("B")), { _tag: "Hit", record: r2 })

        assert.deepStrictEqual(yield* store.remove(ns1, [hash]), [r1.objectKey])
        assert.deepStrictEqual(yield* store.getMany(ns2, [hash]), [Option.some(r2)])
      }))

    test("a commit replacing a record returns the old object key, not counted as evicted", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const hash = hashOf("a")
        const first = makeRecord(ns, hash)
        const second = makeRecord(ns, hash, { storedSize: 99 })
        yield* commitHeld(store, first, 1)
        assert.deepStrictEqual(yield* commitHeld(store, second, 1), committed([first.objectKey], 0))
        assert.deepStrictEqual(yield* store.lookup(ns, hash, lockOf("A")), { _tag: "Hit", record: second })
        assert.strictEqual(yield* store.size(ns), 1)

        // The same object key is still referenced, so it is not obsolete.
        const third = { ...second, storedSize: 100 }
        assert.deepStrictEqual(yield* commitHeld(store, third, 1), committed([], 0))
        assert.deepStrictEqual(yield* store.getMany(ns, [hash]), [Option.some(third)])
      }))

    test("an inline record (its payload in the record, no object key) reads back byte for byte", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        // every byte value, the separators a store might use, and a large random payload
        const small = Uint8Array.from({ length: 512 }, (_, i) => i % 256)
        const large = new Uint8Array(crypto.randomBytes(100_000))
        for (const [label, payload] of [["small", small], ["large", large], ["empty", new Uint8Array(0)]] as const) {
          const hash = hashOf(`inline-${label}`)
          const record = makeRecord(ns, hash, { objectKey: "", payload, storedSize: payload.length })
          assert.deepStrictEqual(yield* commitHeld(store, record, 10), committed([], 0))
          const found = yield* store.lookup(ns, hash, lockOf("A"))
          assert.deepStrictEqual(found, { _tag: "Hit", record })
          assert.strictEqual(found._tag === "Hit" ? found.record.payload?.constructor : undefined, Uint8Array)
          assert.deepStrictEqual(yield* store.getMany(ns, [hash]), [Option.some(record)])
        }
        assert.strictEqual(yield* store.size(ns), 3)
      }))

    test("a record written without a payload reads back without one", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const record = makeRecord(ns, hashOf("a"))
        yield* commitHeld(store, record, 10)
        const [found] = yield* store.getMany(ns, [record.hash])
        assert.isFalse(Object.hasOwn(Option.getOrThrow(found!), "payload"))
      }))

    test("replacing an object record by an inline one makes the object obsolete, and not the other way round", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const hash = hashOf("a")
        const object = makeRecord(ns, hash)
        const inline = makeRecord(ns, hash, { objectKey: "", payload: new Uint8Array([1, 2, 3]), storedSize: 3 })
        const objectKeys = (result: CommitResult) =>
          result._tag === "Committed" ? result.obsolete.filter((key) => key !== "") : []
        yield* commitHeld(store, object, 10)
        assert.deepStrictEqual(objectKeys(yield* commitHeld(store, inline, 10)), [object.objectKey])
        assert.deepStrictEqual(yield* store.getMany(ns, [hash]), [Option.some(inline)])
        const next = makeRecord(ns, hash)
        assert.deepStrictEqual(objectKeys(yield* commitHeld(store, next, 10)), [])
        assert.deepStrictEqual(yield* store.getMany(ns, [hash]), [Option.some(next)])
      }))

    test("remove, removeIf and clearNamespace report an inline record as \"\"", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const inlineRecord = (label: string) =>
          makeRecord(ns, hashOf(label), { objectKey: "", payload: new Uint8Array([9]), storedSize: 1 })
        for (const label of ["a", "b", "c", "d"]) yield* commitHeld(store, inlineRecord(label), 10)
        assert.deepStrictEqual(yield* store.remove(ns, [hashOf("a"), hashOf("x")]), [""])
        assert.isFalse(yield* store.removeIf(ns, hashOf("b"), "some/object"))
        assert.isTrue(yield* store.removeIf(ns, hashOf("b"), ""))
        assert.deepStrictEqual(yield* store.getMany(ns, [hashOf("b")]), [Option.none()])
        assert.deepStrictEqual(yield* clearAll(ns), ["", ""])
        assert.strictEqual(yield* store.size(ns), 0)
      }))

    test("a record lives for ttlMs after its commit; access does not extend it", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const record = makeRecord(ns, hashOf("a"), { ttlMs: ttl })
        const other = makeRecord(ns, hashOf("b"), { ttlMs: ttl * 100 })
        yield* commitHeld(store, record, 10)
        yield* commitHeld(store, other, 10)
        yield* halfTtl
        assert.deepStrictEqual(yield* store.lookup(ns, record.hash, lockOf("A")), { _tag: "Hit", record })
        assert.strictEqual(yield* store.size(ns), 2)
        yield* pastTtl
        assert.deepStrictEqual(yield* store.getMany(ns, [record.hash, other.hash]), [
          Option.none(),
          Option.some(other)
        ])
        assert.strictEqual(yield* store.size(ns), 1)
        assert.deepStrictEqual(yield* store.lookup(ns, record.hash, lockOf("A")), { _tag: "Acquired" })
      }))

    test("a record with graceMs lives ttlMs + graceMs, and reads back with it", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const stale = makeRecord(ns, hashOf("stale"), { ttlMs: ttl / 4, graceMs: ttl * 3 / 4 })
        const plain = makeRecord(ns, hashOf("plain"), { ttlMs: ttl / 4 })
        yield* commitHeld(store, stale, 10)
        yield* commitHeld(store, plain, 10)
        yield* halfTtl
        // past its TTL, within its grace: still there, as it was written
        assert.deepStrictEqual(yield* store.getMany(ns, [stale.hash, plain.hash]), [Option.some(stale), Option.none()])
        assert.deepStrictEqual(yield* store.lookup(ns, stale.hash, lockOf("A")), { _tag: "Hit", record: stale })
        yield* pastTtl
        assert.deepStrictEqual(yield* store.getMany(ns, [stale.hash]), [Option.none()])
      }))

    test("the TTL starts at the commit, not at createdAt", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
        const old = makeRecord(ns, hashOf("old"), { ttlMs: ttl, createdAt: now - ttl * 100 })
        const future = makeRecord(ns, hashOf("future"), { ttlMs: ttl, createdAt: now + ttl * 100 })
        yield* commitHeld(store, old, 10)
        yield* commitHeld(store, future, 10)
        assert.deepStrictEqual(yield* store.getMany(ns, [old.hash, future.hash]), [
          Option.some(old),
          Option.some(future)
        ])
        yield* halfTtl
        yield* pastTtl
        assert.deepStrictEqual(yield* store.getMany(ns, [old.hash, future.hash]), [Option.none(), Option.none()])
      }))

    test(
      "a commit drops expired entries before evicting, and does not count them as evicted",
      () =>
        Effect.gen(function*() {
          const store = yield* MetadataStore
          const ns = yield* freshNamespace
          const shortLived = makeRecord(ns, oneShard("a"), { ttlMs: ttl })
          const b = makeRecord(ns, oneShard("b"), { ttlMs: ttl * 100 })
          const c = makeRecord(ns, oneShard("c"), { ttlMs: ttl * 100 })
          yield* commitHeld(store, shortLived, perShard(2))
          yield* tick
          yield* commitHeld(store, b, perShard(2))
          yield* halfTtl
          yield* pastTtl
          const result = committedOf(yield* commitHeld(store, c, perShard(2)))
          assert.strictEqual(result.evicted, 0)
          // Whether an expired record's object key can still be reported depends on the backend (a Redis key is gone
          // once it expired); a live record's key never is.
          for (const key of result.obsolete) {
            assert.strictEqual(key, shortLived.objectKey)
          }
          assert.deepStrictEqual(yield* store.getMany(ns, [shortLived.hash, b.hash, c.hash]), [
            Option.none(),
            Option.some(b),
            Option.some(c)
          ])
          assert.strictEqual(yield* store.size(ns), 2)
        })
    )

    test("eviction drops the least recently accessed entry, not the oldest one", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const [a, b, c, d] = ["a", "b", "c", "d"].map((label) => makeRecord(ns, oneShard(label)))
        yield* commitHeld(store, a!, perShard(3))
        yield* tick
        yield* commitHeld(store, b!, perShard(3))
        yield* tick
        yield* commitHeld(store, c!, perShard(3))
        yield* tick
        assert.deepStrictEqual(yield* store.lookup(ns, a!.hash, lockOf("A")), { _tag: "Hit", record: a! })
        yield* tick
        assert.deepStrictEqual(yield* commitHeld(store, d!, perShard(3)), committed([b!.objectKey], 1))
        assert.deepStrictEqual(yield* store.getMany(ns, [a!.hash, b!.hash, c!.hash, d!.hash]), [
          Option.some(a!),
          Option.none(),
          Option.some(c!),
          Option.some(d!)
        ])
        assert.strictEqual(yield* store.size(ns), 3)
        yield* tick
        // Now c is the least recently accessed.
        const e = makeRecord(ns, oneShard("e"))
        assert.deepStrictEqual(yield* commitHeld(store, e, perShard(3)), committed([c!.objectKey], 1))
      }))

    test("a commit counts as an access", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const a1 = makeRecord(ns, oneShard("a"))
        const b = makeRecord(ns, oneShard("b"))
        yield* commitHeld(store, a1, perShard(2))
        yield* tick
        yield* commitHeld(store, b, perShard(2))
        yield* tick
        const a2 = makeRecord(ns, oneShard("a"))
        assert.deepStrictEqual(yield* commitHeld(store, a2, perShard(2)), committed([a1.objectKey], 0))
        yield* tick
        const c = makeRecord(ns, oneShard("c"))
        assert.deepStrictEqual(yield* commitHeld(store, c, perShard(2)), committed([b.objectKey], 1))
        assert.deepStrictEqual(yield* store.getMany(ns, [a2.hash, b.hash, c.hash]), [
          Option.some(a2),
          Option.none(),
          Option.some(c)
        ])
      }))

    test("getMany does not count as an access", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const a = makeRecord(ns, oneShard("a"))
        const b = makeRecord(ns, oneShard("b"))
        yield* commitHeld(store, a, perShard(2))
        yield* tick
        yield* commitHeld(store, b, perShard(2))
        yield* tick
        assert.deepStrictEqual(yield* store.getMany(ns, [a.hash]), [Option.some(a)])
        yield* tick
        const c = makeRecord(ns, oneShard("c"))
        assert.deepStrictEqual(yield* commitHeld(store, c, perShard(2)), committed([a.objectKey], 1))
        assert.deepStrictEqual(yield* store.getMany(ns, [a.hash, b.hash, c.hash]), [
          Option.none(),
          Option.some(b),
          Option.some(c)
        ])
      }))

    test("a commit evicts as many entries as it takes to reach maxEntries", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const records = ["a", "b", "c", "d", "e"].map((label) => makeRecord(ns, oneShard(label)))
        for (const record of records) {
          yield* commitHeld(store, record, perShard(10))
          yield* tick
        }
        const f = makeRecord(ns, oneShard("f"))
        const result = committedOf(yield* commitHeld(store, f, perShard(2)))
        assert.strictEqual(result.evicted, 4)
        assert.deepStrictEqual(sorted(result.obsolete), sorted(records.slice(0, 4).map((r) => r.objectKey)))
        assert.strictEqual(yield* store.size(ns), 2)
        assert.deepStrictEqual(yield* store.getMany(ns, [records[4]!.hash, f.hash]), [
          Option.some(records[4]!),
          Option.some(f)
        ])
      }))

    test("maxEntries applies per namespace", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns1 = yield* freshNamespace
        const ns2 = yield* freshNamespace
        const records = ["a", "b", "c"].map((label) => makeRecord(ns1, hashOf(label)))
        for (const record of records) {
          yield* commitHeld(store, record, 10)
          yield* tick
        }
        const other = makeRecord(ns2, hashOf("x"))
        assert.deepStrictEqual(yield* commitHeld(store, other, 1), committed([], 0))
        assert.strictEqual(yield* store.size(ns1), 3)
        assert.strictEqual(yield* store.size(ns2), 1)
      }))

    test("a second token is Busy until the holder releases the lock", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const hash = hashOf("a")
        assert.deepStrictEqual(yield* store.lookup(ns, hash, lockOf("A")), { _tag: "Acquired" })
        assert.deepStrictEqual(yield* store.lookup(ns, hash, lockOf("B")), { _tag: "Busy" })
        assert.deepStrictEqual(yield* store.lookup(ns, hash, lockOf("A")), { _tag: "Acquired" })
        // The lock is per hash.
        assert.deepStrictEqual(yield* store.lookup(ns, hashOf("b"), lockOf("B")), { _tag: "Acquired" })
        yield* store.releaseLock(ns, hash, "B")
        assert.deepStrictEqual(yield* store.lookup(ns, hash, lockOf("C")), { _tag: "Busy" })
        yield* store.releaseLock(ns, hash, "A")
        assert.deepStrictEqual(yield* store.lookup(ns, hash, lockOf("B")), { _tag: "Acquired" })
        assert.deepStrictEqual(yield* store.lookup(ns, hash, lockOf("A")), { _tag: "Busy" })
        // Releasing a lock nobody holds is not an error.
        yield* store.releaseLock(ns, hashOf("free"), "A")
      }))

    test("a lock expires after lockTtlMs; taking it again under the same token refreshes it", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const hash = hashOf("a")
        const hash2 = hashOf("b")
        assert.deepStrictEqual(yield* store.lookup(ns, hash, lockOf("A", ttl)), { _tag: "Acquired" })
        assert.deepStrictEqual(yield* store.lookup(ns, hash2, lockOf("A", ttl)), { _tag: "Acquired" })
        yield* halfTtl
        assert.deepStrictEqual(yield* store.lookup(ns, hash, lockOf("B", ttl)), { _tag: "Busy" })
        assert.deepStrictEqual(yield* store.lookup(ns, hash2, lockOf("A", ttl)), { _tag: "Acquired" })
        yield* pastTtl
        // The first lock was never released: its holder may have crashed.
        assert.deepStrictEqual(yield* store.lookup(ns, hash, lockOf("B", ttl)), { _tag: "Acquired" })
        assert.deepStrictEqual(yield* store.lookup(ns, hash, lockOf("A", ttl)), { _tag: "Busy" })
        // The second was refreshed half a TTL in, so it still has a quarter to live.
        assert.deepStrictEqual(yield* store.lookup(ns, hash2, lockOf("B", ttl)), { _tag: "Busy" })
        yield* halfTtl
        assert.deepStrictEqual(yield* store.lookup(ns, hash2, lockOf("B", ttl)), { _tag: "Acquired" })
      }))

    test("a commit under the holder's token releases the lock", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const record = makeRecord(ns, hashOf("a"))
        assert.deepStrictEqual(yield* store.lookup(ns, record.hash, lockOf("A")), { _tag: "Acquired" })
        assert.deepStrictEqual(yield* store.commit(record, { token: "A", maxEntries: 10 }), committed([], 0))
        // With the record dropped (removeIf leaves locks alone), a lookup shows whether the lock is still there.
        assert.isTrue(yield* store.removeIf(ns, record.hash, record.objectKey))
        assert.deepStrictEqual(yield* store.lookup(ns, record.hash, lockOf("B")), { _tag: "Acquired" })
      }))

    test("a commit happens only under the lock's token: another token, or none held, is LockLost", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const first = makeRecord(ns, hashOf("a"))
        // nobody holds the lock
        assert.deepStrictEqual(yield* store.commit(first, { token: "A", maxEntries: 10 }), { _tag: "LockLost" })
        assert.deepStrictEqual(yield* store.getMany(ns, [first.hash]), [Option.none()])
        assert.strictEqual(yield* store.size(ns), 0)
        // another token holds it: nothing is written and the holder keeps its lock
        assert.deepStrictEqual(yield* store.lookup(ns, first.hash, lockOf("A")), { _tag: "Acquired" })
        assert.deepStrictEqual(yield* store.commit(first, { token: "B", maxEntries: 10 }), { _tag: "LockLost" })
        assert.deepStrictEqual(yield* store.getMany(ns, [first.hash]), [Option.none()])
        assert.deepStrictEqual(yield* store.lookup(ns, first.hash, lockOf("C")), { _tag: "Busy" })
        assert.deepStrictEqual(yield* store.commit(first, { token: "A", maxEntries: 10 }), committed([], 0))
        // a commit releases the lock, so a second commit under the same token is refused
        const second = makeRecord(ns, hashOf("a"))
        assert.deepStrictEqual(yield* store.commit(second, { token: "A", maxEntries: 10 }), { _tag: "LockLost" })
        assert.deepStrictEqual(yield* store.getMany(ns, [first.hash]), [Option.some(first)])
      }))

    test("a lock that expired is lost: its holder's commit is refused", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const record = makeRecord(ns, hashOf("a"))
        assert.deepStrictEqual(yield* store.lookup(ns, record.hash, lockOf("A", ttl)), { _tag: "Acquired" })
        yield* halfTtl
        yield* pastTtl
        assert.deepStrictEqual(yield* store.commit(record, { token: "A", maxEntries: 10 }), { _tag: "LockLost" })
        assert.deepStrictEqual(yield* store.getMany(ns, [record.hash]), [Option.none()])
      }))

    test("acquireLock takes a free lock even where a record exists; never one another token holds", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const first = makeRecord(ns, hashOf("a"))
        yield* commitHeld(store, first, 10)
        assert.isTrue(yield* store.acquireLock(ns, first.hash, lockOf("A")))
        assert.isTrue(yield* store.acquireLock(ns, first.hash, lockOf("A")), "the holder may take it again")
        assert.isFalse(yield* store.acquireLock(ns, first.hash, lockOf("B")))
        // a lookup still finds the record: the lock guards writers, not readers
        assert.deepStrictEqual(yield* store.lookup(ns, first.hash, lockOf("B")), { _tag: "Hit", record: first })
        const second = makeRecord(ns, hashOf("a"))
        assert.deepStrictEqual(
          yield* store.commit(second, { token: "A", maxEntries: 10 }),
          committed([first.objectKey], 0)
        )
        assert.isTrue(yield* store.acquireLock(ns, first.hash, lockOf("B")), "the commit released it")
      }))

    test("renewLock extends only a lock held under the token, and never takes one", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const hash = hashOf("a")
        assert.isFalse(yield* store.renewLock(ns, hash, lockOf("A", ttl)), "nobody holds it")
        assert.deepStrictEqual(yield* store.lookup(ns, hash, lockOf("C")), { _tag: "Acquired" })
        yield* store.releaseLock(ns, hash, "C")
        assert.deepStrictEqual(yield* store.lookup(ns, hash, lockOf("A", ttl)), { _tag: "Acquired" })
        assert.isFalse(yield* store.renewLock(ns, hash, lockOf("B", ttl)))
        yield* halfTtl
        assert.isTrue(yield* store.renewLock(ns, hash, lockOf("A", ttl)))
        yield* pastTtl
        // renewed half a TTL in: a quarter of it left
        assert.deepStrictEqual(yield* store.lookup(ns, hash, lockOf("B", ttl)), { _tag: "Busy" })
        yield* halfTtl
        assert.isFalse(yield* store.renewLock(ns, hash, lockOf("A", ttl)), "it lapsed")
        assert.deepStrictEqual(yield* store.lookup(ns, hash, lockOf("B", ttl)), { _tag: "Acquired" })
      }))

    test("concurrent lookups of a missing hash: exactly one acquires the lock", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const hash = hashOf("a")
        const tokens = Array.from({ length: 20 }, (_, i) => `token-${i}`)
        const results = yield* Effect.forEach(tokens, (token) => store.lookup(ns, hash, lockOf(token)), {
          concurrency: "unbounded"
        })
        assert.strictEqual(results.filter((r) => r._tag === "Acquired").length, 1)
        assert.strictEqual(results.filter((r) => r._tag === "Busy").length, tokens.length - 1)
      }))

    test("remove returns the object keys of the records that existed", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const a = makeRecord(ns, hashOf("a"))
        const b = makeRecord(ns, hashOf("b"))
        const c = makeRecord(ns, hashOf("c"))
        for (const record of [a, b, c]) {
          yield* commitHeld(store, record, 10)
        }
        assert.deepStrictEqual(yield* store.remove(ns, []), [])
        assert.deepStrictEqual(yield* store.remove(ns, [hashOf("missing")]), [])
        const removed = yield* store.remove(ns, [a.hash, hashOf("missing"), b.hash, a.hash])
        assert.deepStrictEqual(sorted(removed), sorted([a.objectKey, b.objectKey]))
        assert.deepStrictEqual(yield* store.getMany(ns, [a.hash, b.hash, c.hash]), [
          Option.none(),
          Option.none(),
          Option.some(c)
        ])
        assert.strictEqual(yield* store.size(ns), 1)
        assert.deepStrictEqual(yield* store.lookup(ns, a.hash, lockOf("A")), { _tag: "Acquired" })
        assert.deepStrictEqual(yield* store.remove(yield* freshNamespace, [a.hash]), [])
      }))

    test("remove (an invalidation) removes the locks of its hashes: a computation in flight cannot commit", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const record = makeRecord(ns, hashOf("a"))
        const other = makeRecord(ns, hashOf("b"))
        assert.deepStrictEqual(yield* store.lookup(ns, record.hash, lockOf("A")), { _tag: "Acquired" })
        assert.deepStrictEqual(yield* store.lookup(ns, other.hash, lockOf("A")), { _tag: "Acquired" })
        assert.deepStrictEqual(yield* store.remove(ns, [record.hash]), [])
        assert.deepStrictEqual(yield* store.commit(record, { token: "A", maxEntries: 10 }), { _tag: "LockLost" })
        assert.isFalse(yield* store.renewLock(ns, record.hash, lockOf("A")))
        assert.deepStrictEqual(yield* store.lookup(ns, record.hash, lockOf("B")), { _tag: "Acquired" })
        // the lock of another hash is untouched
        assert.deepStrictEqual(yield* store.commit(other, { token: "A", maxEntries: 10 }), committed([], 0))
      }))

    test("removeIf drops a record only while it names the given object, and leaves the lock", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const old = makeRecord(ns, hashOf("a"))
        const fresh = makeRecord(ns, hashOf("a"))
        yield* commitHeld(store, old, 10)
        yield* commitHeld(store, fresh, 10)
        // a reader that held the old record judged its object bad: the fresh record survives
        assert.isFalse(yield* store.removeIf(ns, old.hash, old.objectKey))
        assert.isFalse(yield* store.removeIf(ns, hashOf("missing"), ""))
        assert.isFalse(yield* store.removeIf(yield* freshNamespace, old.hash, fresh.objectKey))
        assert.deepStrictEqual(yield* store.getMany(ns, [old.hash]), [Option.some(fresh)])
        assert.isTrue(yield* store.acquireLock(ns, old.hash, lockOf("A")))
        assert.isTrue(yield* store.removeIf(ns, old.hash, fresh.objectKey))
        assert.deepStrictEqual(yield* store.getMany(ns, [old.hash]), [Option.none()])
        assert.strictEqual(yield* store.size(ns), 0)
        assert.deepStrictEqual(yield* store.lookup(ns, old.hash, lockOf("B")), { _tag: "Busy" }, "A keeps its lock")
      }))

    test("a namespace is registered by its first lock and stays until it is cleared", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const record = makeRecord(ns, hashOf("a"))
        assert.isFalse((yield* store.namespaces).includes(ns))
        yield* store.getMany(ns, [record.hash])
        assert.isFalse((yield* store.namespaces).includes(ns), "reading registers nothing")
        // a computation in flight in a namespace without records: `clear` must reach its lock
        yield* store.lookup(ns, record.hash, lockOf("A"))
        assert.isTrue((yield* store.namespaces).includes(ns))
        yield* store.commit(record, { token: "A", maxEntries: 10 })
        assert.isTrue((yield* store.namespaces).includes(ns))
        yield* store.remove(ns, [record.hash])
        assert.isTrue((yield* store.namespaces).includes(ns))
        yield* clearAll(ns)
        assert.isFalse((yield* store.namespaces).includes(ns))
      }))

    test("clearNamespace removes records and locks of that namespace only", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const other = yield* freshNamespace
        const a = makeRecord(ns, hashOf("a"))
        const b = makeRecord(ns, hashOf("b"))
        const kept = makeRecord(other, hashOf("a"))
        const locked = hashOf("locked")
        yield* commitHeld(store, a, 10)
        yield* commitHeld(store, b, 10)
        yield* commitHeld(store, kept, 10)
        assert.deepStrictEqual(yield* store.lookup(ns, locked, lockOf("A")), { _tag: "Acquired" })
        assert.deepStrictEqual(yield* store.lookup(other, locked, lockOf("A")), { _tag: "Acquired" })

        assert.deepStrictEqual(sorted(yield* clearAll(ns)), sorted([a.objectKey, b.objectKey]))

        assert.strictEqual(yield* store.size(ns), 0)
        assert.deepStrictEqual(yield* store.getMany(ns, [a.hash, b.hash]), [Option.none(), Option.none()])
        const namespaces = yield* store.namespaces
        assert.isFalse(namespaces.includes(ns))
        assert.isTrue(namespaces.includes(other))
        assert.deepStrictEqual(yield* store.commit(makeRecord(ns, locked), { token: "A", maxEntries: 10 }), {
          _tag: "LockLost"
        })
        assert.deepStrictEqual(yield* store.lookup(ns, locked, lockOf("B")), { _tag: "Acquired" })
        assert.strictEqual(yield* store.size(other), 1)
        assert.deepStrictEqual(yield* store.lookup(other, kept.hash, lockOf("B")), { _tag: "Hit", record: kept })
        assert.deepStrictEqual(yield* store.lookup(other, locked, lockOf("B")), { _tag: "Busy" })

        assert.deepStrictEqual(yield* clearAll(yield* freshNamespace), [])
        // A cleared namespace can be used again.
        assert.deepStrictEqual(yield* commitHeld(store, a, 10), committed([], 0))
        assert.isTrue((yield* store.namespaces).includes(ns))
      }))

    test("clearNamespace works in bounded steps: locks go in the first, records batch by batch", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const ns = yield* freshNamespace
        const records = Array.from({ length: 2500 }, (_, i) => makeRecord(ns, hashOf(`bulk-${i}`)))
        yield* Effect.forEach(records, (record) => commitHeld(store, record, 10_000), { concurrency: 16 })
        const locked = hashOf("in-flight")
        assert.deepStrictEqual(yield* store.lookup(ns, locked, lockOf("A")), { _tag: "Acquired" })
        const first = yield* store.clearNamespace(ns)
        assert.isFalse(first.done, "2,500 records are more than one step")
        assert.isAbove(first.objectKeys.length, 0)
        assert.isFalse(yield* store.renewLock(ns, locked, lockOf("A")), "the first step removed the locks")
        const keys = [...first.objectKeys]
        let steps = 1
        while (true) {
          const step = yield* store.clearNamespace(ns)
          steps++
          keys.push(...step.objectKeys)
          if (step.done) break
          assert.isBelow(steps, 100)
        }
        // 2,500 records in batches of (by default) 500 per shard: several steps however many shards
        assert.isAtLeast(steps, shards === 1 ? 3 : 2)
        assert.deepStrictEqual(sorted(keys), sorted(records.map((r) => r.objectKey)))
        assert.strictEqual(yield* store.size(ns), 0)
      }))

    test("id is stable and can start an object key", () =>
      Effect.gen(function*() {
        const store = yield* MetadataStore
        const id = yield* store.id
        assert.match(id, /^[A-Za-z0-9_-]{8,64}$/)
        assert.strictEqual(yield* store.id, id)
      }))
  })
}
