/**
 * Multipart upload of a large payload: parts are views of the caller's array (never copies), uploaded a few at a
 * time, so memory stays at the payload itself plus the sockets' buffers, whatever its size.
 *
 * Written on the SDK's commands rather than `@aws-sdk/lib-storage`: its `Upload` does not hand the abort signal to
 * the part requests (an aborted upload keeps its sockets busy until they time out) and cannot take one deadline for
 * the whole upload. Here every request runs under the operation's window and an interruption reaches all of them.
 *
 * @since 0.1.0
 */
import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand
} from "@aws-sdk/client-s3"
import type { BlobStoreError } from "@s3cache/core/CacheError"
import * as StoreDeadline from "@s3cache/core/StoreDeadline"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import type { Client } from "./client.js"
import type { Window } from "./deadline.js"
import { ProtocolViolation } from "./errors.js"
import { maxParts, type Resolved, s3Key } from "./options.js"
import { request, sendOptions, startWindow } from "./request.js"

/** @internal */
export interface Dependencies {
  readonly resolved: Resolved
  readonly client: Client
  /** where aborting a failed upload runs, so the caller does not wait for it */
  readonly background: FiberSet.FiberSet<unknown, unknown>
}

/**
 * The byte ranges of the parts. The part size grows past the configured one only when the payload would need more
 * than S3's 10,000 parts.
 *
 * @internal
 */
export const partRanges = (size: number, partSize: number): ReadonlyArray<readonly [number, number]> => {
  const effective = Math.max(partSize, Math.ceil(size / maxParts))
  const ranges: Array<readonly [number, number]> = []
  for (let start = 0; start < size; start += effective) ranges.push([start, Math.min(size, start + effective)])
  return ranges
}

/** @internal */
export const upload = (
  { background, client, resolved }: Dependencies,
  key: string,
  bytes: Uint8Array,
  window: Window
): Effect.Effect<void, BlobStoreError> =>
  Effect.suspend(() => {
    const Bucket = resolved.bucket
    const Key = s3Key(resolved, key)
    const context = { resolved, method: "put", key }
    // With checksums on, S3 wants the algorithm declared when the upload is created and each part's checksum
    // repeated when it is completed.
    const withChecksums = resolved.checksums === "when-supported"
    let uploadId: string | undefined

    const create = request(context, window, resolved.attempts, (deadline) =>
      client.s3.send(
        new CreateMultipartUploadCommand({
          Bucket,
          Key,
          ContentType: "application/octet-stream",
          ...resolved.sse,
          ...(withChecksums ? { ChecksumAlgorithm: "CRC32" } : {})
        }),
        sendOptions(deadline)
      ).then((output) => {
        if (output.UploadId === undefined) throw new ProtocolViolation("CreateMultipartUpload returned no UploadId")
        return output.UploadId
      }))

    const uploadPart = (UploadId: string, [start, end]: readonly [number, number], index: number) =>
      request(context, window, resolved.attempts, (deadline) =>
        client.s3.send(
          new UploadPartCommand({
            Bucket,
            Key,
            UploadId,
            PartNumber: index + 1,
            Body: bytes.subarray(start, end),
            ContentLength: end - start,
            ...(withChecksums ? { ChecksumAlgorithm: "CRC32" } : {})
          }),
          sendOptions(deadline)
        ).then((output): CompletedPart => {
          if (output.ETag === undefined) throw new ProtocolViolation(`UploadPart ${index + 1} returned no ETag`)
          return {
            PartNumber: index + 1,
            ETag: output.ETag,
            ...(output.ChecksumCRC32 !== undefined ? { ChecksumCRC32: output.ChecksumCRC32 } : {})
          }
        }))

    const complete = (UploadId: string, Parts: Array<CompletedPart>) =>
      request(context, window, resolved.attempts, (deadline) =>
        client.s3.send(
          new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts } }),
          sendOptions(deadline)
        ))

    // The parts of an upload that is never completed or aborted are invisible to listings (orphan cleanup cannot
    // see them) but billed, so a failed upload is aborted, on a budget of its own, in the background.
    const abort = (UploadId: string) =>
      // its own budget: the failed put's StoreDeadline (inherited by the background fiber) may have passed already
      Effect.flatMap(
        Effect.provideService(startWindow(resolved.timeoutMs), StoreDeadline.StoreDeadline, Infinity),
        (abortWindow) =>
          request(
            { ...context, method: "put.abort" },
            abortWindow,
            resolved.attempts,
            (deadline) =>
              client.s3.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }), sendOptions(deadline))
          )
      ).pipe(
        Effect.catchAll((error) =>
          Effect.logDebug(
            "s3cache: aborting a failed multipart upload failed; a bucket lifecycle rule removes it",
            error
          )
        ),
        Effect.annotateLogs({ "s3cache.operation": "BlobStore.put", "aws.s3.key": Key, "aws.s3.upload_id": UploadId })
      )

    return Effect.gen(function*() {
      const id = yield* create
      uploadId = id
      const parts = yield* Effect.forEach(
        partRanges(bytes.byteLength, resolved.partSize),
        (range, index) => uploadPart(id, range, index),
        { concurrency: resolved.uploadConcurrency }
      )
      yield* complete(id, parts)
      uploadId = undefined
    }).pipe(
      Effect.onExit((exit) =>
        Exit.isSuccess(exit) || uploadId === undefined
          ? Effect.void
          : Effect.asVoid(FiberSet.run(background, abort(uploadId)))
      )
    )
  })
