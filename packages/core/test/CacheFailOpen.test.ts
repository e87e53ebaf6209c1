import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as HashMap from "effect/HashMap"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as BlobStore from "../src/BlobStore.js"
import { BlobStoreError, MetadataStoreError } from "../src/CacheError.js"
import * as MetadataStore from "../src/MetadataStore.js"
import * as Serializer from "../src/Serializer.js"
import { counted, makeHarness, pastDeadline, waitUntil } from "./utils/harness.js"
import { commitHeld } from "./utils/MetadataStoreSuite.js"

const unavailable = (method: string) =>
  Effect.fail(new MetadataStoreError({ reason: "Unavailable", method, description: "injected" }))
const blobUnavailable = (method: string) =>
  Effect.fail(new BlobStoreError({ reason: "Unavailable", method, description: "injected" }))

describe("fail-open: the metadata store", () => {
  it.scoped("a failing lookup: the effect runs once, its value is returned, the error is counted", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness({ metadata: () => ({ lookup: () => unavailable("lookup") }) })
      const query = counted(42)
      assert.strictEqual(yield* cache.cached(query.effect, { key: "k" }), 42)
      assert.strictEqual(yield* cache.cached(query.effect, { key: "k" }), 42)
      assert.strictEqual(query.runs, 2)
      const stats = yield* cache.stats
      assert.strictEqual(stats.errors, 2)
      assert.strictEqual(stats.bypassed, 2)
      assert.strictEqual(stats.writes, 0, "a bypassed call does not try to store")
    }))

  it.scoped("a lookup that never answers: the call returns at the deadline", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness({
        cache: { metadataTimeout: "500 millis" },
        metadata: () => ({ lookup: () => Effect.never })
      })
      const query = counted("v")
      assert.strictEqual(yield* pastDeadline(cache.cached(query.effect, { key: "k" }), "500 millis"), "v")
      assert.strictEqual(query.runs, 1)
      assert.strictEqual((yield* cache.stats).bypassed, 1)
    }))

  it.scoped("a lookup that never answers and ignores interruption: the call still returns at the deadline", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness({
        cache: { metadataTimeout: "500 millis" },
        metadata: () => ({ lookup: () => Effect.uninterruptible(Effect.never) })
      })
      assert.strictEqual(yield* pastDeadline(cache.cached(Effect.succeed("v"), { key: "k" }), "500 millis"), "v")
    }))

  it.scopedLive("on the live clock too: the caller's fiber ends at the deadline, not when the store call does", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const { cache } = yield* makeHarness({
        cache: { metadataTimeout: "100 millis" },
        metadata: (store) => ({
          lookup: (namespace, hash, options) =>
            Effect.uninterruptible(Deferred.await(gate).pipe(Effect.zipRight(store.lookup(namespace, hash, options))))
        })
      })
      // a fiber of its own: it ends only once every fiber it forked has ended, so a store call forked as its child
      // would hold it until the gate opens
      const caller = yield* Effect.fork(cache.cached(Effect.succeed("v"), { key: "k" }))
      const exit = yield* Fiber.await(caller).pipe(Effect.timeoutOption("5 seconds"))
      assert.isTrue(Option.isSome(exit), "the caller's fiber ended while the store call still hung")
      assert.deepStrictEqual(Option.getOrThrow(exit), Exit.succeed("v"))
      yield* Deferred.succeed(gate, undefined)
    }))

  it.scoped("a lookup that never answers and ignores interruption does not hold up flush", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness({
        cache: { metadataTimeout: "500 millis" },
        metadata: () => ({ lookup: () => Effect.uninterruptible(Effect.never) })
      })
      assert.strictEqual(yield* pastDeadline(cache.cached(Effect.succeed("v"), { key: "k" }), "500 millis"), "v")
      const flushed = yield* Effect.fork(cache.flush)
      yield* TestClock.adjust("1 second")
      assert.isTrue(Option.isSome(yield* Fiber.poll(flushed)), "flush returned")
    }))

  it.scoped("a defect in a store is fenced like a failure", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness({
        metadata: () => ({
          lookup: () =>
            Effect.sync(() => {
              throw new Error("driver bug")
            })
        })
      })
      assert.strictEqual(yield* cache.cached(Effect.succeed("v"), { key: "k" }), "v")
      assert.strictEqual((yield* cache.stats).errors, 1)
    }))

  // A commit that failed or timed out may still have happened (its answer was lost): deleting its object could leave
  // a record pointing at nothing. The object stays; orphan cleanup removes it if no record references it.
  it.scoped("a failing commit: the value is returned, the object is kept (the outcome is unknown) for orphan cleanup", () =>
    Effect.gen(function*() {
      const { blobs, cache, metadata } = yield* makeHarness({
        metadata: () => ({ commit: () => unavailable("commit") })
      })
      assert.strictEqual(yield* cache.cached(Effect.succeed("v"), { key: "k" }), "v")
      yield* cache.flush
      const objects = yield* Stream.runCollect(blobs.list(""))
      assert.strictEqual(objects.length, 1, "an unknown outcome is not a failure: the object is not deleted")
      const stats = yield* cache.stats
      assert.strictEqual(stats.writeFailures, 1)
      assert.strictEqual(stats.errors, 1)
      // the lock is released: the commit's outcome is unknown, not the lock's
      const hash = yield* cache.hashKey("k")
      assert.strictEqual((yield* metadata.lookup("default", hash, { token: "t2", lockTtlMs: 1000 }))._tag, "Acquired")
      yield* TestClock.adjust("2 hours")
      const report = yield* cache.cleanupOrphanedObjects()
      assert.strictEqual(report.deleted, 1)
      assert.strictEqual((yield* Stream.runCollect(blobs.list(""))).length, 0)
    }))

  it.scoped("a commit the store refused (its lock was gone) wrote nothing: its object is deleted at once", () =>
    Effect.gen(function*() {
      const { blobs, cache } = yield* makeHarness({
        metadata: () => ({ commit: () => Effect.succeed({ _tag: "LockLost" } as const) })
      })
      assert.strictEqual(yield* cache.cached(Effect.succeed("v"), { key: "k" }), "v")
      yield* cache.flush
      assert.strictEqual((yield* Stream.runCollect(blobs.list(""))).length, 0)
      const stats = yield* cache.stats
      assert.strictEqual(stats.writesSuperseded, 1)
      assert.strictEqual(stats.writes, 0)
      assert.strictEqual(stats.errors, 0, "a superseded write is not a failure")
    }))
})

describe("fail-open: the blob store", () => {
  it.scoped("a failing upload: the value is returned, the lock released, the failure counted", () =>
    Effect.gen(function*() {
      const { cache, metadata } = yield* makeHarness({ blobs: () => ({ put: () => blobUnavailable("put") }) })
      const query = counted("v")
      assert.strictEqual(yield* cache.cached(query.effect, { key: "k" }), "v")
      yield* cache.flush
      assert.strictEqual(yield* metadata.size("default"), 0)
      const hash = yield* cache.hashKey("k")
      assert.strictEqual((yield* metadata.lookup("default", hash, { token: "t2", lockTtlMs: 1000 }))._tag, "Acquired")
      assert.strictEqual((yield* cache.stats).writeFailures, 1)
    }))

  it.scoped("a download that never answers: the call returns at the deadline and runs the effect", () =>
    Effect.gen(function*() {
      let hang = false
      const { cache } = yield* makeHarness({
        cache: { blobTimeout: "2 seconds" },
        blobs: (store) => ({ get: (key) => hang ? Effect.never : store.get(key) })
      })
      const query = counted("v")
      yield* cache.cached(query.effect, { key: "k" })
      yield* cache.flush
      hang = true
      // the deadline is blobTimeout plus the payload's few bytes at blobMinThroughput
      assert.strictEqual(yield* pastDeadline(cache.cached(query.effect, { key: "k" }), "3 seconds"), "v")
      assert.strictEqual(query.runs, 2)
      assert.strictEqual((yield* cache.stats).bypassed, 1)
      hang = false
      assert.strictEqual(yield* cache.cached(query.effect, { key: "k" }), "v")
      assert.strictEqual(query.runs, 2, "a slow store proves nothing against the entry: it was kept")
    }))

  it.scoped("a download that fails while the store is down: the entry is kept and hits resume when it is back", () =>
    Effect.gen(function*() {
      let down = false
      const { cache, metadata } = yield* makeHarness({
        blobs: (store) => ({ get: (key) => down ? blobUnavailable("get") : store.get(key) })
      })
      const query = counted("v")
      yield* cache.cached(query.effect, { key: "k" })
      yield* cache.flush
      down = true
      for (let i = 0; i < 3; i++) assert.strictEqual(yield* cache.cached(query.effect, { key: "k" }), "v")
      yield* cache.flush
      assert.strictEqual(query.runs, 4)
      assert.strictEqual(yield* metadata.size("default"), 1)
      const stats = yield* cache.stats
      assert.strictEqual(stats.bypassed, 3)
      assert.strictEqual(stats.writes, 1, "no rewrite while the store is down")
      down = false
      assert.strictEqual(yield* cache.cached(query.effect, { key: "k" }), "v")
      assert.strictEqual(query.runs, 4)
      assert.strictEqual((yield* cache.stats).hits, 1)
    }))

  it.scoped("a missing object: a miss, the bad entry is dropped and written again", () =>
    Effect.gen(function*() {
      const { blobs, cache, metadata } = yield* makeHarness()
      const query = counted({ n: 1 })
      yield* cache.cached(query.effect, { key: "k" })
      yield* cache.flush
      const hash = yield* cache.hashKey("k")
      const record = Option.getOrThrow((yield* metadata.getMany("default", [hash]))[0]!)
      yield* blobs.delete([record.objectKey])
      assert.deepStrictEqual(yield* cache.cached(query.effect, { key: "k" }), { n: 1 })
      assert.strictEqual(query.runs, 2)
      yield* cache.flush
      const again = Option.getOrThrow((yield* metadata.getMany("default", [hash]))[0]!)
      assert.notStrictEqual(again.objectKey, record.objectKey, "a new object key per write")
      assert.deepStrictEqual(yield* cache.cached(query.effect, { key: "k" }), { n: 1 })
      assert.strictEqual(query.runs, 2)
      assert.strictEqual((yield* cache.stats).errors, 1)
    }))

  it.scoped("corrupted bytes are a miss, never a wrong value", () =>
    Effect.gen(function*() {
      for (const compression of ["zstd", "none"] as const) {
        const { blobs, cache, metadata } = yield* makeHarness({ cache: { compression, compressionThreshold: 0 } })
        const query = counted({ balance: 100 })
        yield* cache.cached(query.effect, { key: "k" })
        yield* cache.flush
        const hash = yield* cache.hashKey("k")
        const record = Option.getOrThrow((yield* metadata.getMany("default", [hash]))[0]!)
        const bytes = Option.getOrThrow(yield* blobs.get(record.objectKey))
        const corrupted = Uint8Array.from(bytes)
        corrupted[corrupted.length - 1] = corrupted[corrupted.length - 1]! ^ 0x01
        yield* blobs.put(record.objectKey, corrupted)
        assert.deepStrictEqual(yield* cache.cached(query.effect, { key: "k" }), { balance: 100 })
        assert.strictEqual(query.runs, 2)
        assert.strictEqual((yield* cache.stats).errors, 1)
      }
    }))

  // A rolling deploy: a process that lacks a codec, or runs an older s3cache, meets entries it cannot read. They are
  // not damaged: another process reads them. It runs its effect uncached and leaves them alone.
  it.scoped("an entry this process cannot read (a codec it lacks, a newer codec version) is kept, not dropped", () =>
    Effect.gen(function*() {
      const upper: Serializer.Codec = {
        name: "upper",
        canEncode: (value) => typeof value === "string" && value.startsWith("UP:"),
        encode: (value) => Effect.succeed(new TextEncoder().encode(String(value))),
        decode: (bytes) => Effect.succeed(new TextDecoder().decode(bytes))
      }
      const metadata = yield* MetadataStore.makeMemory
      const blobs = yield* BlobStore.makeMemory
      const withCodec = yield* makeHarness({ stores: { metadata, blobs } }).pipe(
        Effect.provideService(Serializer.Serializer, Serializer.make({ codecs: [upper] }))
      )
      const without = yield* makeHarness({ stores: { metadata, blobs } })
      yield* withCodec.cache.cached(Effect.succeed("UP:a"), { key: "codec" })
      yield* withCodec.cache.flush
      const codecHash = yield* without.cache.hashKey("codec")
      const written = Option.getOrThrow((yield* metadata.getMany("default", [codecHash]))[0]!)
      assert.strictEqual(written.format, "upper")
      const query = counted("UP:a")
      assert.strictEqual(yield* without.cache.cached(query.effect, { key: "codec" }), "UP:a")
      assert.strictEqual(query.runs, 1)
      yield* without.cache.flush
      const after = Option.getOrThrow((yield* metadata.getMany("default", [codecHash]))[0]!)
      assert.deepStrictEqual(after, written, "neither dropped nor rewritten in a format the other reads")
      assert.strictEqual(yield* withCodec.cache.cached(Effect.die("must hit"), { key: "codec" }), "UP:a")
      // a record written by a newer s3cache
      yield* without.cache.cached(Effect.succeed("v"), { key: "newer" })
      yield* without.cache.flush
      const hash = yield* without.cache.hashKey("newer")
      const record = Option.getOrThrow((yield* metadata.getMany("default", [hash]))[0]!)
      yield* commitHeld(metadata, { ...record, codecVersion: Serializer.codecVersion + 1 }, 100)
      assert.strictEqual(yield* without.cache.cached(Effect.succeed("ran"), { key: "newer" }), "ran")
      yield* without.cache.flush
      assert.strictEqual(yield* metadata.size("default"), 2, "both entries are kept")
      assert.isTrue(Option.isSome(yield* blobs.get(record.objectKey)))
      assert.strictEqual((yield* without.cache.stats).bypassed, 2)
    }))

  it.scoped("an undecodable payload (the schema changed) is a miss", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness()
      const V1 = Schema.Struct({ id: Schema.Number })
      const V2 = Schema.Struct({ id: Schema.Number, name: Schema.String })
      yield* cache.cached(Effect.succeed({ id: 1 }), { key: "k", schema: V1 })
      yield* cache.flush
      const query = counted({ id: 1, name: "one" })
      assert.deepStrictEqual(yield* cache.cached(query.effect, { key: "k", schema: V2 }), { id: 1, name: "one" })
      assert.strictEqual(query.runs, 1)
      assert.strictEqual((yield* cache.stats).errors, 1)
    }))
})

describe("fail-open: bad input and unencodable values", () => {
  it.scoped("a bad namespace or TTL: the call returns uncached and the error says what to change", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness()
      const query = counted("v")
      assert.strictEqual(yield* cache.cached(query.effect, { key: "k", namespace: "{bad}" }), "v")
      assert.strictEqual(yield* cache.cached(query.effect, { key: "k", ttl: 0 }), "v")
      assert.strictEqual(yield* cache.cached(query.effect, { key: "k", ttl: -5 }), "v")
      assert.strictEqual(query.runs, 3)
      const stats = yield* cache.stats
      assert.strictEqual(stats.errors, 3)
      assert.strictEqual(stats.bypassed, 3)
    }))

  it.scoped("a value the format cannot encode: returned, not stored, the lock released", () =>
    Effect.gen(function*() {
      const { cache, metadata } = yield* makeHarness()
      const value = { f: () => 1 }
      assert.strictEqual(yield* cache.cached(Effect.succeed(value), { key: "k", format: "v8" }), value)
      assert.strictEqual(yield* cache.cached(Effect.succeed(10n), { key: "j", format: "json" }), 10n)
      yield* cache.flush
      assert.strictEqual(yield* metadata.size("default"), 0)
      const stats = yield* cache.stats
      assert.strictEqual(stats.writeFailures, 2)
      const hash = yield* cache.hashKey("k")
      assert.strictEqual((yield* metadata.lookup("default", hash, { token: "t", lockTtlMs: 1000 }))._tag, "Acquired")
    }))

  it.scoped("a bare key handed to the service method is the key, never shared as the key undefined", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness()
      const a = counted("a")
      const b = counted("b")
      assert.strictEqual(yield* cache.cached(a.effect, "key-a"), "a")
      assert.strictEqual(yield* cache.cached(b.effect, "key-b"), "b")
      yield* cache.flush
      assert.strictEqual(yield* cache.cached(Effect.die("must hit"), "key-a"), "a")
      assert.strictEqual(yield* cache.cached(Effect.die("must hit"), "key-b"), "b")
      const bare = yield* Effect.exit(cache.cached(Effect.succeed("u"), undefined as any))
      assert.deepStrictEqual(bare, Exit.succeed("u"))
      const stats = yield* cache.stats
      assert.strictEqual(stats.writes, 2)
      assert.strictEqual(stats.bypassed, 1, "an undefined key is refused: the call runs uncached")
    }))

  it.scoped("the blob deadline grows with the payload at blobMinThroughput", () =>
    Effect.gen(function*() {
      let hang = false
      const { cache } = yield* makeHarness({
        cache: { blobTimeout: "1 second", blobMinThroughput: 1000, compression: "none" },
        blobs: (store) => ({ get: (key) => hang ? Effect.never : store.get(key) })
      })
      const query = counted(new Uint8Array(10_000))
      yield* cache.cached(query.effect, { key: "big" })
      yield* cache.flush
      hang = true
      const fiber = yield* Effect.fork(cache.cached(query.effect, { key: "big" }))
      // 1 s + 10,000 bytes at 1,000 bytes/s = 11 s: still waiting after 10 s, done after 11 s
      yield* TestClock.adjust("10 seconds")
      assert.isNull(fiber.unsafePoll())
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* Fiber.join(fiber), new Uint8Array(10_000))
      assert.strictEqual(query.runs, 2)
    }))

  it.effect("an invalid option fails the layer with a typed error", () =>
    Effect.gen(function*() {
      for (
        const [options, text] of [
          [{ maxCacheEntries: -1 }, "maxCacheEntries"],
          [{ defaultTtl: 0 }, "defaultTtl"],
          [{ namespace: "a b" }, "namespace"],
          [{ compression: "lz4" as any }, "compression"],
          [{ writeConcurrency: 1.5 }, "writeConcurrency"]
        ] as const
      ) {
        const error = yield* Effect.flip(Effect.scoped(makeHarness({ cache: options })))
        assert.strictEqual(error._tag, "CacheInputError")
        assert.include(error.message, text)
      }
    }))
})

describe("shutdown", () => {
  it.live("closing the layer waits for pending writes: none is lost", () =>
    Effect.gen(function*() {
      const metadata = yield* MetadataStore.makeMemory
      const blobs = yield* BlobStore.makeMemory
      const scope = yield* Scope.make()
      const { cache } = yield* makeHarness({
        stores: { metadata, blobs },
        blobs: (store) => ({ put: (key, bytes) => Effect.zipRight(Effect.sleep("50 millis"), store.put(key, bytes)) })
      }).pipe(Scope.extend(scope))
      for (let i = 0; i < 20; i++) yield* cache.cached(Effect.succeed(i), { key: `k${i}` })
      assert.isTrue((yield* cache.stats).pendingWrites > 0)
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(yield* metadata.size("default"), 20)
      assert.strictEqual((yield* Stream.runCollect(blobs.list(""))).length, 20)
    }))

  // if closing waited for the write, this test would hang and fail on the runner's timeout
  it.live("closing is bounded by shutdownTimeout when a write never finishes", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const { cache } = yield* makeHarness({
        cache: { shutdownTimeout: "200 millis", blobTimeout: "1 hour" },
        blobs: () => ({ put: () => Effect.never })
      }).pipe(Scope.extend(scope))
      yield* cache.cached(Effect.succeed(1), { key: "k" })
      assert.strictEqual((yield* cache.stats).pendingWrites, 1)
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual((yield* cache.stats).pendingWrites, 0, "the stuck write was interrupted")
    }))
})

describe("across processes (two caches on shared stores)", () => {
  it.scopedLive("a caller that loses the lock waits for the winner's result instead of running the effect", () =>
    Effect.gen(function*() {
      const metadata = yield* MetadataStore.makeMemory
      const blobs = yield* BlobStore.makeMemory
      const a = yield* makeHarness({ stores: { metadata, blobs } })
      const b = yield* makeHarness({ stores: { metadata, blobs } })
      let runs = 0
      const slow = Effect.sync(() => ++runs).pipe(Effect.zipLeft(Effect.sleep("150 millis")), Effect.as("shared"))
      const first = yield* Effect.fork(a.cache.cached(slow, { key: "k" }))
      yield* waitUntil(Effect.sync(() => runs === 1))
      const second = yield* b.cache.cached(slow, { key: "k" })
      assert.strictEqual(yield* Fiber.join(first), "shared")
      assert.strictEqual(second, "shared")
      assert.strictEqual(runs, 1)
      assert.strictEqual((yield* b.cache.stats).hits, 1)
    }))

  it.scopedLive("the lock holder renews its lease, so a computation longer than the lease still runs once", () =>
    Effect.gen(function*() {
      const metadata = yield* MetadataStore.makeMemory
      const blobs = yield* BlobStore.makeMemory
      const options = { stampedeLockTtl: "20 seconds", stampedeLockLease: "150 millis" } as const
      const a = yield* makeHarness({ stores: { metadata, blobs }, cache: options })
      const b = yield* makeHarness({ stores: { metadata, blobs }, cache: options })
      let runs = 0
      const slow = Effect.sync(() => ++runs).pipe(Effect.zipLeft(Effect.sleep("700 millis")), Effect.as("long"))
      const first = yield* Effect.fork(a.cache.cached(slow, { key: "k" }))
      yield* waitUntil(Effect.sync(() => runs === 1))
      // without renewal the lease would expire after 150 ms and b would take the lock and run the effect again
      assert.strictEqual(yield* b.cache.cached(slow, { key: "k" }), "long")
      assert.strictEqual(yield* Fiber.join(first), "long")
      assert.strictEqual(runs, 1)
    }))

  it.scopedLive("a renewal slower than a sixth of the lease does not stop the renewals that follow", () =>
    Effect.gen(function*() {
      const metadata = yield* MetadataStore.makeMemory
      const blobs = yield* BlobStore.makeMemory
      // lease 300 ms: renewed every 100 ms; the first renewal takes 120 ms, longer than the loop's 50 ms fallback
      const options = { stampedeLockTtl: "20 seconds", stampedeLockLease: "300 millis" } as const
      let renewals = 0
      const a = yield* makeHarness({
        stores: { metadata, blobs },
        cache: options,
        metadata: (store) => ({
          renewLock: (namespace, hash, lock) =>
            Effect.suspend(() => ++renewals === 1 ? Effect.sleep("120 millis") : Effect.void).pipe(
              Effect.zipRight(store.renewLock(namespace, hash, lock))
            )
        })
      })
      const b = yield* makeHarness({ stores: { metadata, blobs }, cache: options })
      let runs = 0
      const slow = Effect.sync(() => ++runs).pipe(Effect.zipLeft(Effect.sleep("900 millis")), Effect.as("long"))
      const first = yield* Effect.fork(a.cache.cached(slow, { key: "k" }))
      yield* waitUntil(Effect.sync(() => runs === 1))
      // were the renewals to stop after the slow one, the lease would lapse and b would run the effect again
      assert.strictEqual(yield* b.cache.cached(slow, { key: "k" }), "long")
      assert.strictEqual(yield* Fiber.join(first), "long")
      assert.strictEqual(runs, 1)
      assert.isAtLeast(renewals, 5)
    }))

  it.scopedLive("the renewal loop runs in the cache's context: its logs carry no annotation of the call that started it", () =>
    Effect.gen(function*() {
      const logs: Array<{ readonly message: string; readonly annotations: Record<string, unknown> }> = []
      const logger = Logger.make(({ annotations, message }) => {
        logs.push({
          message: Array.isArray(message) ? message.join(" ") : String(message),
          annotations: Object.fromEntries(HashMap.toEntries(annotations))
        })
      })
      let renewals = 0
      // the logger and level are the cache's: its loop runs in the context the cache was made in
      const { cache } = yield* makeHarness({
        cache: { stampedeLockLease: "150 millis" },
        metadata: (store) => ({
          renewLock: (namespace, hash, lock) =>
            ++renewals === 1
              ? Effect.fail(new MetadataStoreError({ reason: "Unavailable", method: "renewLock", description: "down" }))
              : store.renewLock(namespace, hash, lock)
        })
      }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)), Logger.withMinimumLogLevel(LogLevel.Debug))
      const slow = Effect.as(Effect.sleep("300 millis"), "v")
      yield* cache.cached(slow, { key: "k" }).pipe(Effect.annotateLogs("request", "r-1"))
      yield* cache.flush
      const renewal = logs.find((log) => log.message.includes("could not renew"))
      assert.isDefined(renewal, "the failed renewal was logged")
      assert.notProperty(renewal!.annotations, "request")
    }))

  // with stampedeLockTtl at one minute, a waiter that waited for it would fail this test on the runner's timeout
  it.scopedLive("a dead lock holder blocks the key for one lease, not for stampedeLockTtl", () =>
    Effect.gen(function*() {
      const { cache, metadata } = yield* makeHarness({
        cache: { stampedeLockTtl: "1 minute", stampedeLockLease: "200 millis" }
      })
      const hash = yield* cache.hashKey("k")
      yield* metadata.lookup("default", hash, { token: "dead-process", lockTtlMs: 200 })
      const query = counted("recovered")
      assert.strictEqual(yield* cache.cached(query.effect, { key: "k" }), "recovered")
      assert.strictEqual(query.runs, 1)
    }))

  it.scopedLive("when the lock holder never delivers, the waiter runs the effect after stampedeLockTtl", () =>
    Effect.gen(function*() {
      const { cache, metadata } = yield* makeHarness({ cache: { stampedeLockTtl: "300 millis" } })
      const hash = yield* cache.hashKey("k")
      yield* metadata.lookup("default", hash, { token: "crashed-process", lockTtlMs: 60_000 })
      const query = counted("mine")
      assert.strictEqual(yield* cache.cached(query.effect, { key: "k" }), "mine")
      assert.strictEqual(query.runs, 1)
    }))
})
