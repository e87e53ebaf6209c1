/**
 * The in-memory `BlobStore`: a map from object key to bytes, for tests and short-lived processes.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { BlobInfo, BlobStore, DeleteResult } from "../BlobStore.js"
import type { BlobStoreError } from "../CacheError.js"
import * as CacheTracing from "../CacheTracing.js"
import { invalidObjectKey, objectKeyProblem, validateObjectKey, validatePrefix } from "./objectKey.js"

interface Entry {
  readonly bytes: Uint8Array
  readonly lastModified: number
}

const spanAttributes = { "s3cache.blob_store": "memory" } as const

/**
 * @since 0.1.0
 */
export const make: Effect.Effect<BlobStore["Type"]> = Effect.sync(() => {
  const entries = new Map<string, Entry>()

  // Callers keep their arrays: copying on the way in and out means no caller can change what another one reads,
  // which is what a real store guarantees by construction.
  const put = (key: string, bytes: Uint8Array): Effect.Effect<void, BlobStoreError> =>
    validateObjectKey("put", key).pipe(
      Effect.zipRight(Clock.currentTimeMillis),
      Effect.map((lastModified) => {
        entries.set(key, { bytes: bytes.slice(), lastModified })
      }),
      CacheTracing.withInnerSpan("BlobStore.put", {
        kind: "client",
        attributes: { ...spanAttributes, "s3cache.object_key": key, "s3cache.object_size": bytes.byteLength }
      })
    )

  const get = (key: string): Effect.Effect<Option.Option<Uint8Array>, BlobStoreError> =>
    validateObjectKey("get", key).pipe(
      Effect.map(() => Option.map(Option.fromNullable(entries.get(key)), (entry) => entry.bytes.slice())),
      CacheTracing.withInnerSpan("BlobStore.get", {
        kind: "client",
        attributes: { ...spanAttributes, "s3cache.object_key": key }
      })
    )

  const delete_ = (keys: ReadonlyArray<string>): Effect.Effect<DeleteResult, BlobStoreError> =>
    Effect.sync(() => {
      let deleted = 0
      const failed: Array<DeleteResult["failed"][number]> = []
      for (const key of keys) {
        const problem = objectKeyProblem(key)
        if (Option.isSome(problem)) {
          failed.push({ key, error: invalidObjectKey("delete", key, problem.value) })
        } else {
          entries.delete(key)
          deleted++
        }
      }
      return { deleted, failed }
    }).pipe(
      CacheTracing.withInnerSpan("BlobStore.delete", {
        kind: "client",
        attributes: { ...spanAttributes, "s3cache.object_count": keys.length }
      })
    )

  const list = (prefix: string): Stream.Stream<BlobInfo, BlobStoreError> =>
    validatePrefix("list", prefix).pipe(
      // A snapshot of the matching keys, so writes during the listing neither break the iteration nor show up twice.
      Effect.map((prefix) =>
        Array.from(entries.keys()).filter((key) => key.startsWith(prefix)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      ),
      Effect.map((keys) =>
        Stream.fromIterable(keys).pipe(
          Stream.filterMap((key) =>
            Option.map(Option.fromNullable(entries.get(key)), (entry): BlobInfo => ({
              key,
              size: entry.bytes.byteLength,
              lastModified: entry.lastModified
            }))
          )
        )
      ),
      Stream.unwrap,
      Stream.withSpan("BlobStore.list", {
        kind: "client",
        attributes: { ...spanAttributes, "s3cache.prefix": prefix }
      })
    )

  // every call answers at once
  return { honoursDeadline: true, put, get, delete: delete_, list }
})
