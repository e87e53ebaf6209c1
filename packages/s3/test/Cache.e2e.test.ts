/**
 * End to end with the production pairing's blob half: `Cache` on a memory metadata store (RedisMetadataStore
 * takes its place once @s3cache/redis exists) and `S3BlobStore` on s3rver. Two caches sharing the metadata store
 * and the bucket stand for two processes; one test uses a real second process.
 */
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3"
import { assert, describe, it } from "@effect/vitest"
import { BlobStore } from "@s3cache/core/BlobStore"
import * as Cache from "@s3cache/core/Cache"
import type * as CacheConfig from "@s3cache/core/CacheConfig"
import * as MetadataStore from "@s3cache/core/MetadataStore"
import { commitHeld } from "@s3cache/core/test/MetadataStoreSuite"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ChildProcess from "node:child_process"
import * as path from "node:path"
import * as S3BlobStore from "../src/S3BlobStore.js"
import * as RecordingProxy from "./utils/recordingProxy.js"
import { createBucket, rawClient, s3rver, storeOptions } from "./utils/servers.js"
import { shared } from "./utils/shared.js"

const bucket = "e2e"
const namespace = "e2e"
let caches = 0

const env = shared(Effect.gen(function*() {
  const server = yield* s3rver
  yield* createBucket(server, bucket)
  const proxy = yield* RecordingProxy.make(server)
  return { server, proxy, viaProxy: { endpoint: proxy.endpoint, credentials: server.credentials } }
}))

/** One "process": its own S3 client and cache, on the shared metadata store. */
const processOn = (
  metadata: MetadataStore.MetadataStore["Type"],
  options: Partial<S3BlobStore.Options> = {},
  cacheOptions: CacheConfig.Options = {}
) =>
  Effect.gen(function*() {
    const { viaProxy } = yield* env
    const blobs = yield* S3BlobStore.make({ ...storeOptions(viaProxy, bucket), ...options })
    // payloads to S3 even when small: these tests are about the S3 path (inline payloads skip it)
    return yield* Cache.make({ name: `e2e-${process.pid}-${++caches}`, inlineThreshold: 0, ...cacheOptions }).pipe(
      Effect.provideService(MetadataStore.MetadataStore, metadata),
      Effect.provideService(BlobStore, blobs)
    )
  })

const counted = <A>(value: () => A) => {
  let runs = 0
  return {
    effect: Effect.sync(() => {
      runs++
      return value()
    }),
    runs: () => runs
  }
}

const rows = (tag: string) => ({ tag, at: new Date(0), rows: Array.from({ length: 2000 }, (_, id) => ({ id })) })

describe("Cache + MetadataStore (memory) + S3BlobStore (s3rver)", () => {
  it.scopedLive(
    "process A misses and persists; process B hits and gets the same value; SSE on every put",
    () =>
      Effect.gen(function*() {
        const { proxy } = yield* env
        const metadata = yield* MetadataStore.makeMemory
        const a = yield* processOn(metadata)
        const b = yield* processOn(metadata)
        proxy.clear()
        const query = counted(() => rows("q1"))
        const first = yield* a.cached(query.effect, { key: "SELECT 1", namespace })
        yield* a.flush
        const second = yield* b.cached(query.effect, { key: "SELECT 1", namespace })
        assert.strictEqual(query.runs(), 1, "B must not run the query")
        assert.deepStrictEqual(second, first)
        assert.strictEqual((yield* b.stats).hits, 1)
        assert.strictEqual((yield* a.stats).misses, 1)
        const writes = proxy.objectWrites()
        assert.isAtLeast(writes.length, 1)
        for (const write of writes) assert.strictEqual(write.headers["x-amz-server-side-encryption"], "AES256")
      }),
    30_000
  )

  it.scopedLive(
    "a corrupted object (bytes changed in the bucket) is a miss, never a wrong value",
    () =>
      Effect.gen(function*() {
        const { server } = yield* env
        const metadata = yield* MetadataStore.makeMemory
        const a = yield* processOn(metadata)
        const b = yield* processOn(metadata)
        const query = counted(() => rows("q2"))
        const expected = yield* a.cached(query.effect, { key: "SELECT 2", namespace })
        yield* a.flush
        const hash = yield* a.hashKey("SELECT 2", namespace)
        const record = Option.getOrThrow((yield* metadata.getMany(namespace, [hash]))[0]!)

        // flip one byte of the stored object, same key, same length
        const raw = rawClient(server)
        yield* Effect.addFinalizer(() => Effect.sync(() => raw.destroy()))
        const Key = `query-cache/${record.objectKey}`
        const stored = yield* Effect.promise(() =>
          raw.send(new GetObjectCommand({ Bucket: bucket, Key })).then((output) => output.Body!.transformToByteArray())
        )
        const corrupted = stored.slice()
        const middle = Math.floor(corrupted.length / 2)
        corrupted[middle] = corrupted[middle]! ^ 0x40
        yield* Effect.promise(() => raw.send(new PutObjectCommand({ Bucket: bucket, Key, Body: corrupted })))

        const value = yield* b.cached(query.effect, { key: "SELECT 2", namespace })
        assert.deepStrictEqual(value, expected)
        assert.strictEqual(query.runs(), 2, "the corrupted entry must be recomputed, not decoded")
        assert.strictEqual((yield* b.stats).hits, 0)
        // the bad entry was dropped and written again: the next call hits with the right value
        yield* b.flush
        assert.deepStrictEqual(yield* b.cached(Effect.die("must hit"), { key: "SELECT 2", namespace }), expected)

        // a truncated object is a miss as well
        const record2 = Option.getOrThrow((yield* metadata.getMany(namespace, [hash]))[0]!)
        yield* Effect.promise(() =>
          raw.send(
            new PutObjectCommand({
              Bucket: bucket,
              Key: `query-cache/${record2.objectKey}`,
              Body: corrupted.slice(0, 10)
            })
          )
        )
        assert.deepStrictEqual(yield* b.cached(query.effect, { key: "SELECT 2", namespace }), expected)
        assert.strictEqual(query.runs(), 3)
      }),
    30_000
  )

  it.scopedLive("a 24 MB value goes through multipart upload and comes back intact", () =>
    Effect.gen(function*() {
      const metadata = yield* MetadataStore.makeMemory
      const options = { multipartThreshold: 5 * 1024 * 1024, partSize: 5 * 1024 * 1024 }
      const a = yield* processOn(metadata, options, { compression: "none", serializationFormat: "bytes" })
      const b = yield* processOn(metadata, options, { compression: "none", serializationFormat: "bytes" })
      const payload = new Uint8Array(24 * 1024 * 1024).map((_, i) => (i * 7919) % 251)
      yield* a.cached(Effect.succeed(payload), { key: "big", namespace })
      yield* a.flush
      const { proxy } = yield* env
      assert.isTrue(proxy.requests.some((request) => request.query.has("partNumber")), "uploaded in parts")
      const back = yield* b.cached(Effect.die("must hit"), { key: "big", namespace })
      assert.instanceOf(back, Uint8Array)
      assert.strictEqual((back as Uint8Array).byteLength, payload.byteLength)
      assert.isTrue(Buffer.from(back as Uint8Array).equals(Buffer.from(payload)))
    }), 60_000)

  it.scopedLive(
    "a real second process: the child writes through S3 (configured by S3CACHE_*), this one reads it",
    () =>
      Effect.gen(function*() {
        const { server } = yield* env
        const output = yield* runChild(server.endpoint)
        const parsed = JSON.parse(output) as {
          value: unknown
          record: MetadataStore.EntryRecord
          stats: { misses: number; writes: number }
        }
        assert.strictEqual(parsed.stats.misses, 1)
        assert.strictEqual(parsed.stats.writes, 1)
        // the shared metadata store (Redis in production), carried over by hand
        const metadata = yield* MetadataStore.makeMemory
        yield* commitHeld(metadata, parsed.record, 100)
        const reader = yield* processOn(metadata)
        const value = yield* reader.cached(Effect.die("must hit what the child wrote"), {
          key: "cross-process",
          namespace
        })
        assert.deepStrictEqual(value, parsed.value)
        assert.notStrictEqual((value as { pid: number }).pid, process.pid)
      }),
    60_000
  )
})

const runChild = (endpoint: string) =>
  Effect.async<string, Error>((resume) => {
    const child = ChildProcess.spawn(
      process.execPath,
      ["--import", "tsx", path.join(__dirname, "utils", "childWriter.ts"), "cross-process"],
      {
        cwd: path.join(__dirname, ".."),
        env: {
          ...process.env,
          S3CACHE_S3_BUCKET: bucket,
          S3CACHE_S3_ENDPOINT: endpoint,
          S3CACHE_S3_FORCE_PATH_STYLE: "true",
          S3CACHE_AWS_REGION: "us-east-1",
          S3CACHE_AWS_ACCESS_KEY_ID: "S3RVER",
          S3CACHE_AWS_SECRET_ACCESS_KEY: "S3RVER"
        },
        stdio: ["ignore", "pipe", "pipe"]
      }
    )
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk) => (stdout += chunk))
    child.stderr.on("data", (chunk) => (stderr += chunk))
    child.once("error", (error) => resume(Effect.fail(error)))
    child.once("exit", (code) =>
      resume(code === 0 ? Effect.succeed(stdout) : Effect.fail(new Error(`child exited with ${code}: ${stderr}`))))
    return Effect.sync(() =>
      child.kill("SIGKILL")
    )
  }).pipe(Effect.timeoutFail({ duration: "45 seconds", onTimeout: () => new Error("the child did not finish") }))
