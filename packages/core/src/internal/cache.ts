/**
 * The cached call: key → single flight → lookup (hit, lock won, lock busy) → run → snapshot → background persist.
 *
 * Every cache step is fenced: a store error, a timeout, a corrupt or undecodable entry, even a defect in a store,
 * ends in the original effect running (fail-open). The steps that can fail all happen before the user's effect
 * starts or after it has delivered its value, so the effect runs at most once per call.
 *
 * The value is snapshotted (encoded into bytes the cache owns) when the effect completes, before any caller gets it:
 * what is stored is the value as it was then, and callers that joined the computation each get a value of their own
 * restored from the snapshot, so no caller's mutation reaches the store or another caller.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import { BlobStore } from "../BlobStore.js"
import type { Service } from "../Cache.js"
import * as CacheConfig from "../CacheConfig.js"
import { BlobStoreError, MetadataStoreError, type SerializationError } from "../CacheError.js"
import * as CacheKey from "../CacheKey.js"
import * as CacheMetrics from "../CacheMetrics.js"
import { type EntryRecord, MetadataStore } from "../MetadataStore.js"
import { Serializer, type Snapshot } from "../Serializer.js"
import * as fence from "./fence.js"
import * as locks from "./locks.js"
import * as maintenance from "./maintenance.js"
import * as persistModule from "./persist.js"
import * as plans from "./plan.js"
import type { Plan } from "./plan.js"
import { randomId } from "./random.js"
import * as singleFlight from "./singleFlight.js"

/** What the cache decided before the user's effect runs. */
type Decision =
  | { readonly _tag: "Hit"; readonly value: unknown; readonly snapshot: Snapshot }
  /** `token`: the stampede lock was taken under it, and the value will be stored; none: the call runs uncached */
  | { readonly _tag: "Run"; readonly token: string | undefined }

/** What one computation gives all the callers that share it. */
interface Outcome {
  readonly value: unknown
  /** the value's bytes, from which joiners restore values of their own */
  readonly snapshot: Snapshot | undefined
  readonly result: "hit" | "miss" | "bypass"
}

const uncached: Decision = { _tag: "Run", token: undefined }

/** Bad entries are dropped and looked up again this many times before the call runs uncached. */
const badEntryRetries = 1

/** @internal */
export const make = Effect.fnUntraced(function*(options: CacheConfig.Options) {
  const config = yield* CacheConfig.resolve(options, "Cache.make")
  const metadata = yield* MetadataStore
  const blobs = yield* BlobStore
  const serializer = yield* Serializer
  const scope = yield* Effect.scope
  const metrics = CacheMetrics.instruments(config.name)
  const waitMs = Duration.toMillis(config.stampedeLockTtl)
  const guard = fence.make(config, metrics)
  const { fenced, report, withMetadataDeadline } = guard

  // Closing runs these finalizers in the reverse order of their registration:
  // 1. `closing`: calls made from now on run uncached;
  // 2. the flight scope: computations in flight are interrupted (their callers get the interruption);
  // 3. drain: pending writes get `shutdownTimeout` to finish (the rest are counted as abandoned);
  // 4. the writes' FiberSet: what the drain left is interrupted;
  // 5. every stampede lock still held is released, so a restarted process does not wait a lease for it;
  // 6. releases still running, then housekeeping (lock renewals, delayed deletions), are interrupted.
  const housekeeping = yield* FiberSet.make<unknown, unknown>()
  const releases = yield* FiberSet.make<unknown, unknown>()
  const lockSet = locks.make({ config, metadata, fence: guard, housekeeping, releases })
  yield* Effect.addFinalizer(() =>
    lockSet.releaseAll.pipe(Effect.timeoutOption(config.shutdownTimeout), Effect.interruptible, Effect.asVoid)
  )
  const writes = yield* FiberSet.make<void, never>()
  const storeId = yield* memoizeSuccess(
    Effect.filterOrFail(
      withMetadataDeadline("id", metadata.id),
      CacheKey.isStoreId,
      (id) =>
        new MetadataStoreError({
          reason: "Protocol",
          method: "id",
          description: `the store id ${JSON.stringify(id.slice(0, 80))} is not 8-64 characters of [A-Za-z0-9_-]`
        })
    )
  )
  const writer = yield* persistModule.make({
    config,
    metadata,
    blobs,
    serializer,
    metrics,
    fence: guard,
    storeId,
    writes,
    housekeeping
  })
  yield* Effect.addFinalizer(() => writer.drain)
  const flightScope = yield* Scope.fork(scope, ExecutionStrategy.sequential)
  const flights = singleFlight.make(flightScope)
  let closing = false
  yield* Effect.addFinalizer(() => Effect.sync(() => (closing = true)))

  // -- read ---------------------------------------------------------------------------------------------------------

  /** A record proves it belongs to the entry asked for: its hash, and the hash its object key carries. */
  const belongs = (plan: Plan, record: EntryRecord): boolean => {
    const parsed = CacheKey.parseObjectKey(record.objectKey)
    return record.hash === plan.hash && record.namespace === plan.namespace && parsed !== undefined &&
      parsed.complete && parsed.hash === plan.hash && parsed.namespace === plan.namespace
  }

  const read = (plan: Plan, record: EntryRecord): Effect.Effect<Decision, BlobStoreError | SerializationError> =>
    guard.withBlobDeadline("get", record.objectKey, blobs.get(record.objectKey), record.storedSize).pipe(
      Effect.flatMap((bytes): Effect.Effect<Decision, BlobStoreError | SerializationError> =>
        Option.isNone(bytes)
          ? new BlobStoreError({
            reason: "Protocol",
            method: "get",
            key: record.objectKey,
            description: "the entry's object does not exist (deleted, or lost)"
          })
          : Metric.incrementBy(metrics.bytesRead, bytes.value.length).pipe(
            Effect.zipRight(serializer.unseal(bytes.value, { ...record, schema: plan.schema })),
            Effect.flatMap((snapshot) =>
              Effect.map(
                // no copy: the first caller owns the decompressed bytes; joiners restore from a copy (`compute`)
                serializer.restore(snapshot, { schema: plan.schema, reuse: true }),
                (value): Decision => ({ _tag: "Hit", value, snapshot })
              )
            )
          )
      )
    )

  /**
   * Drop a provably bad entry: the record, only if it still names the object judged bad (a record written meanwhile
   * survives), then that object, unless it belongs to another entry (a record copied from another key). True when
   * this call removed the record.
   */
  const drop = (plan: Plan, record: EntryRecord, deleteObject: boolean): Effect.Effect<boolean> =>
    fenced(
      "drop",
      "the bad entry stays until its TTL or until it is replaced",
      withMetadataDeadline("removeIf", metadata.removeIf(plan.namespace, plan.hash, record.objectKey)).pipe(
        Effect.tap((removed) =>
          removed && deleteObject ? writer.deleteObjects("drop", [record.objectKey]) : Effect.void
        )
      ),
      () => false
    )

  // -- decide -------------------------------------------------------------------------------------------------------

  const decide = (plan: Plan): Effect.Effect<Decision> => {
    const token = randomId()

    // A provably bad entry (not its key's, its object gone, its bytes failing the checksum or not decoding) is
    // dropped and looked up again, which takes the lock to write it anew. A store that is slow or down proves nothing
    // about the entry: it stays, and the call bypasses the cache rather than add a delete and a rewrite to a store
    // that is already struggling.
    const onHit = (
      record: EntryRecord,
      retries: number,
      again: Effect.Effect<Decision, unknown>
    ): Effect.Effect<Decision, unknown> => {
      if (!belongs(plan, record)) {
        return report(
          "read",
          "the record belongs to another entry: it is dropped and the effect runs",
          Cause.fail(
            new BlobStoreError({
              reason: "Protocol",
              method: "get",
              key: record.objectKey,
              description: `the record found under ${plan.hash.slice(0, 12)}… names ${record.objectKey}`
            })
          )
        ).pipe(
          Effect.zipRight(drop(plan, record, false)),
          Effect.zipRight(retries > 0 ? again : Effect.succeed(uncached))
        )
      }
      return read(plan, record).pipe(
        Effect.catchAllCause((cause): Effect.Effect<Decision, unknown> => {
          if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
          const failure = Option.getOrUndefined(Cause.failureOption(cause))
          // a format this process does not know proves nothing against the entry either: another process, with the
          // codec or a newer s3cache, reads it (a rolling deploy must not have old processes delete new entries)
          const badEntry = failure !== undefined &&
            (failure._tag === "SerializationError"
              ? failure.reason !== "UnsupportedFormat"
              : failure.reason === "Protocol")
          if (!badEntry) {
            return Effect.as(report("read", "the effect runs uncached; the entry is kept", cause), uncached)
          }
          const missing = failure._tag === "BlobStoreError"
          return Effect.flatMap(drop(plan, record, true), (removed) =>
            // An object missing under a record that was replaced or removed meanwhile is a race with a writer or an
            // invalidation, not damage: look again without a warning.
            (missing && !removed
              ? Effect.logDebug("s3cache: the entry changed while it was read; looking it up again")
              : report("read", "the entry is dropped and the effect runs", cause)).pipe(
                Effect.zipRight(retries > 0 ? again : Effect.succeed(uncached))
              ))
        })
      )
    }

    const loop = (deadline: number, attempt: number, retries: number): Effect.Effect<Decision, unknown> =>
      Effect.flatMap(lockSet.lookup(plan, token), (result) => {
        switch (result._tag) {
          case "Hit":
            return onHit(result.record, retries, Effect.suspend(() => loop(deadline, attempt, retries - 1)))
          case "Acquired":
            return Effect.succeed<Decision>({ _tag: "Run", token })
          case "Busy":
            return Effect.flatMap(Clock.currentTimeMillis, (now) =>
              now >= deadline
                ? Effect.as(
                  Effect.logWarning(
                    "s3cache: waited stampedeLockTtl for another process's result; running the effect uncached"
                  ),
                  uncached
                )
                : Effect.zipRight(
                  Effect.sleep(pollDelay(attempt, deadline - now)),
                  loop(deadline, attempt + 1, retries)
                ))
        }
      })

    return Effect.flatMap(Clock.currentTimeMillis, (now) => loop(now + waitMs, 0, badEntryRetries)).pipe(
      (effect) => fenced("lookup", "the effect runs uncached", effect, () => uncached),
      Effect.tap((decision) =>
        decision._tag === "Run" && decision.token === undefined ? Metric.increment(metrics.bypassed) : Effect.void
      )
    )
  }

  // -- the computation all concurrent callers of one key share -------------------------------------------------------

  /** The value's bytes, for the write and for joiners; on failure, why not. */
  const snapshotOf = (plan: Plan, value: unknown) =>
    Effect.either(serializer.snapshot(value, { format: plan.format, schema: plan.schema }))

  const completeMiss = (
    plan: Plan,
    lease: locks.Lease | undefined,
    value: unknown,
    shared: () => boolean
  ): Effect.Effect<Outcome> =>
    Effect.gen(function*() {
      if (lease === undefined || writer.full()) {
        // nothing to store (uncached, or the write queue is full): a snapshot only for callers that share the value
        const snapshot = shared() ? Either.getOrUndefined(yield* snapshotOf(plan, value)) : undefined
        if (lease !== undefined) yield* writer.dropped(lease)
        return { value, snapshot, result: lease === undefined ? "bypass" : "miss" }
      }
      const snapshot = yield* snapshotOf(plan, value)
      if (Either.isLeft(snapshot)) {
        yield* Metric.increment(metrics.writeFailures)
        yield* report("persist", "the value was returned but not stored", Cause.fail(snapshot.left))
        yield* lease.end(false)
        return { value, snapshot: undefined, result: "miss" }
      }
      yield* writer.persist(plan, snapshot.right, lease)
      return { value, snapshot: snapshot.right, result: "miss" }
    })

  const compute = <A, E, R>(plan: Plan, effect: Effect.Effect<A, E, R>, shared: () => boolean) =>
    // nanoseconds: a hit takes a fraction of a millisecond, which whole milliseconds would record as 0
    Effect.flatMap(Clock.currentTimeNanos, (start) => {
      const elapsed = Effect.map(Clock.currentTimeNanos, (now) => Number(now - start) / 1e6)
      return Effect.flatMap(decide(plan), (decision): Effect.Effect<Outcome, E, R> => {
        if (decision._tag === "Hit") {
          return Effect.flatMap(elapsed, (ms) =>
            Metric.increment(metrics.hits).pipe(
              Effect.zipRight(Metric.update(metrics.hitLatency, ms)),
              Effect.zipRight(Effect.sync((): Outcome => ({
                value: decision.value,
                // the value may share the snapshot's memory (a byte array, an Arrow table): callers that joined
                // restore from a copy taken now, before the first caller can change the value; alone, no copy
                snapshot: shared()
                  ? { format: decision.snapshot.format, bytes: new Uint8Array(decision.snapshot.bytes) }
                  : undefined,
                result: "hit"
              })))
            ))
        }
        const { token } = decision
        // From taking the lease to the queued write nothing may interrupt but the effect: a lease left running would
        // renew its lock until the cache closes. (Interrupted before this point, the lock lapses after one lease,
        // and closing the cache releases it.)
        return Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(
            token === undefined ? Effect.succeed(undefined) : lockSet.hold(plan, token),
            (lease) =>
              Effect.flatMap(Effect.exit(restore(effect)), (exit) => {
                if (Exit.isFailure(exit)) {
                  // the effect failed or was interrupted: nothing to store; let waiting processes stop waiting
                  return Effect.zipRight(
                    lease === undefined ? Effect.void : lease.end(false),
                    Effect.failCause(exit.cause)
                  )
                }
                return Effect.flatMap(elapsed, (ms) =>
                  Metric.increment(metrics.misses).pipe(
                    Effect.zipRight(Metric.update(metrics.missLatency, ms)),
                    Effect.zipRight(completeMiss(plan, lease, exit.value, shared))
                  ))
              })
          )
        )
      })
    })

  /**
   * What one caller gets. The caller that started the computation gets its value; a caller that joined gets a value
   * restored from the snapshot, or, where there is none (the format cannot encode the value) or its own call cannot
   * read it (another schema), runs its own effect uncached: never the same object as another caller, never a value
   * typed as something it is not.
   */
  const valueFor = <A, E, R>(
    plan: Plan,
    outcome: Outcome,
    joined: boolean,
    effect: Effect.Effect<A, E, R>
  ): Effect.Effect<A, E, R> => {
    if (!joined) return Effect.succeed(outcome.value as A)
    const own = Metric.increment(metrics.bypassed).pipe(
      Effect.zipRight(Metric.increment(metrics.misses)),
      Effect.zipRight(effect)
    )
    if (outcome.snapshot === undefined) {
      return Effect.zipRight(Effect.logDebug("s3cache: no copy of the shared value to give; running the effect"), own)
    }
    return serializer.restore(outcome.snapshot, { schema: plan.schema }).pipe(
      Effect.matchEffect({
        onSuccess: (value) => Effect.succeed(value as A),
        onFailure: (error) =>
          Effect.zipRight(
            Effect.logDebug(
              "s3cache: this call cannot read the shared value (another schema?); running the effect",
              error
            ),
            own
          )
      })
    )
  }

  const cached: Service["cached"] = <A, E, R>(effect: Effect.Effect<A, E, R>, options: unknown) =>
    Effect.suspend(() => {
      if (closing) {
        // the cache is closing: nothing may be left behind, so the effect runs uncached
        return Metric.increment(metrics.bypassed).pipe(
          Effect.zipRight(Metric.increment(metrics.misses)),
          Effect.zipRight(effect)
        )
      }
      return Either.match(plans.make(config, options, "Cache.cached"), {
        onLeft: (error) =>
          report("cached", "the effect runs uncached", Cause.fail(error)).pipe(
            Effect.zipRight(Metric.increment(metrics.bypassed)),
            Effect.zipRight(Metric.increment(metrics.misses)),
            Effect.zipRight(effect)
          ),
        onRight: (plan) =>
          flights.run(
            plan.hash,
            plan.namespace,
            (shared) => compute(plan, effect, shared),
            Metric.increment(metrics.coalesced)
          ).pipe(
            Effect.flatMap(({ joined, value: outcome }) =>
              Effect.annotateCurrentSpan("s3cache.result", joined ? "coalesced" : outcome.result).pipe(
                Effect.zipRight(valueFor(plan, outcome, joined, effect))
              )
            ),
            Effect.withSpan("Cache.cached", {
              attributes: { "s3cache.namespace": plan.namespace, "s3cache.hash": plan.hash }
            })
          ) as Effect.Effect<A, E, R>
      })
    })

  const service: Service = {
    config,
    cached,
    ...maintenance.make({
      config,
      metadata,
      blobs,
      storeId,
      flights,
      fence: guard,
      deleteObjects: writer.deleteObjects
    }),
    stats: CacheMetrics.stats(metrics),
    // a failed write releases its lock after it: wait for that too, so a flushed cache holds no stale lock
    flush: Effect.zipRight(writer.flush, Effect.suspend(() => Fiber.awaitAll(Array.from(releases)))).pipe(
      Effect.asVoid
    ),
    inFlight: Effect.sync(flights.size)
  }
  return service
})

/** Delay before asking again whether another process's result is there: fast at first, then every ~250 ms. */
const pollDelay = (attempt: number, remainingMs: number): Duration.Duration => {
  const base = Math.min(10 * 2 ** attempt, 250)
  return Duration.millis(Math.max(1, Math.min(remainingMs, base / 2 + Math.random() * base / 2)))
}

/** `effect`, run once successfully and remembered; a failure is not remembered, so the next call tries again. */
const memoizeSuccess = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<Effect.Effect<A, E>> =>
  Effect.sync(() => {
    let value: Option.Option<A> = Option.none()
    return Effect.suspend(() =>
      Option.isSome(value)
        ? Effect.succeed(value.value)
        : Effect.tap(effect, (a) => Effect.sync(() => (value = Option.some(a))))
    )
  })
