/**
 * The background write of a miss: seal the snapshot (compress, checksum), upload it under a new object key, commit
 * the record under the stampede lock, delete what the commit made obsolete.
 *
 * Outcomes are taken for what they prove. A commit the store refused (`LockLost`: an invalidation removed the lock,
 * or it lapsed) wrote nothing, so the new object is deleted at once. A commit that failed or timed out may still have
 * happened: its object may be referenced, so it is left alone (orphan cleanup removes it if it is not). Objects that a
 * commit replaced or evicted are deleted only after `blobTimeout`, so a reader that got the old record just before the
 * commit can still read them.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type { BlobStore } from "../BlobStore.js"
import type * as CacheConfig from "../CacheConfig.js"
import * as CacheKey from "../CacheKey.js"
import type * as CacheMetrics from "../CacheMetrics.js"
import type { EntryRecord, MetadataStore } from "../MetadataStore.js"
import type { Serializer, Snapshot } from "../Serializer.js"
import type { Fence } from "./fence.js"
import type { Lease } from "./locks.js"
import * as Permits from "./permits.js"
import type { Plan } from "./plan.js"
import { randomId } from "./random.js"
import * as tracing from "./tracing.js"

/** @internal */
export interface Persist {
  /**
   * Queue the write of `snapshot`; the write owns `lease` from now on and ends it. Past `maxPendingWrites`, the value
   * is not stored (counted in `writesDropped`) and the lease ends at once.
   */
  readonly persist: (plan: Plan, snapshot: Snapshot, value: unknown, lease: Lease) => Effect.Effect<void>
  /** would a write queued now be dropped? (then the caller need not snapshot the value for it) */
  readonly full: () => boolean
  /** a value not stored because the queue is full: counted, logged, its lease ended */
  readonly dropped: (lease: Lease) => Effect.Effect<void>
  /** delete objects, logging (not raising) failures: with the record gone they are orphans, not errors */
  readonly deleteObjects: (operation: string, keys: ReadonlyArray<string>) => Effect.Effect<void>
  /** closing: wait up to `shutdownTimeout` for pending writes, count the ones that did not finish */
  readonly drain: Effect.Effect<void>
  /** wait until the writes pending now are done (stored, or failed and reported) */
  readonly flush: Effect.Effect<void>
}

/** @internal */
export interface Dependencies {
  readonly config: CacheConfig.Resolved
  readonly metadata: MetadataStore["Type"]
  readonly blobs: BlobStore["Type"]
  readonly serializer: Serializer["Type"]
  readonly metrics: CacheMetrics.Instruments
  readonly fence: Fence
  /** the store id that starts every object key */
  readonly storeId: Effect.Effect<string, unknown>
  /** the writes; closed (interrupting what is left) after `drain` */
  readonly writes: FiberSet.FiberSet<void, never>
  /** other background work of the layer: delayed deletions */
  readonly housekeeping: FiberSet.FiberSet<unknown, unknown>
  /**
   * After a commit: tell the other instances, keep the value in this one's tier unless something was dropped from it
   * since `generation` (read before the commit was sent: an invalidation or another writer's event meanwhile wins).
   */
  readonly committed: (
    plan: Plan,
    snapshot: Snapshot,
    value: unknown,
    record: EntryRecord,
    generation: number
  ) => Effect.Effect<void>
  /** the tier's generation now, for `committed` */
  readonly generation: () => number
}

/** @internal */
export const make = (
  { blobs, committed, config, fence, generation, housekeeping, metadata, metrics, serializer, storeId, writes }:
    Dependencies
): Effect.Effect<Persist> =>
  Effect.gen(function*() {
    const { fenced, withBlobDeadline, withMetadataDeadline } = fence
    const permits = Permits.make(config.writeConcurrency)
    let pending = 0

    // `""` stands for a record whose payload was inline: there is no object to delete
    const deleteObjects: Persist["deleteObjects"] = (operation, all) => {
      const keys = all.filter((key) => key !== "")
      return keys.length === 0 ? Effect.void : fenced(
        operation,
        "the objects stay as orphans until cleanupOrphanedObjects",
        withBlobDeadline("delete", undefined, blobs.delete(keys)).pipe(
          Effect.flatMap((result) =>
            result.failed.length === 0
              ? Effect.void
              : Effect.logWarning(`s3cache: ${result.failed.length} objects could not be deleted; they stay as orphans`)
          )
        ),
        () => undefined
      )
    }

    // Obsolete objects wait in one bucket per second of due time: one sleeping fiber per second, not one per commit.
    const graceMs = Duration.toMillis(config.blobTimeout)
    const buckets = new Map<number, Array<string>>()
    const deleteLater = (all: ReadonlyArray<string>): Effect.Effect<void> => {
      const keys = all.filter((key) => key !== "")
      return keys.length === 0 ? Effect.void : Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const due = Math.ceil((now + graceMs) / 1000) * 1000
        const bucket = buckets.get(due)
        if (bucket !== undefined) {
          bucket.push(...keys)
          return Effect.void
        }
        buckets.set(due, [...keys])
        return Effect.asVoid(FiberSet.run(
          housekeeping,
          Effect.sleep(Duration.millis(due - now)).pipe(
            Effect.zipRight(Effect.suspend(() => {
              const keys = buckets.get(due) ?? []
              buckets.delete(due)
              return deleteObjects("persist", keys)
            })),
            Effect.interruptible
          )
        ))
      })
    }

    const write = (plan: Plan, snapshot: Snapshot, value: unknown, lease: Lease): Effect.Effect<void> =>
      Effect.gen(function*() {
        // small payloads are stored as they are: decompressing them would cost more than reading their bytes
        const sealed = yield* serializer.seal(
          snapshot,
          snapshot.bytes.byteLength < config.compressionThreshold ? "none" : config.compression
        )
        // a small payload goes in the record itself: one round trip to read, no object to write, delete or clean up
        const inline = sealed.bytes.length <= config.inlineThreshold
        const objectKey = inline ? "" : CacheKey.objectKey(yield* storeId, plan.namespace, plan.hash, randomId())
        if (!inline) {
          yield* withBlobDeadline("put", objectKey, blobs.put(objectKey, sealed.bytes), sealed.bytes.length)
        }
        const record: EntryRecord = {
          hash: plan.hash,
          namespace: plan.namespace,
          objectKey,
          format: sealed.format,
          compression: sealed.compression,
          rawSize: sealed.rawSize,
          storedSize: sealed.bytes.length,
          checksum: sealed.checksum,
          createdAt: yield* Clock.currentTimeMillis,
          ttlMs: Duration.toMillis(plan.ttl),
          // kept past its TTL for calls that accept it stale
          ...(plan.policy.graceMs > 0 ? { graceMs: plan.policy.graceMs } : {}),
          codecVersion: sealed.codecVersion,
          keyPreview: plan.preview,
          ...(inline ? { payload: sealed.bytes } : {})
        }
        const since = generation()
        const result = yield* withMetadataDeadline(
          "commit",
          metadata.commit(record, { token: lease.token, maxEntries: config.maxCacheEntries })
        )
        yield* lease.end(true)
        if (result._tag === "LockLost") {
          yield* Metric.increment(metrics.writesSuperseded)
          yield* Effect.logDebug(
            "s3cache: the entry's lock was gone at commit (invalidated, or lapsed); the value is not stored"
          )
          // the store refused the commit: no record can reference the object
          return yield* deleteObjects("persist", [objectKey])
        }
        yield* committed(plan, snapshot, value, record, since)
        yield* Metric.increment(metrics.writes)
        yield* Metric.incrementBy(metrics.bytesWritten, sealed.bytes.length)
        yield* Metric.incrementBy(metrics.evictions, result.evicted)
        yield* deleteLater(result.obsolete)
      }).pipe(
        (effect) =>
          fenced(
            "persist",
            "the value was returned but not stored",
            Effect.tapErrorCause(effect, () =>
              Effect.zipRight(Metric.increment(metrics.writeFailures), lease.end(false))),
            () =>
              undefined
          ),
        // interrupted (closing ran out of time): the lock is released by the lease, or by the cache's last finalizer
        Effect.onInterrupt(() => lease.end(false)),
        tracing.withSpan("Cache.persist", {
          attributes: { "s3cache.namespace": plan.namespace, "s3cache.hash": plan.hash }
        })
      )

    const dropped: Persist["dropped"] = (lease) =>
      Metric.increment(metrics.writesDropped).pipe(
        Effect.zipRight(Effect.logWarning("s3cache: write queue full (maxPendingWrites); the value is not stored")),
        Effect.zipRight(lease.end(false))
      )

    const persist: Persist["persist"] = (plan, snapshot, value, lease) =>
      Effect.suspend(() => {
        if (pending >= config.maxPendingWrites) return dropped(lease)
        pending++
        return Metric.set(metrics.pendingWrites, pending).pipe(
          Effect.zipRight(FiberSet.run(
            writes,
            // background work is forked from uninterruptible regions: make it interruptible again, or closing the
            // layer could not stop a write that hangs
            Effect.interruptible(permits.withPermit(write(plan, snapshot, value, lease))).pipe(
              Effect.onExit(() => Effect.suspend(() => Metric.set(metrics.pendingWrites, --pending)))
            )
          )),
          Effect.asVoid
        )
      })

    const drain = Effect.flatMap(FiberSet.size(writes), (count) =>
      count === 0 ? Effect.void : Effect.logDebug(`s3cache: waiting for ${count} background writes`).pipe(
        // finalizers run uninterruptibly: without `interruptible` the timeout could never stop the wait
        Effect.zipRight(
          Effect.timeoutOption(Effect.interruptible(FiberSet.awaitEmpty(writes)), config.shutdownTimeout)
        ),
        Effect.flatMap(Option.match({
          onSome: () =>
            Effect.void,
          onNone: () =>
            Effect.flatMap(FiberSet.size(writes), (left) =>
              Metric.incrementBy(metrics.writesAbandoned, left).pipe(
                Effect.zipRight(Effect.logWarning(
                  `s3cache: ${left} background writes did not finish within shutdownTimeout; they are interrupted ` +
                    "and their values not stored"
                ))
              ))
        }))
      ))

    return {
      persist,
      full: () =>
        pending >= config.maxPendingWrites,
      dropped,
      deleteObjects,
      drain,
      // the writes pending now, not every write to come: under steady load the set is never empty
      flush: Effect.suspend(() =>
        Fiber.awaitAll(Array.from(writes))
      ).pipe(Effect.asVoid)
    } satisfies Persist
  })
