/**
 * The cached call on a real Redis where outcomes are unknown (replies delayed past the deadline by a TCP proxy),
 * where records are tampered with, where another process invalidates, and where Redis is full.
 */
import { assert, describe, it } from "@effect/vitest"
import * as BlobStore from "@s3cache/core/BlobStore"
import * as Cache from "@s3cache/core/Cache"
import * as MetadataStore from "@s3cache/core/MetadataStore"
import * as FaultProxy from "@s3cache/core/test/FaultProxy"
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { RedisMetadataStore } from "../src/index.js"
import * as RedisServer from "./utils/RedisServer.js"

let counter = 0

/** A cache on Redis at `url`, on the given blob store; `metadataTimeout` is the cache's deadline per store call. */
const makeCache = (
  url: string,
  blobs: BlobStore.BlobStore["Type"],
  options: Cache.EmbeddedOptions = {},
  // far longer than the cache's deadline: a command is delivered and run even when the cache stopped waiting
  commandTimeout: Duration.DurationInput = "5 seconds"
) =>
  Effect.gen(function*() {
    const metadata = yield* RedisMetadataStore.make({ url, commandTimeout, awaitReady: "2 seconds" })
    return yield* Cache.make({ name: `redis-races-${process.pid}-${++counter}`, ...options }).pipe(
      Effect.provideService(MetadataStore.MetadataStore, metadata),
      Effect.provideService(BlobStore.BlobStore, blobs)
    )
  })

const rawClient = RedisServer.rawClient

describe("unknown outcomes on Redis", () => {
  it.scopedLive(
    "a lookup whose reply comes after the deadline took the lock: it is released, nobody waits a lease for it",
    () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.make()
        const proxy = yield* FaultProxy.make({ host: server.host, port: server.port })
        const blobs = yield* BlobStore.makeMemory
        const slowLease = { stampedeLockLease: "30 seconds", stampedeLockTtl: "1 minute" } as const
        const viaProxy = yield* makeCache(`redis://${proxy.host}:${proxy.port}/0`, blobs, {
          metadataTimeout: "200 millis",
          ...slowLease
        })
        const direct = yield* makeCache(server.url, blobs, slowLease)
        yield* viaProxy.cached(Effect.succeed("warm-up"), { key: "warm" }) // connects and loads the scripts
        // every chunk waits 400 ms each way: the lookup reaches Redis (and takes the lock) after the cache gave up
        yield* proxy.setMode({ latencyMs: 400 })
        assert.strictEqual(yield* viaProxy.cached(Effect.succeed("uncached"), { key: "k" }), "uncached")
        assert.strictEqual((yield* viaProxy.stats).bypassed, 1)
        yield* Effect.sleep("1500 millis")
        yield* proxy.setMode("pass")
        const hash = yield* direct.hashKey("k")
        const raw = yield* rawClient(server.url)
        assert.strictEqual(yield* Effect.promise(() => raw.exists(`qc:{default}:lock:${hash}`)), 0)
        // another process takes the lock at once instead of polling for 30 s
        const started = Date.now()
        assert.strictEqual(yield* direct.cached(Effect.succeed("fresh"), { key: "k" }), "fresh")
        assert.isBelow(Date.now() - started, 5000)
        assert.strictEqual((yield* direct.stats).bypassed, 0)
      }).pipe(FaultProxy.watchdog("20 seconds", "lookup timeout test")),
    30_000
  )

  it.scopedLive(
    "a commit whose reply comes after the deadline happened: its object is kept and the entry hits",
    () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.make()
        const proxy = yield* FaultProxy.make({ host: server.host, port: server.port })
        const blobs = yield* BlobStore.makeMemory
        const viaProxy = yield* makeCache(`redis://${proxy.host}:${proxy.port}/0`, blobs, {
          metadataTimeout: "300 millis"
        })
        const direct = yield* makeCache(server.url, blobs)
        yield* viaProxy.cached(Effect.succeed("warm-up"), { key: "warm" })
        yield* viaProxy.flush
        const gate = yield* Deferred.make<void>()
        const call = yield* Effect.fork(viaProxy.cached(Effect.as(Deferred.await(gate), "stored"), { key: "k" }))
        yield* Effect.sleep("100 millis") // the lookup took the lock; the effect waits
        yield* proxy.setMode({ latencyMs: 500 })
        yield* Deferred.succeed(gate, undefined)
        assert.strictEqual(yield* Fiber.join(call), "stored")
        yield* viaProxy.flush
        assert.strictEqual((yield* viaProxy.stats).writeFailures, 1, "the commit timed out")
        yield* Effect.sleep("1500 millis")
        yield* proxy.setMode("pass")
        assert.strictEqual(yield* direct.cached(Effect.die("must hit"), { key: "k" }), "stored")
        assert.strictEqual((yield* direct.stats).hits, 1)
      }).pipe(FaultProxy.watchdog("20 seconds", "commit timeout test")),
    30_000
  )
})

describe("values on Redis", () => {
  for (const [where, inlineThreshold] of [["inline in the record", 16384], ["in an object", 0]] as const) {
    it.scopedLive(
      `a record copied from another key is a miss, never the other entry's value (payload ${where})`,
      () =>
        Effect.gen(function*() {
          const server = yield* RedisServer.make()
          const blobs = yield* BlobStore.makeMemory
          const cache = yield* makeCache(server.url, blobs, { inlineThreshold })
          yield* cache.cached(Effect.succeed({ account: "alice", balance: 100 }), { key: "alice" })
          yield* cache.cached(Effect.succeed({ account: "bob", balance: 5 }), { key: "bob" })
          yield* cache.flush
          const alice = yield* cache.hashKey("alice")
          const bob = yield* cache.hashKey("bob")
          const raw = yield* rawClient(server.url)
          const record = yield* Effect.promise(() => raw.getBuffer(`qc:{default}:r:${alice}`))
          assert.isNotNull(record)
          yield* Effect.promise(() => raw.set(`qc:{default}:r:${bob}`, record!, "PX", 3_600_000))
          let runs = 0
          const bobQuery = Effect.sync(() => ({ account: "bob", balance: (runs++, 5) }))
          assert.deepStrictEqual(yield* cache.cached(bobQuery, { key: "bob" }), { account: "bob", balance: 5 })
          assert.strictEqual(runs, 1)
          yield* cache.flush
          assert.deepStrictEqual(yield* cache.cached(Effect.die("must hit"), { key: "bob" }), {
            account: "bob",
            balance: 5
          })
          assert.deepStrictEqual(yield* cache.cached(Effect.die("must hit"), { key: "alice" }), {
            account: "alice",
            balance: 100
          })
        }),
      30_000
    )
  }

  it.scopedLive(
    "invalidateKey in another process while this one computes: the old value is never served",
    () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.make()
        const blobs = yield* BlobStore.makeMemory
        const a = yield* makeCache(server.url, blobs)
        const b = yield* makeCache(server.url, blobs)
        const gate = yield* Deferred.make<void>()
        let version = 0
        const query = Effect.sync(() => ++version).pipe(Effect.zipLeft(Deferred.await(gate)))
        const before = yield* Effect.fork(a.cached(query, { key: "k" }))
        yield* Effect.sleep("100 millis")
        assert.strictEqual(version, 1)
        yield* b.invalidateKey("k")
        yield* Deferred.succeed(gate, undefined)
        assert.strictEqual(yield* Fiber.join(before), 1)
        yield* a.flush
        assert.strictEqual(yield* b.cached(query, { key: "k" }), 2)
        assert.strictEqual((yield* a.stats).writesSuperseded, 1)
      }),
    30_000
  )

  it.scopedLive("at maxmemory under noeviction, hits stay hits; misses run uncached", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make({ args: ["--maxmemory-policy", "noeviction"] })
      const blobs = yield* BlobStore.makeMemory
      const cache = yield* makeCache(server.url, blobs)
      yield* cache.cached(Effect.succeed("stored"), { key: "k" })
      yield* cache.flush
      const raw = yield* rawClient(server.url)
      yield* Effect.promise(() => raw.config("SET", "maxmemory", "1"))
      for (let i = 0; i < 5; i++) {
        assert.strictEqual(yield* cache.cached(Effect.die("must hit"), { key: "k" }), "stored")
      }
      assert.strictEqual(yield* cache.cached(Effect.succeed("uncached"), { key: "other" }), "uncached")
      const stats = yield* cache.stats
      assert.strictEqual(stats.hits, 5)
      assert.strictEqual(stats.bypassed, 1)
    }), 30_000)
})
