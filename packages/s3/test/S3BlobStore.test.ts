/**
 * What the conformance suite does not cover: SSE on the wire, multipart uploads (and their abort), where objects
 * land in the bucket, error descriptions, option validation, `layerConfig`, spans.
 */
import { ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3"
import { assert, describe, it } from "@effect/vitest"
import { BlobStore } from "@s3cache/core/BlobStore"
import * as CacheTracing from "@s3cache/core/CacheTracing"
import { assertSameBytes, randomBytes } from "@s3cache/core/test/BlobStoreSuite"
import * as Chunk from "effect/Chunk"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import * as S3BlobStore from "../src/S3BlobStore.js"
import * as FakeS3 from "./utils/fakeS3.js"
import * as RecordingProxy from "./utils/recordingProxy.js"
import { createBucket, rawClient, s3rver, storeOptions } from "./utils/servers.js"
import { freshBucket, shared } from "./utils/shared.js"

const MiB = 1024 * 1024
const bucket = "store-tests"

describe("S3BlobStore on s3rver", () => {
  const env = shared(Effect.gen(function*() {
    const server = yield* s3rver
    yield* createBucket(server, bucket)
    const proxy = yield* RecordingProxy.make(server)
    return { server, proxy, viaProxy: { endpoint: proxy.endpoint, credentials: server.credentials } }
  }))

  it.scopedLive(
    "requests SSE AES256 on every object write, single and multipart, and round-trips both",
    () =>
      Effect.gen(function*() {
        const { proxy, viaProxy } = yield* env
        const store = yield* S3BlobStore.make({
          ...storeOptions(viaProxy, bucket),
          multipartThreshold: 5 * MiB,
          partSize: 5 * MiB
        })
        proxy.clear()
        const small = randomBytes(1024)
        const large = randomBytes(11 * MiB + 17)
        yield* store.put("sse/small", small)
        yield* store.put("sse/large", large)
        assertSameBytes(Option.getOrThrow(yield* store.get("sse/small")), small, "small")
        assertSameBytes(Option.getOrThrow(yield* store.get("sse/large")), large, "large")

        const writes = proxy.objectWrites()
        assert.strictEqual(writes.length, 2, "one PutObject and one CreateMultipartUpload")
        for (const write of writes) assert.strictEqual(write.headers["x-amz-server-side-encryption"], "AES256")
        const parts = proxy.requests.filter((request) => request.query.has("partNumber"))
        assert.deepStrictEqual(parts.map((part) => part.query.get("partNumber")).sort(), ["1", "2", "3"])
        assert.isTrue(proxy.requests.some((request) => request.method === "POST" && request.query.has("uploadId")))
        // no checksum framing towards a non-AWS endpoint (the aws-chunked trap)
        for (const request of proxy.requests) {
          assert.notInclude(String(request.headers["content-encoding"] ?? ""), "aws-chunked")
          assert.isUndefined(request.headers["x-amz-checksum-crc32"], `${request.method} ${request.path}`)
        }
      }),
    60_000
  )

  it.scopedLive("aws:kms sends the key id; \"none\" sends no SSE header", () =>
    Effect.gen(function*() {
      const { proxy, viaProxy } = yield* env
      const kms = yield* S3BlobStore.make({
        ...storeOptions(viaProxy, bucket),
        serverSideEncryption: "aws:kms",
        kmsKeyId: "arn:aws:kms:us-east-1:111122223333:key/test"
      })
      const none = yield* S3BlobStore.make({ ...storeOptions(viaProxy, bucket), serverSideEncryption: "none" })
      proxy.clear()
      yield* kms.put("sse/kms", new Uint8Array([1]))
      const [kmsWrite] = proxy.objectWrites()
      assert.strictEqual(kmsWrite!.headers["x-amz-server-side-encryption"], "aws:kms")
      assert.strictEqual(
        kmsWrite!.headers["x-amz-server-side-encryption-aws-kms-key-id"],
        "arn:aws:kms:us-east-1:111122223333:key/test"
      )
      proxy.clear()
      yield* none.put("sse/none", new Uint8Array([2]))
      const [plainWrite] = proxy.objectWrites()
      assert.isUndefined(plainWrite!.headers["x-amz-server-side-encryption"])
    }), 30_000)

  it.scopedLive(
    "objects live under <prefix>/ in the bucket; list strips the prefix and skips folder markers",
    () =>
      Effect.gen(function*() {
        const { server } = yield* env
        const isolated = freshBucket("prefix")
        yield* createBucket(server, isolated)
        const store = yield* S3BlobStore.make({ ...storeOptions(server, isolated), prefix: "svc/cache/" })
        const root = yield* S3BlobStore.make({ ...storeOptions(server, isolated), prefix: "" })
        yield* store.put("ns/ab/abc-1", new Uint8Array([1, 2]))
        const raw = rawClient(server)
        yield* Effect.addFinalizer(() => Effect.sync(() => raw.destroy()))
        yield* Effect.promise(() =>
          raw.send(new PutObjectCommand({ Bucket: isolated, Key: "svc/cache/", Body: new Uint8Array(0) }))
        )
        yield* Effect.promise(() => raw.send(new PutObjectCommand({ Bucket: isolated, Key: "elsewhere", Body: "x" })))
        const listed = yield* Effect.promise(() => raw.send(new ListObjectsV2Command({ Bucket: isolated })))
        assert.deepStrictEqual(listed.Contents?.map((object) => object.Key).sort(), [
          "elsewhere",
          "svc/cache/",
          "svc/cache/ns/ab/abc-1"
        ])
        const infos = Chunk.toReadonlyArray(yield* Stream.runCollect(store.list("")))
        assert.deepStrictEqual(infos.map((info) => [info.key, info.size]), [["ns/ab/abc-1", 2]])
        // with the bucket's root as prefix, every object is listed with its full key
        const all = Chunk.toReadonlyArray(yield* Stream.runCollect(root.list(""))).map((info) => info.key).sort()
        assert.deepStrictEqual(all, ["elsewhere", "svc/cache/", "svc/cache/ns/ab/abc-1"])
      }),
    30_000
  )

  it.scopedLive(
    "a missing bucket and wrong credentials are Unavailable errors that say what to fix",
    () =>
      Effect.gen(function*() {
        const { server } = yield* env
        const missing = yield* S3BlobStore.make(storeOptions(server, "no-such-bucket"))
        const error = yield* Effect.flip(missing.get("a/b"))
        assert.strictEqual(error.reason, "Unavailable")
        assert.strictEqual(error.method, "get")
        assert.strictEqual(error.key, "a/b")
        assert.include(error.message, "bucket no-such-bucket does not exist")
        assert.include(error.message, "S3CACHE_S3_BUCKET")
        const putError = yield* Effect.flip(missing.put("a/b", new Uint8Array([1])))
        assert.include(putError.message, "does not exist")

        const wrong = yield* S3BlobStore.make({
          // s3rver does not check SigV4 signatures, only that the access key id is known
          ...storeOptions({ ...server, credentials: { accessKeyId: "NOT-A-KEY", secretAccessKey: "wrong" } }, bucket)
        })
        const denied = yield* Effect.flip(wrong.get("a/b"))
        assert.strictEqual(denied.reason, "Unavailable")
        assert.include(denied.message, "access denied")
        assert.include(denied.message, "credentials")

        const verifyError = yield* Effect.flip(
          S3BlobStore.make({ ...storeOptions(server, "no-such-bucket"), verifyBucket: true })
        )
        assert.strictEqual(verifyError._tag, "BlobStoreError")
        assert.include(verifyError.message, "no-such-bucket does not exist")
      }),
    30_000
  )

  it.scopedLive(
    "BlobStore.get runs in a client span with OpenTelemetry attributes, where inner spans are on",
    () =>
      Effect.gen(function*() {
        const { server } = yield* env
        const store = yield* S3BlobStore.make(storeOptions(server, bucket))
        const spans: Array<Tracer.Span> = []
        const base = yield* Effect.tracer
        const recording = Tracer.make({
          span: (...args) => {
            const span = base.span(...args)
            spans.push(span)
            return span
          },
          context: base.context
        })
        // Off by default, as the inner spans of every store: a small hit would pay more for the span than for itself.
        yield* store.get("spans/absent").pipe(Effect.withTracer(recording))
        assert.isUndefined(spans.find((span) => span.name === "BlobStore.get"))
        yield* store.get("spans/absent").pipe(
          Effect.provideService(CacheTracing.InnerSpans, true),
          Effect.withTracer(recording)
        )
        const span = spans.find((span) => span.name === "BlobStore.get")
        assert.isDefined(span)
        assert.strictEqual(span!.kind, "client")
        assert.strictEqual(span!.attributes.get("rpc.system"), "aws-api")
        assert.strictEqual(span!.attributes.get("rpc.service"), "S3")
        assert.strictEqual(span!.attributes.get("server.address"), "127.0.0.1")
        assert.strictEqual(span!.attributes.get("aws.s3.bucket"), bucket)
        assert.strictEqual(span!.attributes.get("aws.s3.key"), "query-cache/spans/absent")
      }),
    30_000
  )

  it.scopedLive("layerConfig reads the S3CACHE_* variables", () =>
    Effect.gen(function*() {
      const { server } = yield* env
      const provider = ConfigProvider.fromMap(
        new Map([
          ["S3CACHE_S3_BUCKET", bucket],
          ["S3CACHE_S3_PREFIX", "from-env"],
          ["S3CACHE_AWS_REGION", "us-east-1"],
          ["S3CACHE_S3_ENDPOINT", server.endpoint],
          ["S3CACHE_S3_FORCE_PATH_STYLE", "true"],
          ["S3CACHE_S3_SSE", "none"],
          ["S3CACHE_AWS_ACCESS_KEY_ID", "S3RVER"],
          ["S3CACHE_AWS_SECRET_ACCESS_KEY", "S3RVER"],
          ["S3CACHE_S3_TIMEOUT", "2"],
          ["S3CACHE_S3_CONNECT_TIMEOUT", "300 millis"]
        ]),
        { pathDelim: "_" }
      )
      const context = yield* Layer.build(S3BlobStore.layerConfig()).pipe(Effect.withConfigProvider(provider))
      const store = yield* Effect.provide(BlobStore, context)
      yield* store.put("env/x", new Uint8Array([7]))
      assertSameBytes(Option.getOrThrow(yield* store.get("env/x")), new Uint8Array([7]))
      const raw = rawClient(server)
      yield* Effect.addFinalizer(() => Effect.sync(() => raw.destroy()))
      const listed = yield* Effect.promise(() =>
        raw.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "from-env/" }))
      )
      assert.deepStrictEqual(listed.Contents?.map((object) => object.Key), ["from-env/env/x"])

      const half = ConfigProvider.fromMap(
        new Map([["S3CACHE_S3_BUCKET", bucket], ["S3CACHE_AWS_ACCESS_KEY_ID", "only-one"]]),
        { pathDelim: "_" }
      )
      const configError = yield* Effect.flip(
        Layer.build(S3BlobStore.layerConfig()).pipe(Effect.withConfigProvider(half))
      )
      assert.include(String(configError), "S3CACHE_AWS_SECRET_ACCESS_KEY")
      const noBucket = yield* Effect.flip(
        Layer.build(S3BlobStore.layerConfig()).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map(), { pathDelim: "_" }))
        )
      )
      assert.include(String(noBucket), "S3CACHE_S3_BUCKET")
    }), 30_000)
})

describe("S3BlobStore options", () => {
  const invalid: ReadonlyArray<readonly [S3BlobStore.Options, string]> = [
    // options in code are named as written; S3Options.test.ts has the same values from variables
    [{ bucket: "x" }, "bucket must be a bucket name"],
    [{ bucket: "ok-bucket", prefix: "../up" }, "prefix must be"],
    [{ bucket: "ok-bucket", endpoint: "localhost:9000" }, "http(s) URL"],
    [{ bucket: "ok-bucket", kmsKeyId: "key" }, "aws:kms"],
    [{ bucket: "ok-bucket", serverSideEncryption: "rot13" as "none" }, "\"AES256\", \"aws:kms\" or \"none\""],
    [{ bucket: "ok-bucket", partSize: 1024 }, "partSize"],
    [{ bucket: "ok-bucket", multipartThreshold: 1 }, "multipartThreshold"],
    [{ bucket: "ok-bucket", timeout: 0 }, "timeout"],
    [{ bucket: "ok-bucket", minThroughput: 10 }, "minThroughput"],
    [{ bucket: "ok-bucket", attempts: 0 }, "attempts"]
  ]
  it.scopedLive("invalid options fail make with an InvalidOption error naming the option", () =>
    Effect.gen(function*() {
      for (const [options, expected] of invalid) {
        const error = yield* Effect.flip(S3BlobStore.make(options))
        assert.strictEqual(error._tag, "CacheInputError", JSON.stringify(options))
        assert.strictEqual(error.reason === "InvalidOption" ? "ok" : error.reason, "ok")
        assert.include(error.message, expected)
      }
    }))

  it.scopedLive("make contacts nobody: it succeeds while S3 is down, and calls then fail fast", () =>
    Effect.gen(function*() {
      const store = yield* S3BlobStore.make({
        ...storeOptions(
          { endpoint: "http://127.0.0.1:9", credentials: { accessKeyId: "a", secretAccessKey: "b" } },
          bucket
        ),
        timeout: "2 seconds"
      })
      const error = yield* Effect.flip(store.get("a/b"))
      assert.strictEqual(error.reason, "Unavailable")
      assert.include(error.message, "cannot reach S3")
    }))

  it.scopedLive(
    "connections are kept alive and reused: 100 sequential calls, one connection",
    () =>
      Effect.gen(function*() {
        const fake = yield* FakeS3.make
        const store = yield* S3BlobStore.make(storeOptions(fake, "fake-bucket"))
        for (let i = 0; i < 50; i++) {
          yield* store.put(`reuse/${i}`, new Uint8Array([i]))
          assertSameBytes(Option.getOrThrow(yield* store.get(`reuse/${i}`)), new Uint8Array([i]))
        }
        // ending each operation's deadline must not destroy a socket whose request is complete
        assert.strictEqual(fake.acceptedConnections(), 1)
      }),
    30_000
  )

  it.scopedLive("a failed multipart upload is aborted in the background", () =>
    Effect.gen(function*() {
      const fake = yield* FakeS3.make
      const store = yield* S3BlobStore.make({
        ...storeOptions(fake, "fake-bucket"),
        multipartThreshold: 5 * MiB,
        partSize: 5 * MiB
      })
      fake.setFault({ status: 500, code: "InternalError" }, { method: "PUT" })
      const error = yield* Effect.flip(store.put("mp/fails", randomBytes(6 * MiB)))
      assert.strictEqual(error.reason, "Unavailable")
      // a part was tried twice (attempts: 2) before the upload gave up; then it is aborted, once
      assert.isAtLeast(fake.count("PUT"), 2)
      for (let i = 0; i < 100 && fake.count("DELETE") === 0; i++) yield* Effect.sleep("20 millis")
      const aborts = fake.requests.filter((request) => request.method === "DELETE" && request.query.has("uploadId"))
      assert.strictEqual(aborts.length, 1)
      assert.strictEqual(fake.count("POST"), 1, "CreateMultipartUpload only, never CompleteMultipartUpload")
    }), 30_000)
})
