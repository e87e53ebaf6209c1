/**
 * The cache on Redis, with faults: Redis killed under load, blackholed, down when the layer is built. Every call
 * must return the right value within its deadline plus a margin, and hits must resume when Redis is back.
 */
import { assert, describe, it } from "@effect/vitest"
import * as BlobStore from "@s3cache/core/BlobStore"
import * as Cache from "@s3cache/core/Cache"
import * as MetadataStore from "@s3cache/core/MetadataStore"
import * as FaultProxy from "@s3cache/core/test/FaultProxy"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { performance } from "node:perf_hooks"
import { RedisMetadataStore } from "../src/index.js"
import * as RedisServer from "./utils/RedisServer.js"

let counter = 0
const metadataTimeoutMs = 300
/** deadline of a call whose cache is failing: one metadata deadline; the margin covers a loaded 2-core machine */
const budgetMs = metadataTimeoutMs + 1000

const makeCache = (url: string, options: Cache.EmbeddedOptions = {}, redis: RedisMetadataStore.Options = {}) =>
  Effect.gen(function*() {
    const metadata = yield* RedisMetadataStore.make({
      url,
      commandTimeout: "200 millis",
      awaitReady: "2 seconds",
      ...redis
    })
    const blobs = yield* BlobStore.makeMemory
    return yield* Cache.make({
      name: `redis-${process.pid}-${++counter}`,
      metadataTimeout: `${metadataTimeoutMs} millis`,
      ...options
    }).pipe(
      Effect.provideService(MetadataStore.MetadataStore, metadata),
      Effect.provideService(BlobStore.BlobStore, blobs)
    )
  })

const valueOf = (key: string) => ({ key, rows: [key.length, 42] })

/** Concurrent callers over ten keys; every call is checked for its value and timed. */
const load = (cache: Cache.Service, options: { readonly callers: number; readonly calls: number }) =>
  Effect.gen(function*() {
    let wrong = 0
    let slowest = 0
    yield* Effect.forEach(
      Array.from({ length: options.callers }, (_, c) => c),
      (caller) =>
        Effect.forEach(Array.from({ length: options.calls }, (_, i) => i), (i) =>
          Effect.gen(function*() {
            const key = `k${(caller * 7 + i) % 10}`
            const start = performance.now()
            const value = yield* cache.cached(Effect.sync(() => valueOf(key)), { key })
            slowest = Math.max(slowest, performance.now() - start)
            if (JSON.stringify(value) !== JSON.stringify(valueOf(key))) wrong++
            yield* Effect.sleep("5 millis")
          }), { discard: true }),
      { concurrency: "unbounded", discard: true }
    )
    return { calls: options.callers * options.calls, wrong, slowest }
  })

/** Call one key (twice, with a flush between) until the second call is a hit; dies instead of hanging. */
const untilHit = (cache: Cache.Service, key: string, attempts = 100): Effect.Effect<void> =>
  Effect.gen(function*() {
    const call = cache.cached(Effect.sync(() => valueOf(key)), { key })
    for (let i = 0; i < attempts; i++) {
      const before = (yield* cache.stats).hits
      yield* call
      yield* cache.flush
      yield* call
      if ((yield* cache.stats).hits > before) return
      yield* Effect.sleep("100 millis")
    }
    return yield* Effect.dieMessage(`no hit for ${key} after ${attempts} attempts`)
  })

describe("Cache on Redis under faults", () => {
  it.scopedLive(
    "Redis SIGKILLed under load: every call returns the right value in time; hits resume after restart",
    () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.make()
        const cache = yield* makeCache(server.url)
        yield* untilHit(cache, "k0")
        const running = yield* Effect.fork(load(cache, { callers: 20, calls: 60 }))
        yield* Effect.sleep("200 millis")
        yield* server.kill("SIGKILL")
        yield* Effect.sleep("800 millis")
        yield* server.restart
        const result = yield* Fiber.join(running)
        assert.strictEqual(result.wrong, 0)
        assert.isBelow(result.slowest, budgetMs, `the slowest call took ${result.slowest.toFixed(0)} ms`)
        const stats = yield* cache.stats
        assert.isAbove(stats.bypassed, 0, "some calls ran while Redis was down")
        yield* untilHit(cache, "k1")
      }).pipe(FaultProxy.watchdog("40 seconds", "SIGKILL test")),
    60_000
  )

  it.scopedLive(
    "Redis blackholed on open connections: every call returns in time; hits resume after",
    () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.make()
        const proxy = yield* FaultProxy.make({ host: server.host, port: server.port })
        const cache = yield* makeCache(`redis://${proxy.host}:${proxy.port}/0`)
        yield* untilHit(cache, "k0")
        yield* proxy.setMode("blackhole")
        const result = yield* load(cache, { callers: 10, calls: 20 })
        assert.strictEqual(result.wrong, 0)
        assert.isBelow(result.slowest, budgetMs, `the slowest call took ${result.slowest.toFixed(0)} ms`)
        assert.isAbove((yield* cache.stats).bypassed, 0)
        yield* proxy.setMode("pass")
        yield* untilHit(cache, "k2")
      }).pipe(FaultProxy.watchdog("40 seconds", "blackhole test")),
    60_000
  )

  it.scopedLive(
    "Redis down when the layer is built: the program starts, works uncached, and caches once Redis is up",
    () =>
      Effect.gen(function*() {
        const port = yield* FaultProxy.freePort
        const cache = yield* makeCache(`redis://127.0.0.1:${port}/0`)
        const result = yield* load(cache, { callers: 5, calls: 10 })
        assert.strictEqual(result.wrong, 0)
        assert.isBelow(result.slowest, budgetMs)
        const stats = yield* cache.stats
        assert.strictEqual(stats.hits, 0)
        assert.strictEqual(stats.bypassed, result.calls)
        yield* RedisServer.make({ port })
        yield* untilHit(cache, "k3")
      }).pipe(FaultProxy.watchdog("40 seconds", "down-at-build test")),
    60_000
  )
})

describe("Cache on Redis", () => {
  it.scopedLive(
    "eviction keeps the most recently read entries; TTL expiry; namespaces are independent",
    () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.make()
        // exact LRU order: the reads below come within milliseconds of each other
        const cache = yield* makeCache(server.url, { maxCacheEntries: 2 }, { lruResolution: 0 })
        let runs = 0
        const call = (key: string, namespace = "lru", ttl: Duration.DurationInput = "1 hour") =>
          cache.cached(Effect.sync(() => ++runs), { key, namespace, ttl }).pipe(Effect.zipLeft(cache.flush))
        yield* call("a")
        yield* call("b")
        yield* call("a") // read a: b is now the least recently used
        yield* call("c") // evicts b
        assert.strictEqual(runs, 3)
        yield* call("a")
        assert.strictEqual(runs, 3, "a was kept")
        yield* call("b")
        assert.strictEqual(runs, 4, "b was evicted")

        yield* call("short", "ttl", "300 millis")
        yield* call("short", "ttl", "300 millis")
        assert.strictEqual(runs, 5)
        yield* Effect.sleep("450 millis")
        yield* call("short", "ttl", "300 millis")
        assert.strictEqual(runs, 6, "expired")

        yield* call("x", "ns1")
        yield* call("x", "ns2")
        assert.strictEqual(yield* cache.invalidateNamespace("ns1"), 1)
        yield* call("x", "ns2")
        assert.strictEqual(runs, 8, "ns2 untouched")
        yield* call("x", "ns1")
        assert.strictEqual(runs, 9, "ns1 was invalidated")
      }),
    30_000
  )
})
