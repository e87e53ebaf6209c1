/**
 * Against moto_server (Python moto 5), the stricter second S3 implementation: it de-chunks aws-chunked bodies,
 * validates and returns checksums, keeps SSE settings and enforces the 5 MiB part minimum. The core conformance
 * suite runs here too. When moto_server is missing, every test of this file fails with a message that says how to
 * install it.
 */
import { GetObjectCommand, HeadObjectCommand } from "@aws-sdk/client-s3"
import { assert, describe, it } from "@effect/vitest"
import { assertSameBytes, blobStoreSuite, randomBytes } from "@s3cache/core/test/BlobStoreSuite"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ChildProcess from "node:child_process"
import * as S3BlobStore from "../src/S3BlobStore.js"
import { createBucket, motoMissing, motoServer, rawClient, storeOptions } from "./utils/servers.js"
import { shared } from "./utils/shared.js"

const MiB = 1024 * 1024
const bucket = "conformance"

// A test of its own, so a missing moto_server is a failed test with instructions, not only a failed hook whose
// tests are reported as skipped.
describe("moto_server", () => {
  it("is installed (the tests of this file run against it)", () => {
    const probe = ChildProcess.spawnSync("moto_server", ["--help"], { stdio: "ignore", timeout: 20_000 })
    assert.isUndefined(probe.error, motoMissing)
    assert.strictEqual(probe.status, 0, motoMissing)
  }, 30_000)
})

// The server is started in this describe's hooks, so that its failure leaves the test above alone.
describe("against moto_server", () => {
  const env = shared(Effect.gen(function*() {
    const server = yield* motoServer
    yield* createBucket(server, bucket)
    return server
  }))

  blobStoreSuite(
    "S3BlobStore (moto_server)",
    Layer.unwrapEffect(Effect.map(env, (server) => S3BlobStore.layer(storeOptions(server, bucket))))
  )

  describe("S3BlobStore on moto_server", () => {
    const head = (key: string) =>
      Effect.flatMap(env, (server) =>
        Effect.acquireUseRelease(
          Effect.sync(() => rawClient(server)),
          (client) => Effect.promise(() => client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))),
          (client) => Effect.sync(() => client.destroy())
        ))

    it.scopedLive(
      "the server keeps the requested encryption: AES256 by default, aws:kms with its key id",
      () =>
        Effect.gen(function*() {
          const server = yield* env
          const aes = yield* S3BlobStore.make(storeOptions(server, bucket))
          const kms = yield* S3BlobStore.make({
            ...storeOptions(server, bucket),
            serverSideEncryption: "aws:kms",
            kmsKeyId: "arn:aws:kms:us-east-1:123456789012:key/s3cache-test"
          })
          yield* aes.put("moto-sse/aes", new Uint8Array([1]))
          yield* kms.put("moto-sse/kms", new Uint8Array([2]))
          assert.strictEqual((yield* head("query-cache/moto-sse/aes")).ServerSideEncryption, "AES256")
          const kmsHead = yield* head("query-cache/moto-sse/kms")
          assert.strictEqual(kmsHead.ServerSideEncryption, "aws:kms")
          assert.strictEqual(kmsHead.SSEKMSKeyId, "arn:aws:kms:us-east-1:123456789012:key/s3cache-test")
        }),
      30_000
    )

    for (const checksums of ["when-required", "when-supported"] as const) {
      it.scopedLive(
        `checksums ${checksums}: single and multipart uploads store exactly the payload`,
        () =>
          Effect.gen(function*() {
            const server = yield* env
            const store = yield* S3BlobStore.make({
              ...storeOptions(server, bucket),
              checksums,
              multipartThreshold: 5 * MiB,
              partSize: 5 * MiB
            })
            const small = randomBytes(3000)
            const large = randomBytes(11 * MiB + 5)
            yield* store.put(`moto-${checksums}/small`, small)
            yield* store.put(`moto-${checksums}/large`, large)
            assertSameBytes(Option.getOrThrow(yield* store.get(`moto-${checksums}/small`)), small)
            assertSameBytes(Option.getOrThrow(yield* store.get(`moto-${checksums}/large`)), large)
            // What the server holds, read by a plain client: the payload, without aws-chunked framing.
            assert.strictEqual((yield* head(`query-cache/moto-${checksums}/small`)).ContentLength, 3000)
            assert.strictEqual((yield* head(`query-cache/moto-${checksums}/large`)).ContentLength, 11 * MiB + 5)
            const raw = rawClient(server)
            yield* Effect.addFinalizer(() => Effect.sync(() => raw.destroy()))
            const stored = yield* Effect.promise(() =>
              raw.send(new GetObjectCommand({ Bucket: bucket, Key: `query-cache/moto-${checksums}/small` }))
                .then((output) => output.Body!.transformToByteArray())
            )
            assertSameBytes(stored, small, "stored bytes")
          }),
        60_000
      )
    }
  })
})
