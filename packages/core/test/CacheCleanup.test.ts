import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as BlobStore from "../src/BlobStore.js"
import * as CacheKey from "../src/CacheKey.js"
import * as MetadataStore from "../src/MetadataStore.js"
import { makeHarness } from "./utils/harness.js"

describe("Cache.cleanupOrphanedObjects", () => {
  it.scoped("deletes only unreferenced cache objects older than the grace age", () =>
    Effect.gen(function*() {
      const { blobs, cache, metadata } = yield* makeHarness()
      const bytes = new Uint8Array([1])
      // a live entry: referenced
      yield* cache.cached(Effect.succeed("kept"), { key: "live", ttl: "1 day" })
      yield* cache.flush
      const liveHash = yield* cache.hashKey("live")
      const live = Option.getOrThrow((yield* metadata.getMany("default", [liveHash]))[0]!)
      // an old object of the same entry (replaced), an entry that never got its record, a crashed temp file
      const otherHash = yield* cache.hashKey("other")
      const storeId = yield* metadata.id
      const replaced = CacheKey.objectKey(storeId, "default", liveHash, "old-write")
      const unrecorded = CacheKey.objectKey(storeId, "default", otherHash, "w")
      const temp = `${CacheKey.objectKey(storeId, "default", otherHash, "w2")}.tmp-x1`
      for (const key of [replaced, unrecorded, temp, `${storeId}/notes/README.txt`]) yield* blobs.put(key, bytes)
      yield* TestClock.adjust("2 hours")
      // an upload in progress: younger than the grace age
      const young = CacheKey.objectKey(storeId, "default", otherHash, "in-progress")
      yield* blobs.put(young, bytes)

      const dry = yield* cache.cleanupOrphanedObjects({ dryRun: true })
      assert.deepStrictEqual(dry, {
        dryRun: true,
        listed: 6,
        tooYoung: 1,
        referenced: 1,
        foreign: 1,
        orphaned: 3,
        deleted: 0,
        failed: 0
      })
      assert.strictEqual((yield* Stream.runCollect(blobs.list(""))).length, 6)

      const progress: Array<[number, number]> = []
      const report = yield* cache.cleanupOrphanedObjects({
        batchSize: 2,
        progress: (so) => Effect.sync(() => progress.push([so.listed, so.deleted]))
      })
      // one report per batch of two, each with what was done so far; the last is the result
      assert.strictEqual(progress.length, 3)
      assert.deepStrictEqual(progress.map(([listed]) => listed), [2, 4, 6])
      assert.deepStrictEqual(progress.at(-1), [report.listed, report.deleted])
      assert.strictEqual(report.orphaned, 3)
      assert.strictEqual(report.deleted, 3)
      const left = Array.from(yield* Stream.runCollect(blobs.list("")), (info) => info.key).sort()
      assert.deepStrictEqual(left, [live.objectKey, young, `${storeId}/notes/README.txt`].sort())
      // the live entry still reads
      assert.strictEqual(yield* cache.cached(Effect.die("must hit"), { key: "live" }), "kept")
    }))

  it.scoped("olderThan sets the grace age; bad options are typed errors", () =>
    Effect.gen(function*() {
      const { blobs, cache, metadata } = yield* makeHarness()
      const hash = yield* cache.hashKey("x")
      const young = CacheKey.objectKey(yield* metadata.id, "default", hash, "w")
      yield* blobs.put(young, new Uint8Array([1]))
      yield* TestClock.adjust("10 minutes")
      assert.strictEqual((yield* cache.cleanupOrphanedObjects()).deleted, 0)
      const error = yield* Effect.flip(cache.cleanupOrphanedObjects({ batchSize: 0 }))
      assert.strictEqual(error._tag, "CacheInputError")
      assert.include(error.message, "batchSize")
      // Effect's Duration reads a negative or NaN number as zero: "delete uploads still in flight". Refused instead.
      for (const olderThan of [-1, NaN, "-5 minutes", -5n, Infinity, "soon"] as const) {
        const bad = yield* Effect.flip(cache.cleanupOrphanedObjects({ olderThan: olderThan as any }))
        assert.strictEqual(bad._tag, "CacheInputError", String(olderThan))
        assert.include(bad.message, "olderThan")
      }
      yield* blobs.put(CacheKey.objectKey(yield* metadata.id, "default", hash, "w2"), new Uint8Array([1]))
      assert.strictEqual((yield* Stream.runCollect(blobs.list(""))).length, 2, "nothing was deleted by bad input")
      assert.strictEqual((yield* cache.cleanupOrphanedObjects({ olderThan: "5 minutes" })).deleted, 1)
      assert.strictEqual((yield* cache.cleanupOrphanedObjects({ olderThan: 0 })).deleted, 1)
    }))

  it.scoped("deletes only what this cache wrote: another deployment's objects in the same bucket prefix are kept", () =>
    Effect.gen(function*() {
      // two deployments (two metadata stores) on one blob store, each with a live entry
      const blobs = yield* BlobStore.makeMemory
      const mine = yield* makeHarness({ stores: { metadata: yield* MetadataStore.makeMemory, blobs } })
      const theirs = yield* makeHarness({ stores: { metadata: yield* MetadataStore.makeMemory, blobs } })
      yield* mine.cache.cached(Effect.succeed("mine"), { key: "k", ttl: "1 day" })
      yield* theirs.cache.cached(Effect.succeed("theirs"), { key: "k", ttl: "1 day" })
      yield* mine.cache.flush
      yield* theirs.cache.flush
      yield* TestClock.adjust("2 hours")
      const report = yield* mine.cache.cleanupOrphanedObjects()
      assert.strictEqual(report.deleted, 0)
      assert.strictEqual(report.listed, 1, "only this cache's objects are looked at")
      assert.strictEqual(yield* theirs.cache.cached(Effect.die("must hit"), { key: "k" }), "theirs")
      assert.strictEqual(yield* mine.cache.cached(Effect.die("must hit"), { key: "k" }), "mine")
    }))
})
