/**
 * The `BlobStore` operations on S3: put (single or multipart), get, batched delete and paginated listing.
 *
 * @since 0.1.0
 */
import {
  DeleteObjectsCommand,
  type DeleteObjectsOutput,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand
} from "@aws-sdk/client-s3"
import type { BlobInfo, BlobStore, DeleteResult } from "@s3cache/core/BlobStore"
import * as BlobStoreModule from "@s3cache/core/BlobStore"
import type { BlobStoreError } from "@s3cache/core/CacheError"
import * as CacheTracing from "@s3cache/core/CacheTracing"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import type * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { Client } from "./client.js"
import { type Deadline, readBody } from "./deadline.js"
import { Either } from "./effect3.js"
import { errorCode, ProtocolViolation, statusOf, toBlobStoreError } from "./errors.js"
import * as multipart from "./multipart.js"
import { budgetMs, type Resolved, s3Key, serverAddress } from "./options.js"
import { request, sendOptions, startWindow } from "./request.js"

/** S3 deletes at most 1000 keys per DeleteObjects request. */
const deleteBatchSize = 1000
/** Batches of one `delete` call in flight at once. */
const deleteConcurrency = 4

/** @internal */
export interface Dependencies {
  readonly resolved: Resolved
  readonly client: Client
  readonly background: FiberSet.FiberSet<unknown, unknown>
}

const isAbsent = (error: unknown): boolean => {
  const code = errorCode(error)
  return code === "NoSuchKey" || (statusOf(error) === 404 && code !== "NoSuchBucket")
}

/** @internal */
export const make = (dependencies: Dependencies): BlobStore["Type"] => {
  const { client, resolved } = dependencies
  const Bucket = resolved.bucket
  const baseAttributes = {
    "rpc.system": "aws-api",
    "rpc.service": "S3",
    "server.address": serverAddress(resolved),
    "aws.s3.bucket": Bucket,
    "s3cache.blob_store": "s3"
  }
  // Inner spans, as every store's: only where `CacheTracing.InnerSpans` is on (they cost more than a small hit), and
  // without a stack trace (a `new Error()` on every call).
  const withSpan = (name: string, attributes: Record<string, unknown>) =>
    CacheTracing.withInnerSpan(name, { kind: "client", attributes: { ...baseAttributes, ...attributes } })

  const put = (key: string, bytes: Uint8Array): Effect.Effect<void, BlobStoreError> =>
    Effect.gen(function*() {
      yield* BlobStoreModule.validateObjectKey("put", key)
      const window = yield* startWindow(budgetMs(resolved, bytes.byteLength))
      if (bytes.byteLength >= resolved.multipartThreshold) {
        return yield* multipart.upload(dependencies, key, bytes, window)
      }
      yield* request({ resolved, method: "put", key }, window, resolved.attempts, (deadline) =>
        client.s3.send(
          new PutObjectCommand({
            Bucket,
            Key: s3Key(resolved, key),
            // The SDK writes this array to the socket as it is; the caller keeps it, unchanged, until we return.
            Body: bytes,
            ContentLength: bytes.byteLength,
            ContentType: "application/octet-stream",
            ...resolved.sse
          }),
          sendOptions(deadline)
        ))
    }).pipe(
      withSpan("BlobStore.put", {
        "rpc.method": bytes.byteLength >= resolved.multipartThreshold ? "CreateMultipartUpload" : "PutObject",
        "aws.s3.key": s3Key(resolved, key),
        "s3cache.object_size": bytes.byteLength
      })
    )

  // The hot path of every cache hit: as few Effect steps as the budget, the retries and the span need.
  const get = (key: string): Effect.Effect<Option.Option<Uint8Array>, BlobStoreError> => {
    const Key = s3Key(resolved, key)
    const read = async (deadline: Deadline) => {
      let output
      try {
        output = await client.s3.send(new GetObjectCommand({ Bucket, Key }), sendOptions(deadline))
      } catch (error) {
        if (isAbsent(error)) return Option.none()
        throw error
      }
      // The budget was for the request; a large body gets the time it needs at the slowest accepted throughput.
      const length = output.ContentLength
      if (length !== undefined) deadline.extend(budgetMs(resolved, length) - resolved.timeoutMs)
      return Option.some(await readBody(output.Body, length, deadline.signal))
    }
    return BlobStoreModule.validateObjectKey("get", key).pipe(
      Effect.zipRight(startWindow(resolved.timeoutMs)),
      Effect.flatMap((window) => request({ resolved, method: "get", key }, window, resolved.getAttempts, read)),
      withSpan("BlobStore.get", { "rpc.method": "GetObject", "aws.s3.key": Key })
    )
  }

  const deleteBatch = (keys: ReadonlyArray<string>): Effect.Effect<DeleteResult, BlobStoreError> =>
    Effect.flatMap(
      startWindow(resolved.timeoutMs),
      (window) =>
        request({ resolved, method: "delete" }, window, resolved.attempts, (deadline) =>
          client.s3.send(
            new DeleteObjectsCommand({
              Bucket,
              // Quiet: the answer lists only the failures, not 1000 successes.
              Delete: { Objects: keys.map((key) => ({ Key: s3Key(resolved, key) })), Quiet: true }
            }),
            sendOptions(deadline)
          ))
    ).pipe(Effect.map((output) => batchResult(keys, output)))

  // S3 reports per-key failures inside a successful answer; each one is checked, and an absent key is deleted.
  const batchResult = (keys: ReadonlyArray<string>, output: DeleteObjectsOutput): DeleteResult => {
    const failed: Array<DeleteResult["failed"][number]> = []
    for (const error of output.Errors ?? []) {
      if (error.Code === "NoSuchKey") continue
      const key = (error.Key ?? "").startsWith(resolved.keyPrefix)
        ? (error.Key ?? "").slice(resolved.keyPrefix.length)
        : error.Key ?? ""
      const cause = Object.assign(new Error(error.Message ?? error.Code ?? "delete failed"), {
        name: error.Code ?? "DeleteError",
        Code: error.Code
      })
      failed.push({ key, error: toBlobStoreError({ resolved, method: "delete", key }, cause) })
    }
    return { deleted: keys.length - failed.length, failed }
  }

  const delete_ = (keys: ReadonlyArray<string>): Effect.Effect<DeleteResult, BlobStoreError> =>
    Effect.gen(function*() {
      const failed: Array<DeleteResult["failed"][number]> = []
      const valid: Array<string> = []
      for (const key of keys) {
        const checked = yield* Effect.either(BlobStoreModule.validateObjectKey("delete", key))
        if (Either.isLeft(checked)) failed.push({ key, error: checked.left })
        else valid.push(key)
      }
      const batches: Array<ReadonlyArray<string>> = []
      for (let i = 0; i < valid.length; i += deleteBatchSize) batches.push(valid.slice(i, i + deleteBatchSize))
      const results = yield* Effect.forEach(batches, (batch) => Effect.either(deleteBatch(batch)), {
        concurrency: deleteConcurrency
      })
      // The call fails only when the store could not be used at all; otherwise a batch whose request failed
      // reports each of its keys, and the caller sees what was and was not deleted.
      const firstError = results.find(Either.isLeft)
      if (firstError !== undefined && results.every(Either.isLeft)) return yield* Effect.fail(firstError.left)
      let deleted = 0
      results.forEach((result, i) => {
        if (Either.isRight(result)) {
          deleted += result.right.deleted
          failed.push(...result.right.failed)
        } else {
          for (const key of batches[i]!) failed.push({ key, error: result.left })
        }
      })
      return { deleted, failed }
    }).pipe(withSpan("BlobStore.delete", { "rpc.method": "DeleteObjects", "s3cache.object_count": keys.length }))

  const listPage = (
    prefix: string,
    token: string | undefined
  ): Effect.Effect<readonly [Chunk.Chunk<BlobInfo>, Option.Option<string>], BlobStoreError> =>
    Effect.flatMap(
      startWindow(resolved.timeoutMs),
      (window) =>
        request({ resolved, method: "list", key: prefix }, window, resolved.attempts, async (deadline) => {
          const output = await client.s3.send(
            new ListObjectsV2Command({
              Bucket,
              Prefix: s3Key(resolved, prefix),
              MaxKeys: 1000,
              ...(token !== undefined ? { ContinuationToken: token } : {})
            }),
            sendOptions(deadline)
          )
          const infos: Array<BlobInfo> = []
          for (const object of output.Contents ?? []) {
            const full = object.Key
            // Skipped: a "folder" marker named like the prefix itself, and anything outside the prefix.
            if (
              full === undefined || !full.startsWith(resolved.keyPrefix) || full.length === resolved.keyPrefix.length
            ) {
              continue
            }
            infos.push({
              key: full.slice(resolved.keyPrefix.length),
              size: object.Size ?? 0,
              lastModified: object.LastModified?.getTime() ?? 0
            })
          }
          if (output.IsTruncated === true && output.NextContinuationToken === undefined) {
            throw new ProtocolViolation("ListObjectsV2 was truncated but returned no continuation token")
          }
          return [
            Chunk.unsafeFromArray(infos),
            output.IsTruncated === true ? Option.fromNullable(output.NextContinuationToken) : Option.none()
          ] as const
        })
    )

  const list = (prefix: string): Stream.Stream<BlobInfo, BlobStoreError> =>
    BlobStoreModule.validatePrefix("list", prefix).pipe(
      // One page of at most 1000 keys in memory at a time, fetched when the consumer wants it.
      Effect.map((valid) =>
        Stream.paginateChunkEffect(undefined as string | undefined, (token) => listPage(valid, token))
      ),
      Stream.unwrap,
      // A listing is long and rare: always in a span, as in the other stores.
      Stream.withSpan("BlobStore.list", {
        kind: "client",
        attributes: {
          ...baseAttributes,
          "rpc.method": "ListObjectsV2",
          "aws.s3.key": s3Key(resolved, prefix),
          "s3cache.prefix": prefix
        },
        captureStackTrace: false
      })
    )

  // every operation's window ends by the cache's deadline (`startWindow`), whatever its own budget
  return { honoursDeadline: true, put, get, delete: delete_, list }
}

/**
 * `HeadBucket` once, for a store that should fail at start when its bucket is missing or unreadable.
 *
 * @internal
 */
export const verifyBucket = ({ client, resolved }: Dependencies): Effect.Effect<void, BlobStoreError> =>
  Effect.flatMap(
    startWindow(resolved.timeoutMs),
    (window) =>
      request({ resolved, method: "verifyBucket" }, window, resolved.attempts, (deadline) =>
        client.s3.send(new HeadBucketCommand({ Bucket: resolved.bucket }), sendOptions(deadline)).catch((error) => {
          // HEAD answers carry no error code; a 404 here can only mean the bucket.
          throw statusOf(error) === 404 ? Object.assign(error, { Code: "NoSuchBucket" }) : error
        }))
  ).pipe(Effect.asVoid)
