/**
 * Closing the cache's layer: nothing hangs, nothing is left behind, nothing is lost silently.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as BlobStore from "../src/BlobStore.js"
import { MetadataStoreError } from "../src/CacheError.js"
import * as MetadataStore from "../src/MetadataStore.js"
import { counted, makeHarness, waitUntil } from "./utils/harness.js"

/** Fails with "HANG" instead of waiting for the runner's timeout. */
const noHang = <A, E>(effect: Effect.Effect<A, E>, what: string) =>
  effect.pipe(
    Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error(`HANG: ${what}`) }),
    Effect.orDie
  )

const sharedStores = Effect.all({ metadata: MetadataStore.makeMemory, blobs: BlobStore.makeMemory })

describe("Cache.flush", () => {
  it.scopedLive("waits for the writes pending when it is called, not for the queue to run dry under load", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness({
        blobs: (store) => ({ put: (key, bytes) => Effect.zipRight(Effect.sleep("200 millis"), store.put(key, bytes)) })
      })
      yield* cache.cached(Effect.succeed("first"), { key: "first" })
      // a new miss every 50 ms: the write queue is never empty
      let i = 0
      const miss = Effect.suspend(() => {
        const n = i++
        return cache.cached(Effect.succeed(n), { key: `load-${n}` })
      })
      const load = yield* Effect.fork(Effect.forever(Effect.zipRight(miss, Effect.sleep("50 millis"))))
      yield* Effect.sleep("120 millis")
      yield* noHang(cache.flush, "flush under load")
      // what was pending at the call is stored
      assert.strictEqual(yield* cache.cached(Effect.die("must hit"), { key: "first" }), "first")
      assert.strictEqual(yield* cache.cached(Effect.die("must hit"), { key: "load-0" }), 0)
      assert.isAbove((yield* cache.stats).pendingWrites, 0, "the load went on: the queue never ran dry")
      yield* Fiber.interrupt(load)
    }))
})

describe("closing the cache", () => {
  it.scopedLive("a cold call immediately followed by closing returns, and leaves no entry, computation or lock", () =>
    Effect.gen(function*() {
      const stores = yield* sharedStores
      for (let round = 0; round < 20; round++) {
        const scope = yield* Scope.make()
        const { cache } = yield* makeHarness({ stores }).pipe(Scope.extend(scope))
        const call = yield* Effect.fork(cache.cached(Effect.sleep("20 millis").pipe(Effect.as("v")), { key: "k" }))
        // closing before the call's computation has taken its first step, or while it runs
        if (round % 2 === 1) yield* Effect.yieldNow()
        yield* noHang(Scope.close(scope, Exit.void), "closing")
        const exit = yield* noHang(Fiber.await(call), "the call")
        assert.isTrue(Exit.isSuccess(exit) ? exit.value === "v" : Exit.isInterrupted(exit), String(exit))
        assert.strictEqual(yield* cache.inFlight, 0, "no computation is left for later callers to join")
        // a later call returns too (uncached, as the cache is closed)
        assert.strictEqual(
          yield* noHang(cache.cached(Effect.succeed("after"), { key: "k" }), "a call after close"),
          "after"
        )
      }
      assert.strictEqual(yield* stores.metadata.size("default"), 0, "no entry was written")
      const hash = (yield* makeHarness({ stores })).cache.hashKey("k")
      const lookup = yield* stores.metadata.lookup("default", yield* hash, { token: "next", lockTtlMs: 1000 })
      assert.strictEqual(lookup._tag, "Acquired", "no lock was left behind")
    }))

  it.live("a call made while the layer drains its writes returns its value uncached and writes nothing", () =>
    Effect.gen(function*() {
      const stores = yield* sharedStores
      const uploadGate = yield* Deferred.make<void>()
      const scope = yield* Scope.make()
      const { cache } = yield* makeHarness({
        stores,
        blobs: (store) => ({ put: (key, bytes) => Effect.zipRight(Deferred.await(uploadGate), store.put(key, bytes)) })
      }).pipe(Scope.extend(scope))
      yield* cache.cached(Effect.succeed("first"), { key: "a" })
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* Effect.sleep("20 millis")
      const during = counted("during")
      assert.strictEqual(yield* noHang(cache.cached(during.effect, { key: "b" }), "a call during the drain"), "during")
      assert.strictEqual(during.runs, 1)
      yield* Deferred.succeed(uploadGate, undefined)
      yield* noHang(Fiber.join(closing), "closing")
      // the pending write finished (nothing lost); the call made during the drain wrote nothing
      const hashA = yield* cache.hashKey("a")
      const hashB = yield* cache.hashKey("b")
      const records = yield* stores.metadata.getMany("default", [hashA, hashB])
      assert.isTrue(Option.isSome(records[0]!))
      assert.isTrue(Option.isNone(records[1]!))
      assert.strictEqual((yield* Stream.runCollect(stores.blobs.list(""))).length, 1)
    }))

  it.scopedLive("closing releases the locks it holds: a restarted process does not wait a lease for them", () =>
    Effect.gen(function*() {
      const stores = yield* sharedStores
      const options = { stampedeLockTtl: "1 minute", stampedeLockLease: "30 seconds" } as const
      const scope = yield* Scope.make()
      const first = yield* makeHarness({ stores, cache: options }).pipe(Scope.extend(scope))
      let started = false
      const slow = Effect.sync(() => (started = true)).pipe(Effect.zipRight(Effect.never))
      yield* Effect.fork(first.cache.cached(slow, { key: "k" }))
      yield* waitUntil(Effect.sync(() => started))
      yield* noHang(Scope.close(scope, Exit.void), "closing")
      // the "restarted process": a new cache on the same stores
      const second = yield* makeHarness({ stores, cache: options })
      const query = counted("fresh")
      assert.strictEqual(yield* noHang(second.cache.cached(query.effect, { key: "k" }), "the restarted call"), "fresh")
      assert.strictEqual(query.runs, 1)
      assert.strictEqual((yield* second.cache.stats).bypassed, 0, "it took the lock, it did not wait for one")
    }))

  it.effect("a store outage leaves no pile of tokens: a lock that may be held is forgotten once it surely lapsed", () =>
    Effect.gen(function*() {
      let down = true
      let releasesAtClose = 0
      let closing = false
      const failing = (method: string) =>
        Effect.fail(new MetadataStoreError({ reason: "Unavailable", method, description: "outage" }))
      const scope = yield* Scope.make()
      const { cache } = yield* makeHarness({
        cache: { stampedeLockLease: "5 seconds", metadataTimeout: "1 second" },
        metadata: (store) => ({
          lookup: (ns, hash, options) => down ? failing("lookup") : store.lookup(ns, hash, options),
          releaseLock: (ns, hash, token) => {
            if (closing) releasesAtClose++
            return down ? failing("releaseLock") : store.releaseLock(ns, hash, token)
          }
        })
      }).pipe(Scope.extend(scope))
      for (let i = 0; i < 300; i++) yield* cache.cached(Effect.succeed(i), { key: `k${i}` })
      yield* cache.flush
      down = false
      // every lock those lookups may have taken has lapsed by itself one lease later
      yield* TestClock.adjust("10 seconds")
      closing = true
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(releasesAtClose, 0, "no release is owed for a lock that lapsed long ago")
    }))

  it.live("refreshes under way at shutdown (background, and foreground past a soft timeout) are interrupted", () =>
    Effect.gen(function*() {
      const stores = yield* sharedStores
      const scope = yield* Scope.make()
      const { cache } = yield* makeHarness({
        stores,
        cache: { grace: "1 hour", softTimeout: "10 millis", stampedeLockLease: "30 seconds" }
      }).pipe(Scope.extend(scope))
      let runs = 0
      const effect = Effect.suspend(() => ++runs <= 2 ? Effect.succeed(runs) : Effect.never)
      for (const key of ["background", "foreground"]) {
        yield* cache.cached(effect, { key, ttl: "50 millis" })
      }
      yield* cache.flush
      yield* Effect.sleep("100 millis")
      assert.strictEqual(yield* cache.cached(effect, { key: "background", ttl: "50 millis" }), 1)
      assert.strictEqual(
        yield* cache.cached(effect, { key: "foreground", ttl: "50 millis", refresh: "foreground" }),
        2,
        "the stale value at the soft timeout"
      )
      yield* waitUntil(Effect.sync(() => runs === 4))
      yield* noHang(Scope.close(scope, Exit.void), "closing")
      // both locks are released: another process may refresh at once
      for (const key of ["background", "foreground"]) {
        const hash = yield* cache.hashKey(key)
        assert.isTrue(yield* stores.metadata.acquireLock("default", hash, { token: "next", lockTtlMs: 1000 }), key)
      }
    }))

  it.live("writes abandoned at shutdown are counted, and their locks released", () =>
    Effect.gen(function*() {
      const stores = yield* sharedStores
      const scope = yield* Scope.make()
      const { cache } = yield* makeHarness({
        stores,
        cache: { shutdownTimeout: "100 millis", blobTimeout: "1 hour", stampedeLockLease: "30 seconds" },
        blobs: () => ({ put: () => Effect.never })
      }).pipe(Scope.extend(scope))
      yield* cache.cached(Effect.succeed(1), { key: "k" })
      yield* noHang(Scope.close(scope, Exit.void), "closing")
      // the lock of the abandoned write is released, though the write's own release was cut off by the closing
      const hash = yield* cache.hashKey("k")
      const lookup = yield* stores.metadata.lookup("default", hash, { token: "next", lockTtlMs: 1000 })
      assert.strictEqual(lookup._tag, "Acquired")
      const stats = yield* cache.stats
      assert.strictEqual(stats.writesAbandoned, 1)
      assert.strictEqual(stats.pendingWrites, 0)
    }))
})
