/**
 * Grace on a real Redis: a record lives its TTL plus its grace on the server, a stale entry is served at once (also
 * through the one-step read) and refreshed once across processes, through the stampede lock.
 */
import { assert, describe, it } from "@effect/vitest"
import * as BlobStore from "@s3cache/core/BlobStore"
import * as Cache from "@s3cache/core/Cache"
import * as MetadataStore from "@s3cache/core/MetadataStore"
import * as Effect from "effect/Effect"
import { RedisMetadataStore } from "../src/index.js"
import * as RedisServer from "./utils/RedisServer.js"

let counter = 0

const makeCache = (url: string, options: Cache.EmbeddedOptions = {}) =>
  Effect.gen(function*() {
    const metadata = yield* RedisMetadataStore.make({ url, awaitReady: "2 seconds" })
    const blobs = yield* BlobStore.makeMemory
    return yield* Cache.make({ name: `fail-safe-${process.pid}-${++counter}`, ...options }).pipe(
      Effect.provideService(MetadataStore.MetadataStore, metadata),
      Effect.provideService(BlobStore.BlobStore, blobs)
    )
  })

describe("grace on Redis", () => {
  it.scopedLive("the record lives ttl + grace; a stale entry is served at once and refreshed once across processes", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const admin = yield* RedisServer.rawClient(server.url)
      // two processes on one Redis (each its own client, its own in-process state)
      const a = yield* makeCache(server.url, { grace: "30 seconds" })
      const b = yield* makeCache(server.url, { grace: "30 seconds" })
      let runs = 0
      const source = Effect.suspend(() => {
        const run = ++runs
        return Effect.as(Effect.sleep(run === 1 ? 0 : "1500 millis"), `version ${run}`)
      })
      const options = { key: "report", ttl: "500 millis" } as const
      assert.strictEqual(yield* a.cached(source, options), "version 1")
      yield* a.flush
      const [key] = yield* Effect.promise(() => admin.keys("qc:*:r:*"))
      const pttl = yield* Effect.promise(() => admin.pttl(key!))
      assert.isAbove(pttl, 29_000, "kept for its grace past the TTL")
      assert.isAtMost(pttl, 30_500)

      yield* Effect.sleep("600 millis")
      // stale now: every caller of both processes gets it without waiting for the 1.5 s refresh
      const started = Date.now()
      const values = yield* Effect.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).cached(source, options)),
        { concurrency: "unbounded" }
      )
      const elapsed = Date.now() - started
      assert.deepStrictEqual(new Set(values), new Set(["version 1"]))
      assert.isBelow(elapsed, 1000, `stale calls took ${elapsed} ms: they waited for the refresh`)
      yield* a.flush
      yield* b.flush
      assert.strictEqual(runs, 2, "one refresh across both processes")
      assert.strictEqual(yield* b.cached(source, options), "version 2")
      assert.strictEqual(yield* a.cached(source, options), "version 2")
      const stats = [yield* a.stats, yield* b.stats]
      // callers of one key in one process that overlap share one lookup (single flight), counted as coalesced
      assert.strictEqual(
        stats[0]!.staleServed + stats[1]!.staleServed + stats[0]!.coalesced + stats[1]!.coalesced,
        10
      )
      assert.strictEqual(stats[0]!.refreshes + stats[1]!.refreshes, 1)
    }))

  it.scopedLive("the one-step read hands a stale record to the full path: it is served, not taken for fresh", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      // a resolution no test outlives: hits go through the one-step read (a plain GET)
      const metadata = yield* RedisMetadataStore.make({ url: server.url, lruResolution: "1 minute" })
      const cache = yield* Cache.make({ name: `fail-safe-${process.pid}-${++counter}`, grace: "1 minute" }).pipe(
        Effect.provideService(MetadataStore.MetadataStore, metadata),
        Effect.provideService(BlobStore.BlobStore, yield* BlobStore.makeMemory)
      )
      let runs = 0
      const call = cache.cached(Effect.sync(() => `version ${++runs}`), { key: "k", ttl: "300 millis" })
      yield* call
      yield* cache.flush
      yield* call
      yield* Effect.sleep("400 millis")
      assert.strictEqual(yield* call, "version 1")
      yield* cache.flush
      assert.strictEqual(runs, 2)
      assert.strictEqual(yield* call, "version 2")
      const stats = yield* cache.stats
      assert.strictEqual(stats.staleServed, 1)
      assert.strictEqual(stats.hits, 3)
    }))
})
