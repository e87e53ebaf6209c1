/**
 * Reading a record: whether it belongs to the key asked for, its value (in plain code where it can be, else through
 * the serializer and, for a payload that is not inline, the blob store), and whether the store still holds it.
 *
 * @since 0.3.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type { BlobStore } from "../BlobStore.js"
import { BlobStoreError, SerializationError } from "../CacheError.js"
import * as CacheKey from "../CacheKey.js"
import type * as CacheMetrics from "../CacheMetrics.js"
import type { EntryRecord, MetadataStore } from "../MetadataStore.js"
import type { Serializer, Snapshot } from "../Serializer.js"
import type { Fence } from "./fence.js"
import { type Plan, refreshPoint } from "./plan.js"
import { nowOf } from "./serializer.js"

/**
 * A hit: the value read from a record. `expiresAt`: when the entry stops being fresh without a refresh (its TTL, or
 * `refreshAhead` of it; epoch ms, by the writer's clock); `stale`: past its TTL, within the call's grace; `refresh`:
 * the entry is to be refreshed in the background.
 *
 * @internal
 */
export interface Hit {
  readonly _tag: "Hit"
  readonly value: unknown
  readonly snapshot: Snapshot
  readonly expiresAt: number
  readonly stale: boolean
  readonly refresh: boolean
  /** with `refresh`: the record found, which the refresh replaces only if it is still there */
  readonly record?: EntryRecord | undefined
}

/**
 * What the store holds for a key, compared with a record read before.
 *
 * @internal
 */
export type Found = "same" | "gone" | "unknown" | { readonly changed: EntryRecord }

/** @internal */
export interface Dependencies {
  readonly blobs: BlobStore["Type"]
  readonly fence: Fence
  readonly metadata: MetadataStore["Type"]
  readonly metrics: CacheMetrics.Instruments
  readonly serializer: Serializer["Type"]
}

/** @internal */
export interface Reader {
  /** whether `record` is the record of `plan`'s key (its hash, and the hash its object key carries) */
  readonly belongs: (plan: Plan, record: EntryRecord) => boolean
  /**
   * A hit read in plain code from a record a read found, where it needs no Effect; `undefined` where the record takes
   * `read`; the error that proves the entry bad is the caller's to handle.
   */
  readonly hitNow: (plan: Plan, record: EntryRecord, innerSpans: boolean) => Hit | SerializationError | undefined
  /** the value of `record`, in plain code where it can be */
  readonly read: (
    plan: Plan,
    record: EntryRecord,
    innerSpans: boolean
  ) => Effect.Effect<Hit, BlobStoreError | SerializationError>
  /**
   * Whether the store still holds `record` for its key (`"same"`: the same write), another record (`changed`), or
   * none (`"gone"`); `"unknown"` when the store does not answer.
   */
  readonly unchanged: (plan: Plan, record: EntryRecord) => Effect.Effect<Found>
}

/** @internal */
export const make = ({ blobs, fence, metadata, metrics, serializer }: Dependencies): Reader => {
  const decodeNow = nowOf(serializer)?.decode
  const { withMetadataDeadline } = fence

  /**
   * A record proves it belongs to the entry asked for: its hash, and the hash its object key carries (an inline
   * payload has no object key: its record's hash is the proof).
   */
  const belongs = (plan: Plan, record: EntryRecord): boolean => {
    if (record.hash !== plan.hash || record.namespace !== plan.namespace) return false
    if (record.payload !== undefined) return record.objectKey === ""
    const parsed = CacheKey.parseObjectKey(record.objectKey)
    return parsed !== undefined && parsed.complete && parsed.hash === plan.hash && parsed.namespace === plan.namespace
  }

  /** The stored bytes of a record whose payload is not inline: its object's. */
  const objectBytes = (record: EntryRecord): Effect.Effect<Uint8Array, BlobStoreError> =>
    fence.withBlobDeadline("get", record.objectKey, blobs.get(record.objectKey), record.storedSize).pipe(
      Effect.flatMap((bytes) =>
        Option.isNone(bytes)
          ? new BlobStoreError({
            reason: "Protocol",
            method: "get",
            key: record.objectKey,
            description: "the entry's object does not exist (deleted, or lost)"
          })
          : Effect.as(Metric.incrementBy(metrics.bytesRead, bytes.value.length), bytes.value)
      )
    )

  /** The fields `unseal` reads, named: a spread of the whole record costs more than the rest of a hit. */
  const decodeOptions = (plan: Plan, record: EntryRecord) => ({
    format: record.format,
    compression: record.compression,
    checksum: record.checksum,
    codecVersion: record.codecVersion,
    schema: plan.schema
  })

  /**
   * A hit read in plain code: a record of the key whose inline payload needs no Effect to read (most small values),
   * unless the serializer steps make spans of their own. The inline payload may be the store's own memory (the
   * memory store hands out the record it keeps): the value is a copy. `undefined`: the record takes `decide`'s path
   * (another key's record, a payload that does not read back, one that needs the Effect path).
   */
  const hitNow = (plan: Plan, record: EntryRecord, innerSpans: boolean): Hit | SerializationError | undefined => {
    if (record.payload === undefined || decodeNow === undefined || innerSpans || !belongs(plan, record)) {
      return undefined
    }
    const read = decodeNow(record.payload, decodeOptions(plan, record))
    if (read === undefined || read instanceof SerializationError) return read
    return {
      _tag: "Hit",
      value: read.value,
      snapshot: read.snapshot,
      expiresAt: refreshPoint(plan, record.createdAt, record.ttlMs),
      stale: false,
      refresh: false
    }
  }

  const read = (
    plan: Plan,
    record: EntryRecord,
    innerSpans: boolean
  ): Effect.Effect<Hit, BlobStoreError | SerializationError> => {
    const now = hitNow(plan, record, innerSpans)
    if (now !== undefined) return now instanceof SerializationError ? Effect.fail(now) : Effect.succeed(now)
    const options = decodeOptions(plan, record)
    const expiresAt = refreshPoint(plan, record.createdAt, record.ttlMs)
    const unseal = (bytes: Uint8Array) => serializer.unseal(bytes, options)
    return (record.payload !== undefined ? unseal(record.payload) : Effect.flatMap(objectBytes(record), unseal)).pipe(
      Effect.flatMap((snapshot) =>
        Effect.map(
          // An object's bytes are this call's own: the first caller may own the decompressed bytes, no copy (joiners
          // restore from a copy, `cache.ts`). An inline payload may be the store's own memory: the value gets a copy.
          serializer.restore(snapshot, { schema: plan.schema, reuse: record.payload === undefined }),
          (value): Hit => ({ _tag: "Hit", value, snapshot, expiresAt, stale: false, refresh: false })
        )
      )
    )
  }

  const unchanged: Reader["unchanged"] = (plan, record) =>
    withMetadataDeadline("getMany", metadata.getMany(plan.namespace, [plan.hash])).pipe(
      Effect.map(([found]): Found => {
        if (found === undefined || Option.isNone(found)) return "gone"
        const now = found.value
        return now.createdAt === record.createdAt && now.objectKey === record.objectKey &&
            now.checksum === record.checksum
          ? "same"
          : { changed: now }
      }),
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause)
          ? Effect.failCause(cause as Cause.Cause<never>)
          : Effect.as(Effect.logDebug("s3cache: could not read the entry's record again", cause), "unknown" as const)
      )
    )

  return { belongs, hitNow, read, unchanged }
}
