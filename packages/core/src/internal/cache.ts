/**
 * The cached call: key → single flight → lookup (hit, lock won, lock busy) → run → background persist.
 *
 * Every cache step is fenced: a store error, a timeout, a corrupt or undecodable entry, even a defect in a store,
 * ends in the original effect running (fail-open). The steps that can fail all happen before the user's effect
 * starts or after it has delivered its value, so the effect runs at most once per call.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import * as crypto from "node:crypto"
import { BlobStore } from "../BlobStore.js"
import type { Service } from "../Cache.js"
import * as CacheConfig from "../CacheConfig.js"
import type { MetadataStoreError } from "../CacheError.js"
import { BlobStoreError, type CacheError, CacheInputError, type SerializationError } from "../CacheError.js"
import * as CacheKey from "../CacheKey.js"
import * as CacheMetrics from "../CacheMetrics.js"
import { type EntryRecord, MetadataStore } from "../MetadataStore.js"
import { type Format, Serializer } from "../Serializer.js"
import * as fence from "./fence.js"
import * as maintenance from "./maintenance.js"
import * as singleFlight from "./singleFlight.js"

/** What one cached call is about, once its options are validated. */
interface Plan {
  readonly namespace: string
  readonly hash: string
  readonly preview: string
  readonly ttl: Duration.Duration
  readonly format: Format
  readonly schema: Schema.Schema<any, any, never> | undefined
}

/** What the cache decided before the user's effect runs. */
type Decision =
  | { readonly _tag: "Hit"; readonly value: unknown }
  | { readonly _tag: "Run"; readonly persist: boolean; readonly token: string | undefined }

const run = (persist: boolean, token?: string): Decision => ({ _tag: "Run", persist, token })

/** @internal */
export interface CachedOptions {
  readonly key: unknown
  readonly namespace?: string | undefined
  readonly ttl?: Duration.DurationInput | undefined
  readonly format?: Format | undefined
  readonly schema?: Schema.Schema<any, any, never> | undefined
}

/** @internal */
export const randomId = (): string => crypto.randomBytes(12).toString("base64url")

/** @internal */
export const make = Effect.fnUntraced(function*(options: CacheConfig.Options) {
  const config = yield* CacheConfig.resolve(options, "Cache.make")
  const metadata = yield* MetadataStore
  const blobs = yield* BlobStore
  const serializer = yield* Serializer
  const scope = yield* Effect.scope
  const metrics = CacheMetrics.instruments(config.name)
  const waitMs = Duration.toMillis(config.stampedeLockTtl)
  const leaseMs = Duration.toMillis(config.stampedeLockLease)

  // Background writes live in the layer's scope. The drain finalizer is added after the FiberSet, so it runs first
  // on close: pending writes get `shutdownTimeout` to finish before the set interrupts what is left.
  const writes = yield* FiberSet.make<void, never>()
  const writePermits = yield* Effect.makeSemaphore(config.writeConcurrency)
  let pendingWrites = 0
  yield* Effect.addFinalizer(() => drain(writes, config.shutdownTimeout))
  const flights = singleFlight.make(scope)
  // Background work is often forked from `onExit`, where fibers start uninterruptible: make it interruptible again,
  // or closing the layer could not stop a write that hangs.
  const background = (effect: Effect.Effect<void>): Effect.Effect<void> =>
    Effect.asVoid(FiberSet.run(writes, Effect.interruptible(effect)))

  const { fenced, report, withBlobDeadline, withMetadataDeadline } = fence.make(config, metrics)

  const releaseLockInBackground = (plan: Plan, token: string | undefined): Effect.Effect<void> =>
    token === undefined ? Effect.void : background(
      fenced(
        "releaseLock",
        "the lock expires by itself after its lease (stampedeLockLease)",
        withMetadataDeadline("releaseLock", metadata.releaseLock(plan.namespace, plan.hash, token)),
        () => undefined
      )
    )

  const deleteObjects = (operation: string, keys: ReadonlyArray<string>): Effect.Effect<void> =>
    keys.length === 0 ? Effect.void : fenced(
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

  // -- read ---------------------------------------------------------------------------------------------------------

  const read = (plan: Plan, record: EntryRecord): Effect.Effect<unknown, BlobStoreError | SerializationError> =>
    withBlobDeadline("get", record.objectKey, blobs.get(record.objectKey), record.storedSize).pipe(
      Effect.flatMap((bytes): Effect.Effect<unknown, BlobStoreError | SerializationError> =>
        Option.isNone(bytes)
          ? new BlobStoreError({
            reason: "Protocol",
            method: "get",
            key: record.objectKey,
            description: "the entry's object does not exist (deleted, or lost)"
          })
          : Metric.incrementBy(metrics.bytesRead, bytes.value.length).pipe(
            Effect.zipRight(serializer.decode(bytes.value, { ...record, schema: plan.schema }))
          )
      )
    )

  /** Drop an entry that could not be read: record first, then object. */
  const drop = (plan: Plan): Effect.Effect<void> =>
    fenced(
      "drop",
      "the bad entry stays until its TTL or until it is replaced",
      withMetadataDeadline("remove", metadata.remove(plan.namespace, [plan.hash])).pipe(
        Effect.flatMap((keys) => deleteObjects("drop", keys))
      ),
      () => undefined
    )

  // -- decide -------------------------------------------------------------------------------------------------------

  // A provably bad entry (its object is gone, its bytes fail the checksum or do not decode) is dropped and written
  // again. A store that is slow or down proves nothing about the entry: it stays, and the call bypasses the cache
  // rather than add a delete and a rewrite to a store that is already struggling.
  const hitOrMiss = (plan: Plan, record: EntryRecord): Effect.Effect<Decision> =>
    read(plan, record).pipe(
      Effect.map((value): Decision => ({ _tag: "Hit", value })),
      Effect.catchAllCause((cause): Effect.Effect<Decision> => {
        if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
        const failure = Option.getOrUndefined(Cause.failureOption(cause))
        const badEntry = failure !== undefined &&
          (failure._tag === "SerializationError" || failure.reason === "Protocol")
        return badEntry
          ? report("read", "the entry is dropped and the effect runs", cause).pipe(
            Effect.zipRight(drop(plan)),
            Effect.as(run(true))
          )
          : Effect.as(report("read", "the effect runs uncached; the entry is kept", cause), run(false))
      })
    )

  /** Read the record, or take (or renew) the lock under `token` for one lease. */
  const lookup = (plan: Plan, token: string) =>
    withMetadataDeadline("lookup", metadata.lookup(plan.namespace, plan.hash, { token, lockTtlMs: leaseMs }))

  const decide = (plan: Plan): Effect.Effect<Decision> => {
    const token = randomId()
    const loop = (deadline: number, attempt: number): Effect.Effect<Decision, MetadataStoreError> =>
      Effect.flatMap(lookup(plan, token), (result) => {
        switch (result._tag) {
          case "Hit":
            return hitOrMiss(plan, result.record)
          case "Acquired":
            return Effect.succeed(run(true, token))
          case "Busy":
            return Effect.flatMap(Clock.currentTimeMillis, (now) =>
              now >= deadline
                ? Effect.as(
                  Effect.logWarning("s3cache: waited stampedeLockTtl for another process's result; running the effect"),
                  run(true)
                )
                : Effect.zipRight(Effect.sleep(pollDelay(attempt, deadline - now)), loop(deadline, attempt + 1)))
        }
      })
    return Effect.flatMap(Clock.currentTimeMillis, (now) => loop(now + waitMs, 0)).pipe(
      (effect) => fenced("lookup", "the effect runs uncached", effect, () => run(false)),
      Effect.tap((decision) =>
        decision._tag === "Run" && !decision.persist ? Metric.increment(metrics.bypassed) : Effect.void
      )
    )
  }

  /**
   * Run `effect` while renewing the stampede lock every third of a lease, so other processes keep waiting for a long
   * computation, yet a process that dies blocks the key for one lease at most. Renewal stops when the lock is lost.
   */
  const holdingLock = <A, E, R>(plan: Plan, token: string | undefined, effect: Effect.Effect<A, E, R>) => {
    if (token === undefined) return effect
    const renew: Effect.Effect<void> = Effect.sleep(Duration.millis(leaseMs / 3)).pipe(
      Effect.zipRight(lookup(plan, token)),
      Effect.flatMap((result) => result._tag === "Acquired" ? renew : Effect.void),
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause)
          ? Effect.failCause(cause as Cause.Cause<never>)
          : Effect.logDebug("s3cache: could not renew a stampede lock; it expires after its lease", cause)
      )
    )
    return Effect.flatMap(Effect.fork(renew), (renewal) => Effect.ensuring(effect, Fiber.interrupt(renewal)))
  }

  // -- persist ------------------------------------------------------------------------------------------------------

  const write = (plan: Plan, value: unknown, token: string | undefined): Effect.Effect<void> =>
    Effect.gen(function*() {
      const encoded = yield* serializer.encode(value, {
        format: plan.format,
        compression: config.compression,
        schema: plan.schema
      })
      const objectKey = CacheKey.objectKey(plan.namespace, plan.hash, randomId())
      yield* withBlobDeadline("put", objectKey, blobs.put(objectKey, encoded.bytes), encoded.bytes.length)
      const now = yield* Clock.currentTimeMillis
      const record: EntryRecord = {
        hash: plan.hash,
        namespace: plan.namespace,
        objectKey,
        format: encoded.format,
        compression: encoded.compression,
        rawSize: encoded.rawSize,
        storedSize: encoded.bytes.length,
        checksum: encoded.checksum,
        createdAt: now,
        ttlMs: Duration.toMillis(plan.ttl),
        codecVersion: encoded.codecVersion,
        keyPreview: plan.preview
      }
      const committed = yield* withMetadataDeadline(
        "commit",
        metadata.commit(record, { token, maxEntries: config.maxCacheEntries })
      ).pipe(
        // no record points at the object: remove it now rather than leave it for orphan cleanup
        Effect.tapError(() => deleteObjects("persist", [objectKey]))
      )
      yield* Metric.increment(metrics.writes)
      yield* Metric.incrementBy(metrics.bytesWritten, encoded.bytes.length)
      yield* Metric.incrementBy(metrics.evictions, committed.evicted)
      yield* deleteObjects("persist", committed.obsolete)
    }).pipe(
      (effect) =>
        fenced(
          "persist",
          "the value was returned but not stored",
          Effect.tapErrorCause(
            effect,
            () => Effect.zipRight(Metric.increment(metrics.writeFailures), releaseLockInBackground(plan, token))
          ),
          () => undefined
        ),
      Effect.withSpan("Cache.persist", {
        attributes: { "s3cache.namespace": plan.namespace, "s3cache.hash": plan.hash }
      })
    )
  const persist = (plan: Plan, value: unknown, token: string | undefined): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (pendingWrites >= config.maxPendingWrites) {
        return Metric.increment(metrics.writesDropped).pipe(
          Effect.zipRight(Effect.logWarning("s3cache: write queue full (maxPendingWrites); the value is not stored")),
          Effect.zipRight(releaseLockInBackground(plan, token))
        )
      }
      pendingWrites++
      return Metric.set(metrics.pendingWrites, pendingWrites).pipe(
        Effect.zipRight(background(
          writePermits.withPermits(1)(write(plan, value, token)).pipe(
            Effect.onExit(() => Effect.suspend(() => Metric.set(metrics.pendingWrites, --pendingWrites)))
          )
        ))
      )
    })

  // -- the cached call ----------------------------------------------------------------------------------------------

  const planOf = (options: CachedOptions): Either.Either<Plan, CacheError> => {
    const method = "Cache.cached"
    if (typeof options !== "object" || options === null) {
      // a JavaScript caller (or an `as any`) handing a bare key to the service method, where every such call would
      // otherwise share the entry of the key `undefined`
      return Either.left(
        new CacheInputError({
          reason: "InvalidKey",
          method,
          description: "the service's cached takes options ({ key, … }); for a bare key use Cache.cached(effect, key)"
        })
      )
    }
    const namespace = options.namespace ?? config.namespace
    return Either.flatMap(
      CacheKey.hash(options.key, { namespace, version: config.keyVersion }, method),
      ({ hash, preview }) =>
        Either.map(
          options.ttl === undefined
            ? Either.right(config.defaultTtl)
            : CacheConfig.positiveDuration(options.ttl, "ttl", method, "InvalidTtl"),
          (ttl): Plan => ({
            namespace,
            hash,
            preview,
            ttl,
            format: options.format ?? config.serializationFormat,
            schema: options.schema
          })
        )
    )
  }

  /** The computation all concurrent callers of one key share. */
  const compute = <A, E, R>(plan: Plan, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    // nanoseconds: a hit takes a fraction of a millisecond, which whole milliseconds would record as 0
    Effect.flatMap(Clock.currentTimeNanos, (start) =>
      Effect.flatMap(decide(plan), (decision) => {
        const elapsed = Effect.map(Clock.currentTimeNanos, (now) => Number(now - start) / 1e6)
        if (decision._tag === "Hit") {
          return Effect.flatMap(elapsed, (ms) =>
            Metric.increment(metrics.hits).pipe(
              Effect.zipRight(Metric.update(metrics.hitLatency, ms)),
              Effect.zipRight(Effect.annotateCurrentSpan("s3cache.result", "hit")),
              Effect.as(decision.value as A)
            ))
        }
        return holdingLock(plan, decision.token, effect).pipe(
          Effect.onExit((exit) =>
            Exit.isSuccess(exit)
              ? Effect.flatMap(elapsed, (ms) =>
                Metric.increment(metrics.misses).pipe(
                  Effect.zipRight(Metric.update(metrics.missLatency, ms)),
                  Effect.zipRight(Effect.annotateCurrentSpan("s3cache.result", decision.persist ? "miss" : "bypass")),
                  Effect.zipRight(decision.persist ? persist(plan, exit.value, decision.token) : Effect.void)
                ))
              // the effect failed or was interrupted: nothing to store; let waiting processes stop waiting
              : releaseLockInBackground(plan, decision.token)
          )
        )
      }))

  const cached = <A, E, R>(effect: Effect.Effect<A, E, R>, options: CachedOptions): Effect.Effect<A, E, R> =>
    Either.match(planOf(options), {
      onLeft: (error) =>
        report("cached", "the effect runs uncached", Cause.fail(error)).pipe(
          Effect.zipRight(Metric.increment(metrics.bypassed)),
          Effect.zipRight(Metric.increment(metrics.misses)),
          Effect.zipRight(effect)
        ),
      onRight: (plan) =>
        flights.run(plan.hash, compute(plan, effect), Metric.increment(metrics.coalesced)).pipe(
          Effect.withSpan("Cache.cached", {
            attributes: { "s3cache.namespace": plan.namespace, "s3cache.hash": plan.hash }
          })
        )
    })

  const service: Service = {
    config,
    cached,
    ...maintenance.make({ config, metadata, blobs, withMetadataDeadline, withBlobDeadline, deleteObjects }),
    stats: CacheMetrics.stats(metrics),
    flush: FiberSet.awaitEmpty(writes),
    inFlight: Effect.sync(flights.size)
  }
  return service
})

/** Delay before asking again whether another process's result is there: fast at first, then every ~250 ms. */
const pollDelay = (attempt: number, remainingMs: number): Duration.Duration => {
  const base = Math.min(10 * 2 ** attempt, 250)
  return Duration.millis(Math.max(1, Math.min(remainingMs, base / 2 + Math.random() * base / 2)))
}

const drain = (writes: FiberSet.FiberSet<void, never>, timeout: Duration.Duration) =>
  Effect.flatMap(
    FiberSet.size(writes),
    (pending) =>
      pending === 0 ? Effect.void : Effect.logDebug(`s3cache: waiting for ${pending} background writes`).pipe(
        // finalizers run uninterruptibly: without `interruptible` the timeout could never stop the wait
        Effect.zipRight(Effect.timeoutOption(Effect.interruptible(FiberSet.awaitEmpty(writes)), timeout)),
        Effect.flatMap(Option.match({
          onSome: () => Effect.void,
          onNone: () =>
            Effect.flatMap(FiberSet.size(writes), (left) =>
              Effect.logWarning(
                `s3cache: ${left} background writes did not finish within shutdownTimeout and are interrupted`
              ))
        }))
      )
  )
