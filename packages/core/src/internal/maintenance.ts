/**
 * Invalidation, clearing and orphan cleanup: the administrative operations of a cache. Unlike the cached call,
 * these report store failures to their caller as typed errors.
 *
 * @since 0.1.0
 */
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type * as BlobStore from "../BlobStore.js"
import type { CleanupOptions, CleanupReport, Service } from "../Cache.js"
import * as CacheConfig from "../CacheConfig.js"
import { CacheInputError, type MetadataStoreError } from "../CacheError.js"
import * as CacheKey from "../CacheKey.js"
import type * as MetadataStore from "../MetadataStore.js"
import type { Coherence } from "./coherence.js"
import type * as fence from "./fence.js"
import type { SingleFlight } from "./singleFlight.js"

interface Dependencies {
  readonly config: CacheConfig.Resolved
  readonly metadata: MetadataStore.MetadataStore["Type"]
  readonly blobs: BlobStore.BlobStore["Type"]
  readonly fence: Pick<fence.Fence, "withMetadataDeadline" | "withBlobDeadline">
  /** the id of the metadata store, which starts every object key this cache writes */
  readonly storeId: Effect.Effect<string, MetadataStoreError>
  /** the computations in flight in this process, forgotten by an invalidation */
  readonly flights: Pick<SingleFlight, "detach">
  /** deletes objects, logging (not raising) failures: a record already gone makes them orphans, not errors */
  readonly deleteObjects: (operation: string, keys: ReadonlyArray<string>) => Effect.Effect<void>
  /** the in-process tier and the other instances, told what was removed */
  readonly coherence: Pick<Coherence, "removed" | "cleared">
}

/** @internal */
export const defaultGraceAge: Duration.Duration = Duration.hours(1)

/** @internal */
export const defaultBatchSize = 500

/** Steps of `clearNamespace` before giving up: at 500 records a step, half a billion records. */
const maxClearSteps = 1_000_000

/**
 * Invalidation wins: the store removes the records and the stampede locks (a computation in flight elsewhere then
 * cannot commit), and this process forgets its own computations in flight, so a call made after an invalidation
 * returns never joins one that started before it.
 *
 * @internal
 */
export const make = (
  { blobs, coherence, config, deleteObjects, fence, flights, metadata, storeId }: Dependencies
): Pick<
  Service,
  "invalidate" | "invalidateKey" | "invalidateNamespace" | "clear" | "cleanupOrphanedObjects" | "hashKey"
> => {
  const { withBlobDeadline, withMetadataDeadline } = fence

  const namespaceOf = (namespace: string | undefined, method: string) =>
    CacheKey.validateNamespace(namespace ?? config.namespace, method)

  // The tier drops the entry before the store call too: whatever the store's answer (a timeout is an unknown outcome),
  // this process serves nothing from before the call; after it, the drop is told to the other instances (once the
  // record is gone, so that they cannot read it back).
  const removeIn = (namespace: string, hash: string, method: string) =>
    coherence.removed(namespace, [hash], false).pipe(
      Effect.zipRight(withMetadataDeadline("remove", metadata.remove(namespace, [hash]))),
      Effect.tap(() => Effect.sync(() => flights.detach(namespace, hash))),
      Effect.tap(() => coherence.removed(namespace, [hash], true)),
      Effect.tap((keys) => deleteObjects(method, keys)),
      Effect.map((keys) => keys.length)
    )

  const hashKey: Service["hashKey"] = (key, namespace) =>
    Effect.map(
      CacheKey.hash(key, { namespace: namespace ?? config.namespace, version: config.keyVersion }, "Cache.hashKey"),
      (_) => _.hash
    )

  const invalidate: Service["invalidate"] = (hash, options) =>
    Effect.gen(function*() {
      if (typeof hash !== "string" || !CacheKey.isHash(hash)) {
        return yield* new CacheInputError({
          reason: "InvalidKey",
          method: "Cache.invalidate",
          description: `${JSON.stringify(String(hash).slice(0, 80))} is not an entry hash (64 lowercase hex ` +
            "characters); use Cache.hashKey to compute one, or Cache.invalidateKey with the key itself"
        })
      }
      const namespaces = options?.namespace !== undefined
        ? [yield* namespaceOf(options.namespace, "Cache.invalidate")]
        : yield* withMetadataDeadline("namespaces", metadata.namespaces)
      let removed = 0
      for (const namespace of namespaces) removed += yield* removeIn(namespace, hash, "invalidate")
      return removed > 0
    }).pipe(Effect.withSpan("Cache.invalidate"))

  const invalidateKey: Service["invalidateKey"] = (key, options) =>
    Effect.gen(function*() {
      const namespace = yield* namespaceOf(options?.namespace, "Cache.invalidateKey")
      const { hash } = yield* CacheKey.hash(key, { namespace, version: config.keyVersion }, "Cache.invalidateKey")
      return (yield* removeIn(namespace, hash, "invalidateKey")) > 0
    }).pipe(Effect.withSpan("Cache.invalidateKey"))

  // Step by step, each under its own deadline, and each step's objects deleted before the next: a namespace of any
  // size is cleared, and a failure midway leaves no record pointing at a deleted object.
  const invalidateNamespace: Service["invalidateNamespace"] = (namespace) =>
    Effect.gen(function*() {
      const valid = yield* CacheKey.validateNamespace(namespace, "Cache.invalidateNamespace")
      yield* coherence.cleared(valid, false)
      let removed = 0
      for (let step = 0; step < maxClearSteps; step++) {
        const { done, objectKeys } = yield* withMetadataDeadline("clearNamespace", metadata.clearNamespace(valid))
        if (step === 0) flights.detach(valid)
        yield* deleteObjects("invalidateNamespace", objectKeys)
        removed += objectKeys.length
        if (done) break
      }
      flights.detach(valid)
      yield* coherence.cleared(valid, true)
      return removed
    }).pipe(Effect.withSpan("Cache.invalidateNamespace", { attributes: { "s3cache.namespace": namespace } }))

  const clear: Service["clear"] = Effect.gen(function*() {
    let removed = 0
    for (const namespace of yield* withMetadataDeadline("namespaces", metadata.namespaces)) {
      removed += yield* invalidateNamespace(namespace)
    }
    flights.detach(undefined)
    // also what the tiers hold of namespaces the store no longer lists
    yield* coherence.cleared(undefined, true)
    return removed
  }).pipe(Effect.withSpan("Cache.clear"))

  const cleanupOrphanedObjects: Service["cleanupOrphanedObjects"] = (options?: CleanupOptions) =>
    Effect.gen(function*() {
      const method = "Cache.cleanupOrphanedObjects"
      const graceMs = Duration.toMillis(
        options?.olderThan === undefined
          ? defaultGraceAge
          : yield* CacheConfig.nonNegativeDuration(options.olderThan, "olderThan", method)
      )
      const batchSize = options?.batchSize ?? defaultBatchSize
      if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > 1000) {
        return yield* new CacheInputError({
          reason: "InvalidOption",
          method,
          description: `batchSize must be an integer from 1 to 1000 (got ${String(batchSize)})`
        })
      }
      const dryRun = options?.dryRun ?? false
      // only the objects this cache's metadata store can vouch for: another deployment's objects under the same bucket
      // prefix or folder have no record here, and are not ours to judge
      const owner = yield* storeId
      const cutoff = (yield* Clock.currentTimeMillis) - graceMs
      const initial: CleanupReport = {
        dryRun,
        listed: 0,
        tooYoung: 0,
        referenced: 0,
        foreign: 0,
        orphaned: 0,
        deleted: 0,
        failed: 0
      }
      return yield* blobs.list(`${owner}/`).pipe(
        Stream.grouped(batchSize),
        Stream.runFoldEffect(
          initial,
          (report, chunk) => {
            const batch = cleanBatch(report, Chunk.toReadonlyArray(chunk), cutoff, owner)
            const progress = options?.progress
            return progress === undefined ? batch : Effect.tap(batch, progress)
          }
        )
      )
    }).pipe(Effect.withSpan("Cache.cleanupOrphanedObjects"))

  const cleanBatch = (
    report: CleanupReport,
    objects: ReadonlyArray<BlobStore.BlobInfo>,
    cutoff: number,
    owner: string
  ) =>
    Effect.gen(function*() {
      let { foreign, referenced, tooYoung } = report
      // candidates by namespace: hash → object keys
      const candidates = new Map<string, Array<{ readonly key: string; readonly hash: string }>>()
      const orphans: Array<string> = []
      for (const object of objects) {
        if (object.lastModified > cutoff) {
          // an upload whose record is not written yet is not an orphan
          tooYoung++
          continue
        }
        const parsed = CacheKey.parseObjectKey(object.key)
        if (parsed === undefined || parsed.storeId !== owner) {
          foreign++
        } else if (!parsed.complete) {
          orphans.push(object.key)
        } else {
          const list = candidates.get(parsed.namespace) ?? []
          list.push({ key: object.key, hash: parsed.hash })
          candidates.set(parsed.namespace, list)
        }
      }
      for (const [namespace, list] of candidates) {
        const records = yield* withMetadataDeadline("getMany", metadata.getMany(namespace, list.map((_) => _.hash)))
        list.forEach(({ key }, i) => {
          const record = records[i]
          if (record !== undefined && Option.isSome(record) && record.value.objectKey === key) referenced++
          else orphans.push(key)
        })
      }
      let { deleted, failed } = report
      if (!report.dryRun && orphans.length > 0) {
        const result = yield* withBlobDeadline("delete", undefined, blobs.delete(orphans))
        deleted += result.deleted
        failed += result.failed.length
      }
      return {
        dryRun: report.dryRun,
        listed: report.listed + objects.length,
        tooYoung,
        referenced,
        foreign,
        orphaned: report.orphaned + orphans.length,
        deleted,
        failed
      }
    })

  return { invalidate, invalidateKey, invalidateNamespace, clear, cleanupOrphanedObjects, hashKey }
}

/**
 * Delete every object written under `metadata`'s id: the embedded layer's last act, when its records die with it.
 * Bounded: a folder that cannot be listed or emptied within a minute is left as it is.
 *
 * @internal
 */
export const purge = (
  metadata: MetadataStore.MetadataStore["Type"],
  blobs: BlobStore.BlobStore["Type"]
): Effect.Effect<void> =>
  Effect.flatMap(metadata.id, (id) =>
    blobs.list(`${id}/`).pipe(
      Stream.map((info) => info.key),
      Stream.grouped(1000),
      Stream.runForEach((keys) => blobs.delete(Chunk.toReadonlyArray(keys)))
    )).pipe(
      Effect.timeout(Duration.minutes(1)),
      Effect.catchAllCause((cause) =>
        Effect.logWarning("s3cache: could not delete the embedded cache's objects; they stay in its folder", cause)
      ),
      Effect.interruptible
    )
