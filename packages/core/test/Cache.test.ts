import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Cache from "../src/Cache.js"
import * as CacheKey from "../src/CacheKey.js"
import { counted, makeHarness, waitUntil } from "./utils/harness.js"

describe("Cache.cached", () => {
  it.scoped("a cold call runs the effect, a warm call is answered from the cache", () =>
    Effect.gen(function*() {
      const { cache, metadata } = yield* makeHarness()
      const query = counted({ rows: [1, 2, 3] })
      const cold = yield* cache.cached(query.effect, { key: "SELECT * FROM t" })
      yield* cache.flush
      const warm = yield* cache.cached(query.effect, { key: "SELECT * FROM t" })
      assert.deepStrictEqual(cold, { rows: [1, 2, 3] })
      assert.deepStrictEqual(warm, { rows: [1, 2, 3] })
      assert.strictEqual(query.runs, 1)
      assert.strictEqual(yield* metadata.size("default"), 1)
      const stats = yield* cache.stats
      assert.strictEqual(stats.hits, 1)
      assert.strictEqual(stats.misses, 1)
      assert.strictEqual(stats.errors, 0)
      assert.strictEqual(stats.writes, 1)
      assert.strictEqual(stats.hitRate, 0.5)
    }))

  it.scoped("string keys are whitespace-normalized and case-sensitive", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness()
      const query = counted("v")
      yield* cache.cached(query.effect, { key: "SELECT *\n   FROM   users" })
      yield* cache.flush
      yield* cache.cached(query.effect, { key: "  SELECT * FROM users  " })
      assert.strictEqual(query.runs, 1)
      yield* cache.cached(query.effect, { key: "select * from users" })
      assert.strictEqual(query.runs, 2)
    }))

  it.scoped("structured keys hash the same whatever the order of their fields", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness()
      const query = counted(1)
      yield* cache.cached(query.effect, { key: { a: 1, b: [2, { c: 3, d: 4 }] } })
      yield* cache.flush
      yield* cache.cached(query.effect, { key: { b: [2, { d: 4, c: 3 }], a: 1 } })
      assert.strictEqual(query.runs, 1)
      yield* cache.cached(query.effect, { key: { a: "1", b: [2, { c: 3, d: 4 }] } })
      assert.strictEqual(query.runs, 2)
    }))

  it.scoped("data-first and data-last forms, with a key or with options", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness()
      const query = counted("x")
      const provide = Effect.provideService(Cache.Cache, cache)
      yield* Cache.cached(query.effect, "k").pipe(provide)
      yield* cache.flush
      yield* query.effect.pipe(Cache.cached("k"), provide)
      yield* query.effect.pipe(Cache.cached({ key: "k" }), provide)
      yield* Cache.cached(query.effect, { key: "k", namespace: "default" }).pipe(provide)
      assert.strictEqual(query.runs, 1)
      // a record key goes in the options; a record without `key` is refused (a type error, and at run time a
      // warning and an uncached run), never taken as a key that a misspelt option would silently become
      yield* Cache.cached(query.effect, { key: { id: 7 } }).pipe(provide)
      assert.strictEqual(query.runs, 2)
      yield* Cache.cached(query.effect, { id: 7 } as any).pipe(provide)
      assert.strictEqual(query.runs, 3)
      yield* cache.flush
      yield* Cache.cached(query.effect, { key: { id: 7 } }).pipe(provide)
      assert.strictEqual(query.runs, 3, "the record key was stored")
      assert.strictEqual((yield* cache.stats).bypassed, 1)
    }))

  it.scoped("100 concurrent callers of one cold key run the effect once and all get its value", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness()
      const gate = yield* Deferred.make<void>()
      let runs = 0
      const slow = Effect.zipRight(
        Effect.sync(() => runs++),
        Effect.as(Deferred.await(gate), "computed")
      )
      const fibers = yield* Effect.forkAll(
        Array.from({ length: 100 }, () => cache.cached(slow, { key: "hot" })),
        { discard: false }
      )
      yield* waitUntil(Effect.map(cache.stats, (stats) => stats.coalesced === 99))
      assert.strictEqual(yield* cache.inFlight, 1)
      yield* Deferred.succeed(gate, undefined)
      const values = yield* Fiber.join(fibers)
      assert.strictEqual(runs, 1)
      assert.deepStrictEqual(values, Array.from({ length: 100 }, () => "computed"))
      const stats = yield* cache.stats
      assert.strictEqual(stats.misses, 1)
      assert.strictEqual(stats.coalesced, 99)
      assert.strictEqual(yield* cache.inFlight, 0)
    }))

  it.scoped("the computation survives its first caller leaving, and stops when every caller has left", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness()
      const gate = yield* Deferred.make<void>()
      let interrupted = false
      const slow = Deferred.await(gate).pipe(
        Effect.as("done"),
        Effect.onInterrupt(() => Effect.sync(() => (interrupted = true)))
      )
      const first = yield* Effect.fork(cache.cached(slow, { key: "k" }))
      yield* waitUntil(Effect.map(cache.inFlight, (n) => n === 1))
      const second = yield* Effect.fork(cache.cached(slow, { key: "k" }))
      yield* waitUntil(Effect.map(cache.stats, (stats) => stats.coalesced === 1))
      yield* Fiber.interrupt(first)
      assert.isFalse(interrupted)
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Fiber.join(second), "done")

      const gate2 = yield* Deferred.make<void>()
      let started = false
      const slow2 = Effect.sync(() => (started = true)).pipe(
        Effect.zipRight(Deferred.await(gate2)),
        Effect.as("never"),
        Effect.onInterrupt(() => Effect.sync(() => (interrupted = true)))
      )
      const a = yield* Effect.fork(cache.cached(slow2, { key: "k2" }))
      const b = yield* Effect.fork(cache.cached(slow2, { key: "k2" }))
      yield* waitUntil(Effect.map(cache.stats, (stats) => stats.coalesced === 2))
      yield* waitUntil(Effect.sync(() => started))
      yield* Fiber.interrupt(a)
      assert.isFalse(interrupted, "one caller is still waiting")
      yield* Fiber.interrupt(b)
      assert.isTrue(interrupted)
      assert.strictEqual(yield* cache.inFlight, 0)
    }))

  it.scoped("the caller gets its value before the upload finishes", () =>
    Effect.gen(function*() {
      const uploadGate = yield* Deferred.make<void>()
      const { blobs, cache, metadata } = yield* makeHarness({
        blobs: (store) => ({ put: (key, bytes) => Effect.zipRight(Deferred.await(uploadGate), store.put(key, bytes)) })
      })
      const value = yield* cache.cached(Effect.succeed("fast"), { key: "k" })
      assert.strictEqual(value, "fast")
      assert.strictEqual(yield* metadata.size("default"), 0)
      assert.strictEqual((yield* cache.stats).pendingWrites, 1)
      yield* Deferred.succeed(uploadGate, undefined)
      yield* cache.flush
      assert.strictEqual(yield* metadata.size("default"), 1)
      const hash = yield* cache.hashKey("k")
      const [record] = yield* metadata.getMany("default", [hash])
      assert.isTrue(Option.isSome(yield* blobs.get(Option.getOrThrow(record!).objectKey)))
      assert.strictEqual((yield* cache.stats).pendingWrites, 0)
    }))

  it.scoped("the user's typed error passes through untouched and is not cached", () =>
    Effect.gen(function*() {
      class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { id: Schema.Number }) {}
      const { cache, metadata } = yield* makeHarness()
      let runs = 0
      const failing = Effect.suspend(() => {
        runs++
        return Effect.fail(new NotFound({ id: 7 }))
      })
      const error = yield* Effect.flip(cache.cached(failing, { key: "k" }))
      assert.instanceOf(error, NotFound)
      assert.strictEqual(error.id, 7)
      yield* cache.flush
      yield* Effect.flip(cache.cached(failing, { key: "k" }))
      yield* cache.flush
      assert.strictEqual(runs, 2)
      assert.strictEqual(yield* metadata.size("default"), 0)
      // the lock was released: a new caller takes it at once rather than waiting for another process
      const hash = yield* cache.hashKey("k")
      const lookup = yield* metadata.lookup("default", hash, { token: "other", lockTtlMs: 1000 })
      assert.strictEqual(lookup._tag, "Acquired")
    }))

  it.scoped("defects and interruptions of the user's effect pass through too", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness()
      const exit = yield* Effect.exit(cache.cached(Effect.die("boom"), { key: "k" }))
      assert.isTrue(Exit.isFailure(exit))
      assert.deepStrictEqual(exit, Exit.die("boom"))
    }))

  it.scoped("schema-typed values round-trip Dates, BigInts and brands", () =>
    Effect.gen(function*() {
      const Row = Schema.Struct({
        at: Schema.Date,
        total: Schema.BigInt,
        user: Schema.String.pipe(Schema.brand("UserId"))
      })
      const { cache } = yield* makeHarness()
      const row = Row.make({ at: new Date("2026-01-02T03:04:05Z"), total: 12345678901234567890n, user: "u1" as any })
      const query = counted(row)
      yield* cache.cached(query.effect, { key: "row", schema: Row })
      yield* cache.flush
      const warm = yield* cache.cached(query.effect, { key: "row", schema: Row })
      assert.strictEqual(query.runs, 1)
      assert.instanceOf(warm.at, Date)
      assert.strictEqual(warm.at.getTime(), row.at.getTime())
      assert.strictEqual(warm.total, 12345678901234567890n)
      assert.strictEqual(warm.user, "u1")
    }))

  it.scoped("bytes, json and v8 formats, each compression", () =>
    Effect.gen(function*() {
      for (const compression of ["zstd", "gzip", "none"] as const) {
        // these values are small: with the default threshold they would be stored uncompressed whatever `compression`
        const { cache, metadata } = yield* makeHarness({ cache: { compression, compressionThreshold: 0 } })
        const bytes = new Uint8Array([1, 2, 3, 250])
        const map = new Map<string, unknown>([["a", new Set([1n, 2n])], ["d", new Date(0)]])
        const values = [
          { key: "bytes", value: bytes as unknown, format: "auto" },
          { key: "v8", value: map, format: "v8" },
          { key: "json", value: { a: [1, "two", null] }, format: "json" }
        ]
        for (const { format, key, value } of values) yield* cache.cached(Effect.succeed(value), { key, format })
        yield* cache.flush
        for (const { format, key, value } of values) {
          const warm = yield* cache.cached(Effect.die("must be a hit"), { key, format })
          assert.deepStrictEqual(warm, value)
        }
        assert.strictEqual((yield* cache.stats).hits, 3)
        const records = yield* metadata.getMany(
          "default",
          yield* Effect.forEach(values, ({ key }) => cache.hashKey(key))
        )
        assert.deepStrictEqual(records.map((record) => Option.getOrThrow(record).compression), [
          compression,
          compression,
          compression
        ])
      }
    }))

  it.scoped("payloads below compressionThreshold are stored uncompressed, larger ones compressed", () =>
    Effect.gen(function*() {
      const { cache, metadata } = yield* makeHarness({ cache: { compressionThreshold: 1000 } })
      const small = "s".repeat(900)
      const large = "l".repeat(1100)
      yield* cache.cached(Effect.succeed(small), { key: "small", format: "json" })
      yield* cache.cached(Effect.succeed(large), { key: "large", format: "json" })
      yield* cache.flush
      const records =
        (yield* metadata.getMany("default", [yield* cache.hashKey("small"), yield* cache.hashKey("large")]))
          .map(Option.getOrThrow)
      assert.deepStrictEqual(records.map((record) => [record.compression, record.rawSize]), [["none", 902], [
        "zstd",
        1102
      ]])
      assert.isBelow(records[1]!.storedSize, 100)
      assert.strictEqual(yield* cache.cached(Effect.die("must hit"), { key: "small", format: "json" }), small)
      assert.strictEqual(yield* cache.cached(Effect.die("must hit"), { key: "large", format: "json" }), large)
    }))
})

describe("TTL and LRU", () => {
  it.scoped("an entry expires after its TTL (TestClock)", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness({ cache: { defaultTtl: "1 minute" } })
      const query = counted("v")
      yield* cache.cached(query.effect, { key: "a" })
      yield* cache.cached(query.effect, { key: "b", ttl: "10 minutes" })
      yield* cache.flush
      yield* TestClock.adjust("59 seconds")
      yield* cache.cached(query.effect, { key: "a" })
      assert.strictEqual(query.runs, 2)
      yield* TestClock.adjust("2 seconds")
      yield* cache.cached(query.effect, { key: "a" })
      yield* cache.cached(query.effect, { key: "b" })
      assert.strictEqual(query.runs, 3)
    }))

  it.scoped("eviction keeps the most recently read entries", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness({ cache: { maxCacheEntries: 2 } })
      const query = counted("v")
      const call = (key: string) => Effect.zipLeft(cache.cached(query.effect, { key }), cache.flush)
      yield* call("a")
      yield* TestClock.adjust(10)
      yield* call("b")
      yield* TestClock.adjust(10)
      yield* call("a") // read a: b is now the least recently used
      yield* TestClock.adjust(10)
      yield* call("c") // evicts b
      assert.strictEqual(query.runs, 3)
      yield* call("a")
      assert.strictEqual(query.runs, 3)
      yield* call("b")
      assert.strictEqual(query.runs, 4)
      assert.strictEqual((yield* cache.stats).evictions, 2)
    }))
})

describe("invalidation", () => {
  it.scoped("invalidateKey, invalidate(hash), invalidateNamespace and clear", () =>
    Effect.gen(function*() {
      const { blobs, cache } = yield* makeHarness()
      const query = counted("v")
      const fill = Effect.gen(function*() {
        for (const namespace of ["ns1", "ns2"]) {
          for (const key of ["a", "b"]) yield* cache.cached(query.effect, { key, namespace })
        }
        yield* cache.flush
      })
      const objects = Effect.map(Stream.runCollect(blobs.list("")), (chunk) => Array.from(chunk, (info) => info.key))
      yield* fill
      assert.strictEqual((yield* objects).length, 4)

      assert.isTrue(yield* cache.invalidateKey("a", { namespace: "ns1" }))
      assert.isFalse(yield* cache.invalidateKey("a", { namespace: "ns1" }))
      assert.isTrue(yield* cache.invalidate(yield* cache.hashKey("b", "ns1")))
      assert.strictEqual((yield* objects).length, 2)
      assert.isTrue((yield* objects).every((key) => CacheKey.parseObjectKey(key)?.namespace === "ns2"))

      yield* fill
      assert.strictEqual(yield* cache.invalidateNamespace("ns1"), 2)
      assert.isTrue((yield* objects).every((key) => CacheKey.parseObjectKey(key)?.namespace === "ns2"))
      const before = query.runs
      yield* cache.cached(query.effect, { key: "a", namespace: "ns2" })
      assert.strictEqual(query.runs, before, "ns2 untouched by the invalidation of ns1")

      yield* fill
      assert.strictEqual(yield* cache.clear, 4)
      assert.strictEqual((yield* objects).length, 0)
    }))

  it.scoped("bad input to the administrative operations is a typed error that says what to change", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness()
      const badHash = yield* Effect.flip(cache.invalidate("not-a-hash"))
      assert.strictEqual(badHash._tag, "CacheInputError")
      assert.include(badHash.message, "Cache.hashKey")
      const badNamespace = yield* Effect.flip(cache.invalidateNamespace("a:*"))
      assert.strictEqual(badNamespace._tag, "CacheInputError")
      assert.include(badNamespace.message, "letters, digits")
      const badKey = yield* Effect.flip(cache.hashKey((() => 1) as any))
      assert.strictEqual(badKey._tag, "CacheInputError")
      assert.include(badKey.message, "function")
    }))
})

describe("Cache.wrap", () => {
  it.scoped("caches a function by its arguments", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness()
      let runs = 0
      const getUser = Cache.wrap((id: number, full: boolean) =>
        Effect.sync(() => {
          runs++
          return { id, full }
        }), { name: "getUser", namespace: "users" })
      const provide = Effect.provideService(Cache.Cache, cache)
      assert.deepStrictEqual(yield* getUser(1, true).pipe(provide), { id: 1, full: true })
      yield* cache.flush
      assert.deepStrictEqual(yield* getUser(1, true).pipe(provide), { id: 1, full: true })
      assert.deepStrictEqual(yield* getUser(2, true).pipe(provide), { id: 2, full: true })
      assert.strictEqual(runs, 2)

      const byId = Cache.wrap((_id: number, _traceId: string) => Effect.sync(() => ++runs), {
        namespace: "users",
        key: (id) => ["byId", id]
      })
      const first = yield* byId(1, "t1").pipe(provide)
      yield* cache.flush
      assert.strictEqual(yield* byId(1, "t2").pipe(provide), first)
    }))
})
