/**
 * The in-process tier (L1): answers without a store call, bounded, never past its TTLs, coherent across instances
 * through the bus, and what it hands out obeys the mutation rule. Two harnesses on shared stores and one bus stand
 * for two processes.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import * as BlobStore from "../src/BlobStore.js"
import * as CacheBus from "../src/CacheBus.js"
import * as MetadataStore from "../src/MetadataStore.js"
import * as Serializer from "../src/Serializer.js"
import { counted, type HarnessOptions, makeHarness, waitUntil } from "./utils/harness.js"

const l1 = { l1MaxEntries: 100 }

/** Two "processes" on shared stores, each counting its metadata lookups, with a bus between them. */
const twoInstances = (cache: HarnessOptions["cache"] = l1) =>
  Effect.gen(function*() {
    const stores = { metadata: yield* MetadataStore.makeMemory, blobs: yield* BlobStore.makeMemory }
    const bus = yield* CacheBus.makeLocal
    const lookups = { a: 0, b: 0 }
    const instance = (name: "a" | "b") =>
      makeHarness({
        cache,
        stores,
        bus,
        metadata: (store) => ({
          honoursDeadline: true,
          lookup: (namespace, hash, options) =>
            Effect.suspend(() => {
              lookups[name]++
              return store.lookup(namespace, hash, options)
            })
        })
      })
    return { a: (yield* instance("a")).cache, b: (yield* instance("b")).cache, lookups, bus }
  })

describe("the in-process tier", () => {
  it.scoped("a value read or written once is answered without a store call, each caller getting its own copy", () =>
    Effect.gen(function*() {
      const { a, lookups } = yield* twoInstances()
      const query = counted({ rows: [1, 2, 3] })
      const first = yield* a.cached(query.effect, { key: "k" })
      yield* a.flush
      const before = lookups.a
      const second = yield* a.cached(query.effect, { key: "k" })
      const third = yield* a.cached(query.effect, { key: "k" })
      assert.strictEqual(lookups.a, before, "the tier answered")
      assert.strictEqual(query.runs, 1)
      assert.deepStrictEqual(second, { rows: [1, 2, 3] })
      assert.notStrictEqual(second, third)
      second.rows.push(4)
      assert.deepStrictEqual(third, { rows: [1, 2, 3] })
      assert.deepStrictEqual(first, { rows: [1, 2, 3] })
      const stats = yield* a.stats
      assert.strictEqual(stats.l1Hits, 2)
      assert.strictEqual(stats.hits, 2)
    }))

  it.scoped("values that are views of the bytes they are decoded from (a codec's, as Arrow's; v8's typed arrays): each hit gets bytes of its own", () =>
    Effect.gen(function*() {
      // its values are views of the bytes it is given, as apache-arrow's columns are
      const views: Serializer.Codec = {
        name: "views",
        encode: (value) => Effect.succeed(new Uint8Array(value as Uint8Array)),
        decode: (bytes) => Effect.succeed(bytes)
      }
      const serializer = Serializer.make({ codecs: [views] })
      const cases = [
        { format: "views", make: () => new Uint8Array([1, 2, 3]), bytesOf: (value: unknown) => value as Uint8Array },
        // v8 gives back a typed array as a view of the bytes it reads
        {
          format: "v8",
          make: () => ({ buf: new Uint8Array([1, 2, 3]) }),
          bytesOf: (value: unknown) => (value as { readonly buf: Uint8Array }).buf
        }
      ]
      for (const { bytesOf, format, make } of cases) {
        // answered by the tier, or by an inline payload that is the memory store's own record
        for (const cache of [{ ...l1 }, { inlineThreshold: 1024 }]) {
          const { cache: c } = yield* makeHarness({ cache }).pipe(
            Effect.provideService(Serializer.Serializer, serializer)
          )
          const query = counted(make())
          const call = c.cached(query.effect, { key: "views", format })
          yield* call
          yield* c.flush
          bytesOf(yield* call)[0] = 99
          assert.deepStrictEqual(Array.from(bytesOf(yield* call)), [1, 2, 3], `${format}, ${JSON.stringify(cache)}`)
          assert.strictEqual(query.runs, 1)
        }
      }
    }))

  it.scopedLive("a record found by the store's one-step read is judged by the tier's generation from before the read: an invalidation meanwhile wins", () =>
    Effect.gen(function*() {
      const stores = { metadata: yield* MetadataStore.makeMemory, blobs: yield* BlobStore.makeMemory }
      const bus = yield* CacheBus.makeLocal
      // objects outlive their records (as for a reader that holds an old record): the old value still reads back
      const blobs = () => ({ honoursDeadline: true, delete: () => Effect.succeed({ deleted: 0, failed: [] }) })
      // a.tryHit, when armed: the record as it is now, handed back once `release` is called
      let armed = false
      let release: (() => void) | undefined
      const found = Effect.runSync(Deferred.make<void>())
      const a = yield* makeHarness({
        cache: { ...l1, inlineThreshold: 0 },
        stores,
        bus,
        blobs,
        metadata: (store) => ({
          honoursDeadline: true,
          tryHit: (namespace, hash) => {
            if (!armed) return undefined
            armed = false
            return Effect.runPromise(store.getMany(namespace, [hash])).then(([record]) =>
              new Promise<MetadataStore.EntryRecord | undefined>((resolve) => {
                release = () => resolve(Option.getOrUndefined(record!))
                Effect.runSync(Deferred.succeed(found, undefined))
              })
            )
          }
        })
      })
      const b = yield* makeHarness({ cache: { ...l1, inlineThreshold: 0 }, stores, bus, blobs })
      let version = 1
      const query = Effect.sync(() => ({ version }))
      // written by b: a's tier has nothing, so a's call reads the store; the payload is an object, which the
      // one-step read leaves to the full path
      yield* b.cache.cached(query, { key: "k" })
      yield* b.cache.flush
      armed = true
      const reading = yield* Effect.fork(a.cache.cached(query, { key: "k" }))
      yield* Deferred.await(found)
      // the record is read; b invalidates (a hears it on the bus) before a's full path judges that record
      version = 2
      assert.isTrue(yield* b.cache.invalidateKey("k"))
      release!()
      // a call that began before the invalidation returned may get the old value...
      assert.deepStrictEqual(yield* Fiber.join(reading), { version: 1 })
      // ...but a's tier must not keep it for the calls after
      assert.deepStrictEqual(yield* a.cache.cached(query, { key: "k" }), { version: 2 })
    }))

  it.scoped("a commit that another instance's event overtakes is not kept in this instance's tier", () =>
    Effect.gen(function*() {
      const stores = { metadata: yield* MetadataStore.makeMemory, blobs: yield* BlobStore.makeMemory }
      const bus = yield* CacheBus.makeLocal
      let lookups = 0
      const { cache } = yield* makeHarness({
        cache: l1,
        stores,
        bus,
        metadata: (store) => ({
          honoursDeadline: true,
          lookup: (namespace, hash, options) =>
            Effect.suspend(() => (lookups++, store.lookup(namespace, hash, options))),
          // another instance's write of the same key is announced while this commit is on its way
          commit: (record, options) =>
            bus.publish({ _tag: "Written", origin: "elsewhere", namespace: record.namespace, hash: record.hash }).pipe(
              Effect.zipRight(store.commit(record, options))
            )
        })
      })
      yield* cache.cached(Effect.succeed({ version: 1 }), { key: "k" })
      yield* cache.flush
      const before = lookups
      yield* cache.cached(Effect.succeed({ version: 0 }), { key: "k" })
      assert.strictEqual(lookups, before + 1, "the tier kept a value an event had made stale")
    }))

  it.scoped("l1ShareValues hands every caller the same value", () =>
    Effect.gen(function*() {
      const { a } = yield* twoInstances({ ...l1, l1ShareValues: true })
      yield* a.cached(Effect.succeed({ rows: [1] }), { key: "k" })
      yield* a.flush
      const x = yield* a.cached(Effect.die("must hit"), { key: "k" })
      const y = yield* a.cached(Effect.die("must hit"), { key: "k" })
      assert.strictEqual(x, y)
    }))

  it.scoped("a write or an invalidation by another instance drops this instance's copy", () =>
    Effect.gen(function*() {
      const { a, b } = yield* twoInstances()
      let version = 1
      const query = Effect.sync(() => ({ version }))
      yield* a.cached(query, { key: "k" })
      yield* a.flush
      assert.deepStrictEqual(yield* a.cached(query, { key: "k" }), { version: 1 })
      assert.deepStrictEqual(yield* b.cached(query, { key: "k" }), { version: 1 })

      // b invalidates and writes version 2: a's tier must not answer version 1 any more
      assert.isTrue(yield* b.invalidateKey("k"))
      version = 2
      assert.deepStrictEqual(yield* b.cached(query, { key: "k" }), { version: 2 })
      yield* b.flush
      assert.deepStrictEqual(yield* a.cached(Effect.die("must hit"), { key: "k" }), { version: 2 })

      // and a namespace cleared elsewhere is cleared here
      yield* a.cached(query, { key: "other" })
      yield* a.flush
      assert.strictEqual(yield* b.invalidateNamespace("default"), 2)
      version = 3
      assert.deepStrictEqual(yield* a.cached(query, { key: "other" }), { version: 3 })
    }))

  it.scoped("an invalidation in this instance wins: nothing read before it is served after it returns", () =>
    Effect.gen(function*() {
      const { a } = yield* twoInstances()
      let version = 1
      const query = Effect.sync(() => ({ version }))
      yield* a.cached(query, { key: "k" })
      yield* a.flush
      yield* a.cached(query, { key: "k" })
      yield* a.invalidateKey("k")
      version = 2
      assert.deepStrictEqual(yield* a.cached(query, { key: "k" }), { version: 2 })
      yield* a.flush
      yield* a.clear
      version = 3
      assert.deepStrictEqual(yield* a.cached(query, { key: "k" }), { version: 3 })
    }))

  it.scoped("bounded in entries: the least recently used entry leaves the tier, not the store", () =>
    Effect.gen(function*() {
      const { a, lookups } = yield* twoInstances({ l1MaxEntries: 2 })
      for (const key of ["x", "y", "z"]) yield* a.cached(Effect.succeed(key), { key })
      yield* a.flush
      const before = lookups.a
      assert.strictEqual(yield* a.cached(Effect.die("must hit"), { key: "z" }), "z")
      assert.strictEqual(yield* a.cached(Effect.die("must hit"), { key: "y" }), "y")
      assert.strictEqual(lookups.a, before, "the two most recent are in the tier")
      assert.strictEqual(yield* a.cached(Effect.die("must hit"), { key: "x" }), "x")
      assert.strictEqual(lookups.a, before + 1, "the oldest was read from the store")
    }))

  it.scoped("bounded in bytes: a value larger than l1MaxBytes is never kept", () =>
    Effect.gen(function*() {
      const { a, lookups } = yield* twoInstances({ ...l1, l1MaxBytes: 1000 })
      yield* a.cached(Effect.succeed("x".repeat(5000)), { key: "big", format: "json" })
      yield* a.flush
      const before = lookups.a
      yield* a.cached(Effect.die("must hit"), { key: "big", format: "json" })
      assert.strictEqual(lookups.a, before + 1)
    }))

  it.scoped("an entry lives l1Ttl in the tier (a call's l1Ttl overrides it), and never past its own TTL", () =>
    Effect.gen(function*() {
      const { a, lookups } = yield* twoInstances({ ...l1, l1Ttl: "10 seconds" })
      yield* a.cached(Effect.succeed(1), { key: "layer" })
      yield* a.cached(Effect.succeed(2), { key: "call", l1Ttl: "2 seconds" })
      yield* a.cached(Effect.succeed(3), { key: "short", ttl: "1 second" })
      yield* a.cached(Effect.succeed(4), { key: "none", l1Ttl: 0 })
      yield* a.flush
      const lookupsOf = (key: string) =>
        Effect.gen(function*() {
          const before = lookups.a
          yield* a.cached(Effect.succeed(0), { key })
          return lookups.a - before
        })
      assert.strictEqual(yield* lookupsOf("none"), 1, "l1Ttl 0: not kept")
      assert.strictEqual(yield* lookupsOf("layer"), 0)
      yield* TestClock.adjust("1500 millis")
      assert.strictEqual(yield* lookupsOf("call"), 0)
      assert.strictEqual(yield* a.cached(Effect.succeed(0), { key: "short" }), 0, "past its TTL: a miss")
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* lookupsOf("call"), 1, "past the call's l1Ttl")
      assert.strictEqual(yield* lookupsOf("layer"), 0)
    }))

  it.scoped("without a bus an entry is served for at most l1DisconnectedTtl", () =>
    Effect.gen(function*() {
      let lookups = 0
      const { cache } = yield* makeHarness({
        cache: { ...l1, l1DisconnectedTtl: "500 millis" },
        metadata: (store) => ({
          lookup: (namespace, hash, options) =>
            Effect.suspend(() => (lookups++, store.lookup(namespace, hash, options)))
        })
      })
      yield* cache.cached(Effect.succeed(1), { key: "k" })
      yield* cache.flush
      const before = lookups
      yield* cache.cached(Effect.succeed(0), { key: "k" })
      assert.strictEqual(lookups, before)
      yield* TestClock.adjust("600 millis")
      yield* cache.cached(Effect.succeed(0), { key: "k" })
      assert.strictEqual(lookups, before + 1)
    }))

  it.scoped("a bus that disconnects bounds the tier; when it connects again the tier starts empty", () =>
    Effect.gen(function*() {
      const listeners = new Set<CacheBus.Listener>()
      const local = yield* CacheBus.makeLocal
      const bus: CacheBus.CacheBus["Type"] = {
        publish: local.publish,
        listen: (listener) =>
          Effect.zipRight(
            local.listen(listener),
            Effect.acquireRelease(Effect.sync(() => listeners.add(listener)), () =>
              Effect.sync(() => listeners.delete(listener)))
          )
      }
      let lookups = 0
      const { cache } = yield* makeHarness({
        cache: { ...l1, l1DisconnectedTtl: "1 hour" },
        bus,
        metadata: (store) => ({
          honoursDeadline: true,
          lookup: (namespace, hash, options) =>
            Effect.suspend(() => (lookups++, store.lookup(namespace, hash, options)))
        })
      })
      yield* cache.cached(Effect.succeed(1), { key: "k" })
      yield* cache.flush
      const before = lookups
      for (const listener of listeners) listener.onConnected(false)
      yield* cache.cached(Effect.succeed(0), { key: "k" })
      assert.strictEqual(lookups, before, "within l1DisconnectedTtl: still served")
      for (const listener of listeners) listener.onConnected(true)
      yield* cache.cached(Effect.succeed(0), { key: "k" })
      assert.strictEqual(lookups, before + 1, "reconnected: events may have been missed, so the tier was emptied")
    }))
})

describe("callers waiting for another process's computation", () => {
  it.scoped("wake when it commits, without waiting for their next poll", () =>
    Effect.gen(function*() {
      const { a, b } = yield* twoInstances({})
      const gate = yield* Deferred.make<void>()
      const started = yield* Deferred.make<void>()
      const slow = Deferred.succeed(started, undefined).pipe(
        Effect.zipRight(Deferred.await(gate)),
        Effect.as({ answer: 42 })
      )
      const holder = yield* Effect.fork(a.cached(slow, { key: "k" }))
      yield* Deferred.await(started)
      const waiter = yield* Effect.fork(b.cached(Effect.die("the waiter must get the holder's value"), { key: "k" }))
      // the waiter found the lock held and sleeps until its first poll (TestClock: it never comes by itself)
      yield* waitUntil(Effect.sync(() => true))
      yield* Deferred.succeed(gate, undefined)
      assert.deepStrictEqual(yield* Fiber.join(holder), { answer: 42 })
      yield* a.flush
      // no TestClock.adjust: only the commit's event can wake the waiter
      assert.deepStrictEqual(yield* Fiber.join(waiter), { answer: 42 })
    }))
})
