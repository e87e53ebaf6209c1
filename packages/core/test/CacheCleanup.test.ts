import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as CacheKey from "../src/CacheKey.js"
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
      const replaced = CacheKey.objectKey("default", liveHash, "old-write")
      const unrecorded = CacheKey.objectKey("default", otherHash, "w")
      const temp = `${CacheKey.objectKey("default", otherHash, "w2")}.tmp-x1`
      for (const key of [replaced, unrecorded, temp, "notes/README.txt"]) yield* blobs.put(key, bytes)
      yield* TestClock.adjust("2 hours")
      // an upload in progress: younger than the grace age
      const young = CacheKey.objectKey("default", otherHash, "in-progress")
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

      const report = yield* cache.cleanupOrphanedObjects({ batchSize: 2 })
      assert.strictEqual(report.orphaned, 3)
      assert.strictEqual(report.deleted, 3)
      const left = Array.from(yield* Stream.runCollect(blobs.list("")), (info) => info.key).sort()
      assert.deepStrictEqual(left, [live.objectKey, young, "notes/README.txt"].sort())
      // the live entry still reads
      assert.strictEqual(yield* cache.cached(Effect.die("must hit"), { key: "live" }), "kept")
    }))

  it.scoped("olderThan sets the grace age; bad options are typed errors", () =>
    Effect.gen(function*() {
      const { blobs, cache } = yield* makeHarness()
      const hash = yield* cache.hashKey("x")
      yield* blobs.put(CacheKey.objectKey("default", hash, "w"), new Uint8Array([1]))
      yield* TestClock.adjust("10 minutes")
      assert.strictEqual((yield* cache.cleanupOrphanedObjects()).deleted, 0)
      assert.strictEqual((yield* cache.cleanupOrphanedObjects({ olderThan: "5 minutes" })).deleted, 1)
      const error = yield* Effect.flip(cache.cleanupOrphanedObjects({ batchSize: 0 }))
      assert.strictEqual(error._tag, "CacheInputError")
      assert.include(error.message, "batchSize")
    }))
})
