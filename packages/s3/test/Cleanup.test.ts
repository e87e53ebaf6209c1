/**
 * `Cache.cleanupOrphanedObjects` through the S3 store on s3rver: what is deleted and kept (by the bucket's own
 * `LastModified`, not a test clock), `dryRun`, and 10,000 objects cleaned page by page with bounded memory.
 */
import { assert, describe, it } from "@effect/vitest"
import { BlobStore } from "@s3cache/core/BlobStore"
import * as Cache from "@s3cache/core/Cache"
import * as CacheKey from "@s3cache/core/CacheKey"
import * as MetadataStore from "@s3cache/core/MetadataStore"
import { commitHeld } from "@s3cache/core/test/MetadataStoreSuite"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as crypto from "node:crypto"
import * as S3BlobStore from "../src/S3BlobStore.js"
import * as RecordingProxy from "./utils/recordingProxy.js"
import { createBucket, s3rver, storeOptions } from "./utils/servers.js"
import { freshBucket, shared } from "./utils/shared.js"

const env = shared(Effect.gen(function*() {
  const server = yield* s3rver
  const proxy = yield* RecordingProxy.make(server)
  return { server, proxy, viaProxy: { endpoint: proxy.endpoint, credentials: server.credentials } }
}))

/** A bucket of its own, a store on it (through the recording proxy) and a cache on that store. */
const setup = Effect.gen(function*() {
  const { server, viaProxy } = yield* env
  const bucket = freshBucket("cleanup")
  yield* createBucket(server, bucket)
  // attempts 3: see the note on s3rver's DeleteObjects below
  const store = yield* S3BlobStore.make({ ...storeOptions(viaProxy, bucket), attempts: 3 })
  const direct = yield* S3BlobStore.make(storeOptions(server, bucket))
  const metadata = yield* MetadataStore.makeMemory
  const cache = yield* Cache.make({ name: `cleanup-${bucket}`, inlineThreshold: 0 }).pipe(
    Effect.provideService(MetadataStore.MetadataStore, metadata),
    Effect.provideService(BlobStore, store)
  )
  return { store, direct, metadata, cache }
})

const keysIn = (store: BlobStore["Type"]) =>
  Effect.map(Stream.runCollect(store.list("")), (infos) => Chunk.toReadonlyArray(infos).map((info) => info.key).sort())

const randomHash = () => crypto.randomBytes(32).toString("hex")

// s3rver's LastModified has one-second resolution: objects written 3+ s ago are past a 2 s grace age, objects
// written just before the cleanup look at most ~1 s old.
const graceAge = "2 seconds"
const pastGrace = Effect.sleep("3200 millis")

describe("Cache.cleanupOrphanedObjects on S3BlobStore (s3rver)", () => {
  it.scopedLive(
    "deletes unreferenced cache objects past the grace age; keeps young, referenced and foreign ones",
    () =>
      Effect.gen(function*() {
        const { cache, metadata, store } = yield* setup
        yield* cache.cached(Effect.succeed("kept"), { key: "live", ttl: "1 day" })
        yield* cache.flush
        const liveHash = yield* cache.hashKey("live")
        const live = (yield* metadata.getMany("default", [liveHash]))[0]!
        assert.isTrue(live._tag === "Some")
        const liveKey = live._tag === "Some" ? live.value.objectKey : ""
        const otherHash = yield* cache.hashKey("other")
        const storeId = yield* metadata.id
        const replaced = CacheKey.objectKey(storeId, "default", liveHash, "old-write")
        const unrecorded = CacheKey.objectKey(storeId, "default", otherHash, "w")
        const temp = `${CacheKey.objectKey(storeId, "default", otherHash, "w2")}.tmp-x1`
        const notes = `${storeId}/notes/README.txt`
        // another deployment's orphan-looking object in the same bucket prefix: not this cache's to judge
        const theirs = CacheKey.objectKey("another-deployment", "default", otherHash, "w")
        for (const key of [replaced, unrecorded, temp, notes, theirs]) yield* store.put(key, new Uint8Array([1]))
        yield* pastGrace
        const young = CacheKey.objectKey(storeId, "default", otherHash, "in-progress")
        yield* store.put(young, new Uint8Array([2]))

        const dry = yield* cache.cleanupOrphanedObjects({ dryRun: true, olderThan: graceAge })
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
        assert.strictEqual((yield* keysIn(store)).length, 7, "a dry run deletes nothing")

        const report = yield* cache.cleanupOrphanedObjects({ olderThan: graceAge, batchSize: 2 })
        assert.deepStrictEqual(report, { ...dry, dryRun: false, deleted: 3 })
        assert.deepStrictEqual(yield* keysIn(store), [liveKey, young, notes, theirs].sort())
        assert.strictEqual(yield* cache.cached(Effect.die("must hit"), { key: "live" }), "kept")
      }),
    30_000
  )

  it.scopedLive(
    "10,000 objects: listed page by page, checked and deleted in batches, with bounded memory",
    () =>
      Effect.gen(function*() {
        const { proxy } = yield* env
        const { cache, direct, metadata } = yield* setup
        const total = 10_000
        const referencedCount = 1_000
        const storeId = yield* metadata.id
        const keys = Array.from({ length: total }, (_, i) => CacheKey.objectKey(storeId, "bulk", randomHash(), `w${i}`))
        yield* Effect.forEach(keys, (key) => direct.put(key, new Uint8Array([1])), { concurrency: 32, discard: true })
        // the first 1,000 are live entries
        for (const objectKey of keys.slice(0, referencedCount)) {
          const parsed = CacheKey.parseObjectKey(objectKey)!
          yield* commitHeld(metadata, {
            hash: parsed.hash,
            namespace: "bulk",
            objectKey,
            format: "bytes",
            compression: "none",
            rawSize: 1,
            storedSize: 1,
            checksum: "sha256:none",
            createdAt: Date.now(),
            ttlMs: 3_600_000,
            codecVersion: 1,
            keyPreview: "bulk"
          }, total)
        }
        yield* pastGrace
        proxy.clear()

        const before = process.memoryUsage()
        let peakRss = before.rss
        let peakHeap = before.heapUsed
        const sampler = setInterval(() => {
          const now = process.memoryUsage()
          peakRss = Math.max(peakRss, now.rss)
          peakHeap = Math.max(peakHeap, now.heapUsed)
        }, 10)
        const report = yield* cache.cleanupOrphanedObjects({ olderThan: graceAge, batchSize: 500 }).pipe(
          Effect.ensuring(Effect.sync(() => clearInterval(sampler)))
        )
        assert.deepStrictEqual(report, {
          dryRun: false,
          listed: total,
          tooYoung: 0,
          referenced: referencedCount,
          foreign: 0,
          orphaned: total - referencedCount,
          deleted: total - referencedCount,
          failed: 0
        })

        const lists = proxy.requests.filter((request) => request.query.get("list-type") === "2")
        const deletes = proxy.requests.filter((request) => request.method === "POST" && request.query.has("delete"))
        assert.strictEqual(lists.length, 10, "1,000 keys a page")
        // one DeleteObjects per batch of 500 listed objects (each holds orphans), plus the retries that s3rver's
        // DeleteObjects needs: it deletes keys concurrently and races itself removing emptied folders (InternalError)
        assert.isAtLeast(deletes.length, total / 500)
        assert.isAtMost(deletes.length, (total / 500) * 3)
        // page by page: deletions start long before the last page is fetched (nothing collects the whole listing)
        const firstDelete = proxy.requests.indexOf(deletes[0]!)
        const lastList = proxy.requests.indexOf(lists[lists.length - 1]!)
        assert.isBelow(firstDelete, lastList)

        const rssGrowth = (peakRss - before.rss) / 1024 / 1024
        const heapGrowth = (peakHeap - before.heapUsed) / 1024 / 1024
        assert.isBelow(rssGrowth, 64, `RSS grew by ${rssGrowth.toFixed(1)} MB`)
        assert.isBelow(heapGrowth, 48, `heap grew by ${heapGrowth.toFixed(1)} MB`)
        assert.strictEqual((yield* keysIn(direct)).length, referencedCount)
      }),
    120_000
  )
})
