/**
 * Readers, writers, locks and invalidations racing: no entry is lost, resurrected or held hostage.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as BlobStore from "../src/BlobStore.js"
import { MetadataStoreError } from "../src/CacheError.js"
import * as MetadataStore from "../src/MetadataStore.js"
import { counted, makeHarness, waitUntil } from "./utils/harness.js"
import { commitHeld, hashOf, makeRecord } from "./utils/MetadataStoreSuite.js"

const sharedStores = Effect.all({ metadata: MetadataStore.makeMemory, blobs: BlobStore.makeMemory })

const recordOf = (metadata: MetadataStore.MetadataStore["Type"], hash: string) =>
  Effect.map(metadata.getMany("default", [hash]), (records) => Option.getOrUndefined(records[0]!))

describe("a reader holding an old record", () => {
  // Process A reads an entry whose record is replaced (it expired, B wrote it anew) between A's lookup and A's read.
  const setup = Effect.gen(function*() {
    const stores = yield* sharedStores
    const readGate = yield* Deferred.make<void>()
    let gated = false
    const a = yield* makeHarness({
      stores,
      blobs: (store) => ({
        get: (key) => gated ? Effect.zipRight(Deferred.await(readGate), store.get(key)) : store.get(key)
      })
    })
    const b = yield* makeHarness({ stores })
    yield* a.cache.cached(Effect.succeed("old"), { key: "k", ttl: "1 second" })
    yield* a.cache.flush
    const hash = yield* a.cache.hashKey("k")
    const old = (yield* recordOf(stores.metadata, hash))!
    gated = true
    const reader = yield* Effect.fork(a.cache.cached(Effect.succeed("recomputed by A"), { key: "k" }))
    yield* waitUntil(Effect.sync(() => true), 50)
    yield* TestClock.adjust("1 second")
    assert.strictEqual(yield* b.cache.cached(Effect.succeed("fresh"), { key: "k", ttl: "1 hour" }), "fresh")
    yield* b.cache.flush
    const fresh = (yield* recordOf(stores.metadata, hash))!
    assert.notStrictEqual(fresh.objectKey, old.objectKey)
    return { stores, a, b, hash, old, fresh, reader, release: Deferred.succeed(readGate, undefined) }
  })

  it.scoped("can still read the object the writer replaced; the fresh entry stays", () =>
    Effect.gen(function*() {
      const { a, b, fresh, old, reader, release, stores } = yield* setup
      yield* release
      assert.strictEqual(yield* Fiber.join(reader), "old", "the replaced object is still readable for a while")
      assert.strictEqual(yield* a.cache.cached(Effect.die("must hit"), { key: "k" }), "fresh")
      assert.strictEqual((yield* a.cache.stats).errors, 0)
      // later (after blobTimeout) the replaced object is deleted
      yield* TestClock.adjust("31 seconds")
      yield* b.cache.flush
      const keys = Array.from(yield* Stream.runCollect(stores.blobs.list("")), (info) => info.key)
      assert.deepStrictEqual(keys, [fresh.objectKey])
      assert.notInclude(keys, old.objectKey)
    }))

  it.scoped("that finds the object gone drops nothing but its own record: the fresh entry stays", () =>
    Effect.gen(function*() {
      const { a, old, reader, release, stores } = yield* setup
      yield* stores.blobs.delete([old.objectKey])
      yield* release
      // the old record is gone (replaced): A looks again and finds the fresh one
      assert.strictEqual(yield* Fiber.join(reader), "fresh")
      assert.strictEqual(yield* a.cache.cached(Effect.die("must hit"), { key: "k" }), "fresh")
      assert.strictEqual((yield* a.cache.stats).errors, 0, "a race with a writer is not an error")
    }))
})

describe("unknown outcomes", () => {
  it.scoped("a lookup that times out but took the lock on the store: the lock is released once it settles", () =>
    Effect.gen(function*() {
      let tookLock = false
      const { cache, metadata } = yield* makeHarness({
        cache: { metadataTimeout: "500 millis", stampedeLockLease: "1 minute", stampedeLockTtl: "2 minutes" },
        // the store takes the lock, but its answer arrives after the deadline
        metadata: (store) => ({
          lookup: (ns, hash, options) =>
            Effect.uninterruptible(
              Effect.sleep("2 seconds").pipe(
                Effect.zipRight(store.lookup(ns, hash, options)),
                Effect.tap((result) => Effect.sync(() => (tookLock = result._tag === "Acquired")))
              )
            )
        })
      })
      const query = counted("v")
      const call = yield* Effect.fork(cache.cached(query.effect, { key: "k" }))
      yield* TestClock.adjust("500 millis")
      assert.strictEqual(yield* Fiber.join(call), "v")
      assert.strictEqual((yield* cache.stats).bypassed, 1)
      yield* TestClock.adjust("2 seconds")
      yield* waitUntil(Effect.sync(() => tookLock))
      const hash = yield* cache.hashKey("k")
      // the release runs in the background once the lookup settled: wait for the lock to be free (or die trying)
      yield* waitUntil(Effect.orDie(metadata.acquireLock("default", hash, { token: "probe", lockTtlMs: 1 })))
      yield* metadata.releaseLock("default", hash, "probe")
      const lookup = yield* metadata.lookup("default", hash, { token: "another process", lockTtlMs: 1000 })
      assert.strictEqual(lookup._tag, "Acquired", "no ownerless lock holds the key for a lease")
    }))

  // Seen in CI (Redis SIGKILLed under load, then restarted): one call took 4968 ms against a 1.3 s budget, the
  // stampede lock's lease (5 s). A lock of this process whose commit and release both failed stays on the store until
  // its lease lapses, and the next caller of the key saw it Busy and waited for a result that nobody computes.
  it.scoped("a lock of this process whose release failed: the next caller runs at once instead of waiting its lease", () =>
    Effect.gen(function*() {
      let storeDown = true
      const unavailable = (method: string) =>
        new MetadataStoreError({ reason: "Unavailable", method, description: "the store is down" })
      const { cache } = yield* makeHarness({
        cache: { stampedeLockLease: "5 seconds", stampedeLockTtl: "30 seconds" },
        // lookups work; the commit and the release fail, so the lock stays on the store until its lease lapses
        metadata: (store) => ({
          commit: (record, options) => storeDown ? Effect.fail(unavailable("commit")) : store.commit(record, options),
          releaseLock: (ns, hash, token) =>
            storeDown ? Effect.fail(unavailable("releaseLock")) : store.releaseLock(ns, hash, token)
        })
      })
      const query = counted("v")
      assert.strictEqual(yield* cache.cached(query.effect, { key: "k" }), "v")
      yield* cache.flush
      // no clock moves: a caller that waits for the lease would never finish
      const second = yield* Effect.fork(cache.cached(query.effect, { key: "k" }))
      yield* waitUntil(Effect.map(Fiber.poll(second), Option.isSome), 1000)
      assert.strictEqual(yield* Fiber.join(second), "v")
      assert.strictEqual(query.runs, 2)
      // once the lease has lapsed, caching resumes
      storeDown = false
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual(yield* cache.cached(query.effect, { key: "k" }), "v")
      yield* cache.flush
      assert.strictEqual(yield* cache.cached(query.effect, { key: "k" }), "v")
      assert.strictEqual(query.runs, 3)
    }))
})

describe("the stampede lock is held until the commit", () => {
  it.scopedLive("while the value waits to be written, another process waits for it instead of recomputing", () =>
    Effect.gen(function*() {
      const stores = yield* sharedStores
      const options = { stampedeLockTtl: "20 seconds", stampedeLockLease: "150 millis" } as const
      const a = yield* makeHarness({
        stores,
        cache: options,
        // an upload much longer than a lease
        blobs: (store) => ({ put: (key, bytes) => Effect.zipRight(Effect.sleep("700 millis"), store.put(key, bytes)) })
      })
      const b = yield* makeHarness({ stores, cache: options })
      let runs = 0
      const query = Effect.sync(() => ++runs)
      assert.strictEqual(yield* a.cache.cached(query, { key: "k" }), 1)
      // the effect is done, the write has ~700 ms to go: a lease without renewal would lapse after 150 ms
      yield* Effect.sleep("300 millis")
      assert.strictEqual(yield* b.cache.cached(query, { key: "k" }), 1)
      assert.strictEqual(runs, 1)
      assert.strictEqual((yield* b.cache.stats).hits, 1)
    }))

  it.scopedLive("a renewal that fails is tried again: one failure does not let the lock lapse", () =>
    Effect.gen(function*() {
      const stores = yield* sharedStores
      const options = { stampedeLockTtl: "20 seconds", stampedeLockLease: "300 millis" } as const
      let failures = 0
      const a = yield* makeHarness({
        stores,
        cache: options,
        metadata: (store) => ({
          renewLock: (ns, hash, lock) =>
            failures++ < 1
              ? Effect.fail(new MetadataStoreError({ reason: "Unavailable", method: "renewLock", description: "blip" }))
              : store.renewLock(ns, hash, lock)
        })
      })
      const b = yield* makeHarness({ stores, cache: options })
      let runs = 0
      const slow = Effect.sync(() => ++runs).pipe(Effect.zipLeft(Effect.sleep("900 millis")))
      const first = yield* Effect.fork(a.cache.cached(slow, { key: "k" }))
      yield* waitUntil(Effect.sync(() => runs === 1))
      yield* Effect.sleep("350 millis")
      assert.strictEqual(yield* b.cache.cached(slow, { key: "k" }), 1)
      assert.strictEqual(yield* Fiber.join(first), 1)
      assert.strictEqual(runs, 1)
      assert.isAbove(failures, 1)
    }))
})

describe("invalidation wins", () => {
  for (const how of ["invalidateKey", "invalidateNamespace", "clear"] as const) {
    it.scoped(`${how} during a computation: its value is never served afterwards, in this process or another`, () =>
      Effect.gen(function*() {
        const stores = yield* sharedStores
        const a = yield* makeHarness({ stores })
        const b = yield* makeHarness({ stores })
        const gate = yield* Deferred.make<void>()
        let version = 0
        const query = Effect.sync(() => ++version).pipe(Effect.zipLeft(Deferred.await(gate)))
        const before = yield* Effect.fork(a.cache.cached(query, { key: "k" }))
        yield* waitUntil(Effect.sync(() => version === 1))
        // another process invalidates while A computes
        if (how === "invalidateKey") assert.isFalse(yield* b.cache.invalidateKey("k"))
        else if (how === "invalidateNamespace") yield* b.cache.invalidateNamespace("default")
        else yield* b.cache.clear
        yield* Deferred.succeed(gate, undefined)
        assert.strictEqual(yield* Fiber.join(before), 1)
        yield* a.cache.flush
        assert.strictEqual(yield* a.cache.cached(query, { key: "k" }), 2, "1 was computed before the invalidation")
        assert.strictEqual((yield* a.cache.stats).writesSuperseded, 1)
        yield* a.cache.flush
        assert.strictEqual(yield* b.cache.cached(query, { key: "k" }), 2)
      }))
  }

  it.scoped("a call made after invalidateKey returned never joins a computation that began before it", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness()
      const gate = yield* Deferred.make<void>()
      let version = 0
      const query = Effect.sync(() => ++version).pipe(Effect.zipLeft(Deferred.await(gate)))
      const before = yield* Effect.fork(cache.cached(query, { key: "k" }))
      yield* waitUntil(Effect.sync(() => version === 1))
      yield* cache.invalidateKey("k")
      const after = yield* Effect.fork(cache.cached(query, { key: "k" }))
      yield* waitUntil(Effect.sync(() => version === 2))
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Fiber.join(before), 1)
      assert.strictEqual(yield* Fiber.join(after), 2)
      yield* cache.flush
      assert.strictEqual(yield* cache.cached(Effect.die("must hit"), { key: "k" }), 2)
    }))
})

describe("in-process single flight", () => {
  it.scoped("the caller that started a lookup leaves during it: a caller that joined gets the value, computed once", () =>
    Effect.gen(function*() {
      const lookupEntered = yield* Deferred.make<void>()
      const lookupGate = yield* Deferred.make<void>()
      let lookups = 0
      const { cache } = yield* makeHarness({
        metadata: (store) => ({
          lookup: (namespace, hash, options) =>
            Effect.suspend(() => {
              // the first lookup (the first caller's) hangs until the test lets it go; later ones answer at once
              if (++lookups > 1) return store.lookup(namespace, hash, options)
              return Deferred.succeed(lookupEntered, undefined).pipe(
                Effect.zipRight(Deferred.await(lookupGate)),
                Effect.zipRight(store.lookup(namespace, hash, options))
              )
            })
        }),
        cache: { metadataTimeout: "1 hour" }
      })
      const query = counted({ rows: [1, 2, 3] })
      const first = yield* Effect.fork(cache.cached(query.effect, { key: "k" }))
      yield* Deferred.await(lookupEntered)
      const second = yield* Effect.fork(cache.cached(query.effect, { key: "k" }))
      yield* waitUntil(Effect.map(cache.stats, (stats) => stats.coalesced === 1))
      yield* Fiber.interrupt(first)
      // the second caller does not wait for the abandoned lookup: it looks up again and runs the effect
      assert.deepStrictEqual(yield* Fiber.join(second), { rows: [1, 2, 3] })
      assert.strictEqual(query.runs, 1)
      yield* Deferred.succeed(lookupGate, undefined)
      yield* cache.flush
      assert.deepStrictEqual(yield* cache.cached(Effect.die("must hit"), { key: "k" }), { rows: [1, 2, 3] })
    }))
})

describe("bounded work", () => {
  it.scoped("invalidateNamespace gives each step its own deadline and deletes objects step by step", () =>
    Effect.gen(function*() {
      const deleted: Array<number> = []
      let steps = 0
      const { blobs, cache, metadata } = yield* makeHarness({
        cache: { metadataTimeout: "1 second" },
        // every step takes 600 ms: three of them would not fit one deadline
        metadata: (store) => ({
          clearNamespace: (ns) =>
            Effect.zipRight(
              Effect.sleep("600 millis"),
              Effect.tap(store.clearNamespace(ns), () => Effect.sync(() => steps++))
            )
        }),
        blobs: (store) => ({
          delete: (keys) => Effect.tap(store.delete(keys), () => Effect.sync(() => deleted.push(steps)))
        })
      })
      const records = Array.from({ length: 2500 }, (_, i) => makeRecord("bulk", hashOf(`r${i}`)))
      for (const record of records) {
        yield* commitHeld(metadata, record, 10_000)
        yield* blobs.put(record.objectKey, new Uint8Array([1]))
      }
      const clearing = yield* Effect.fork(cache.invalidateNamespace("bulk"))
      for (let i = 0; i < 3; i++) yield* TestClock.adjust("600 millis")
      assert.strictEqual(yield* Fiber.join(clearing), 2500)
      assert.strictEqual(steps, 3)
      assert.deepStrictEqual(deleted, [1, 2, 3], "each step's objects were deleted before the next step")
      assert.strictEqual((yield* Stream.runCollect(blobs.list(""))).length, 0)
      assert.isFalse((yield* metadata.namespaces).includes("bulk"))
    }))
})
