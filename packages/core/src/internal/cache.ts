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
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import { BlobStore } from "../BlobStore.js"
import type { Service } from "../Cache.js"
import { CacheBus } from "../CacheBus.js"
import * as CacheConfig from "../CacheConfig.js"
import { MetadataStoreError } from "../CacheError.js"
import * as CacheKey from "../CacheKey.js"
import * as CacheMetrics from "../CacheMetrics.js"
import * as CacheTracing from "../CacheTracing.js"
import { type EntryRecord, MetadataStore } from "../MetadataStore.js"
import { Serializer, type Snapshot } from "../Serializer.js"
import * as coherenceModule from "./coherence.js"
import * as decisions from "./decide.js"
import { Either, ExecutionStrategy, FiberRef } from "./effect3.js"
import * as fence from "./fence.js"
import * as hitModule from "./hit.js"
import * as locks from "./locks.js"
import * as maintenance from "./maintenance.js"
import * as persistModule from "./persist.js"
import * as plans from "./plan.js"
import type { Plan } from "./plan.js"
import * as refreshModule from "./refresh.js"
import * as singleFlight from "./singleFlight.js"
import * as tracing from "./tracing.js"

/** What one computation gives all the callers that share it. */
interface Outcome {
  readonly value: unknown
  /** the value's bytes, from which joiners restore values of their own */
  readonly snapshot: Snapshot | undefined
  readonly result: "hit" | "stale" | "miss" | "bypass"
}

/** @internal */
export const make = Effect.fnUntraced(function*(options: CacheConfig.Options) {
  const config = yield* CacheConfig.resolve(options, "Cache.make")
  const metadata = yield* MetadataStore
  const blobs = yield* BlobStore
  const serializer = yield* Serializer
  const scope = yield* Effect.scope
  const metrics = CacheMetrics.instruments(config.name)
  const guard = fence.make(config, metrics, { metadata, blobs })
  const { report, withMetadataDeadline } = guard

  // Closing runs these finalizers in the reverse order of their registration:
  // 1. `closing`: calls made from now on run uncached;
  // 2. the flight scope: computations in flight are interrupted (their callers get the interruption);
  // 3. drain: pending writes get `shutdownTimeout` to finish (the rest are counted as abandoned);
  // 4. the writes' FiberSet: what the drain left is interrupted;
  // 5. every stampede lock still held is released, so a restarted process does not wait a lease for it;
  // 6. releases still running, then housekeeping (lock renewals, delayed deletions), are interrupted.
  const housekeeping = yield* FiberSet.make<unknown, unknown>()
  const releases = yield* FiberSet.make<unknown, unknown>()
  // the lock renewal loop runs in the layer's own context, not in that of the call that happened to start it
  const inLayer = yield* FiberSet.runtime(housekeeping)<never>()
  const lockSet = locks.make({ config, metadata, fence: guard, housekeeping, releases, inLayer })
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
  const coherence = yield* coherenceModule.make(config, yield* Effect.serviceOption(CacheBus))
  const { tier } = coherence
  const writer = yield* persistModule.make({
    config,
    metadata,
    blobs,
    serializer,
    metrics,
    fence: guard,
    storeId,
    writes,
    housekeeping,
    committed: (plan, snapshot, value, record, since) =>
      coherence.written(plan.namespace, plan.hash, snapshot, config.l1ShareValues ? value : undefined, {
        ttlMs: plan.l1TtlMs,
        expiresAt: plans.refreshPoint(plan, record.createdAt, record.ttlMs),
        since
      }),
    generation: () => tier?.generation() ?? 0
  })
  yield* Effect.addFinalizer(() => writer.drain)
  const flightScope = yield* Scope.fork(scope, ExecutionStrategy.sequential)
  const flights = singleFlight.make(flightScope)
  // closed before the flights: a refresh whose effect is still running is interrupted, one whose write is queued is
  // drained with the writes
  const refreshSet = yield* FiberSet.make<unknown, unknown>()
  const refresher = refreshModule.make({
    metrics,
    fence: guard,
    locks: lockSet,
    set: refreshSet,
    store: (plan, lease, value) => Effect.asVoid(completeMiss(plan, lease, value, () => false)),
    readStale: (plan, record) => readStale(plan, record),
    unchanged: (plan, record) => unchanged(plan, record)
  })
  let closing = false
  yield* Effect.addFinalizer(() => Effect.sync(() => (closing = true)))

  const { decide, hitNow, readStale, unchanged } = decisions.make({
    config,
    metadata,
    blobs,
    serializer,
    metrics,
    fence: guard,
    locks: lockSet,
    deleteObjects: writer.deleteObjects,
    wait: coherence.wait,
    inBackoff: refresher.inBackoff
  })
  const hits = hitModule.make({
    config,
    metadata,
    serializer,
    metrics,
    tier,
    hitNow,
    inFlight: (hash) => flights.has(hash),
    breaker: guard.breakers.metadata
  })

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
      yield* writer.persist(plan, snapshot.right, value, lease)
      return { value, snapshot: snapshot.right, result: "miss" }
    })

  /**
   * The first phase, in the caller's fiber: the lookup and, on a hit, the read. A miss continues in the second phase
   * (`run`), which single flight forks so that the callers that share it do not depend on the first one staying.
   */
  const start = <A, E, R>(plan: Plan, effect: Effect.Effect<A, E, R>, prior: decisions.Prior | undefined) =>
  (
    shared: () => boolean
  ) =>
    // nanoseconds: a hit takes a fraction of a millisecond, which whole milliseconds would record as 0
    Effect.withFiberRuntime<singleFlight.Phase<Outcome, E, R>, never, R>((fiber) => {
      // from the read before the lookup, if there was one: its record is what this lookup judges
      const startedAt = prior?.read.startedAt ?? nanosOf(fiber)
      // what the tier dropped after this point (an invalidation) must not come back from this read
      const generation = prior?.read.generation ?? tier?.generation() ?? 0
      const innerSpans = Context.get(fiber.getFiberRef(FiberRef.currentContext), CacheTracing.InnerSpans)
      return Effect.flatMap(decide(plan, innerSpans, Number(startedAt / 1_000_000n), prior), (decision) => {
        // the clock and the instruments in this one step, which runs on every call (the first phase runs in the
        // caller's fiber: `fiber` is still the one that runs this)
        const labels = fiber.getFiberRef(FiberRef.currentMetricLabels)
        if (decision._tag === "Run") {
          if (decision.token === undefined) metrics.bypassed.unsafeUpdate(1, labels)
          return Effect.succeed<singleFlight.Phase<Outcome, E, R>>({
            _tag: "Continue",
            effect: run(plan, decision.token, effect, shared, startedAt, decision.fallback)
          })
        }
        // a stale value is not kept in the in-process tier: it is served only to calls that accept it
        if (!decision.stale) hits.keep(plan, decision, Number(startedAt / 1_000_000n), generation)
        else metrics.staleServed.unsafeUpdate(1, labels)
        metrics.hits.unsafeUpdate(1, labels)
        metrics.hitLatency.unsafeUpdate(Number(nanosOf(fiber) - startedAt) / 1e6, labels)
        const done = Effect.succeed<singleFlight.Phase<Outcome, E, R>>({
          _tag: "Done",
          value: hitOutcome(decision, shared())
        })
        return decision.refresh && decision.record !== undefined
          ? Effect.zipRight(refresher.background(plan, decision.record, effect), done)
          : done
      })
    })

  /**
   * What the callers of a hit get: the value, and for callers that joined, a copy of its bytes taken now, before the
   * first caller can change the value (it may share the snapshot's memory: a byte array, an Arrow table); alone, no
   * copy.
   */
  const hitOutcome = (hit: decisions.Hit, shared: boolean): Outcome => ({
    value: hit.value,
    snapshot: shared ? { format: hit.snapshot.format, bytes: new Uint8Array(hit.snapshot.bytes) } : undefined,
    result: hit.stale ? "stale" : "hit"
  })

  /** The second phase: the user's effect under the stampede lock (`token`, if taken), then the write of its value. */
  const run = <A, E, R>(
    plan: Plan,
    token: string | undefined,
    effect: Effect.Effect<A, E, R>,
    shared: () => boolean,
    startedAt: bigint,
    fallback: EntryRecord | undefined
  ): Effect.Effect<Outcome, E, R> =>
    // From taking the lease to the queued write nothing may interrupt but the effect: a lease left running would
    // renew its lock until the cache closes. (Interrupted before this point, the lock lapses after one lease, and
    // closing the cache releases it.)
    Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(
        token === undefined ? Effect.succeed(undefined) : lockSet.hold(plan, token),
        (lease) => {
          const missed = (outcome: Outcome) =>
            Effect.flatMap(Clock.currentTimeNanos, (now) =>
              Metric.increment(metrics.misses).pipe(
                Effect.zipRight(Metric.update(metrics.missLatency, Number(now - startedAt) / 1e6)),
                Effect.as(outcome)
              ))
          // the effect failed or was interrupted: nothing to store; let waiting processes stop waiting
          const end = lease === undefined ? Effect.void : lease.end(false)
          if (fallback === undefined) {
            return Effect.flatMap(Effect.exit(restore(effect)), (exit) =>
              Exit.isFailure(exit)
                ? Effect.zipRight(end, Effect.failCause(exit.cause))
                : Effect.flatMap(completeMiss(plan, lease, exit.value, shared), missed))
          }
          // a foreground refresh, a stale entry standing by for a failure (`failSafe`) or a slow effect (`softTimeout`)
          return refresher.foreground({
            plan,
            fallback,
            computed: Effect.flatMap(
              Effect.exit(restore(effect)),
              (exit): Effect.Effect<Exit.Exit<Outcome, E>> =>
                Exit.isFailure(exit)
                  ? Effect.as(end, Exit.failCause(exit.cause))
                  : Effect.map(completeMiss(plan, lease, exit.value, shared), Exit.succeed)
            ),
            end,
            missed,
            stale: (hit) => hitOutcome(hit, shared()),
            restore
          })
        }
      )
    )

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
    Effect.withFiberRuntime<A, E, R>((fiber) => {
      if (closing) {
        // the cache is closing: nothing may be left behind, so the effect runs uncached
        return Metric.increment(metrics.bypassed).pipe(
          Effect.zipRight(Metric.increment(metrics.misses)),
          Effect.zipRight(effect)
        )
      }
      const plan = plans.make(config, options, "Cache.cached")
      if (Either.isLeft(plan)) {
        return report("cached", "the effect runs uncached", Cause.fail(plan.left)).pipe(
          Effect.zipRight(Metric.increment(metrics.bypassed)),
          Effect.zipRight(Metric.increment(metrics.misses)),
          Effect.zipRight(effect)
        )
      }
      // Effect's built-in tracer exports nothing: a span there would cost each call ~5 µs for nobody (and an
      // annotation without a span of ours would land on the caller's span, or fail with a stack trace)
      const lookUp = (traced: boolean) =>
        hits.lookUp(plan.right, fiber, traced, (prior) => shared(plan.right, effect, traced, prior))
      return tracing.isTraced(fiber)
        ? Effect.withSpan(Effect.suspend(() => lookUp(true)), "Cache.cached", {
          attributes: { "s3cache.namespace": plan.right.namespace, "s3cache.hash": plan.right.hash },
          captureStackTrace: false
        })
        : lookUp(false)
    })

  /**
   * The shared tier: the computation of the key in this process, joined or started (`prior`: what a read before the
   * lookup found, which takes the first lookup's place).
   */
  const shared = <A, E, R>(
    plan: Plan,
    effect: Effect.Effect<A, E, R>,
    traced: boolean,
    prior: decisions.Prior | undefined
  ): Effect.Effect<A, E, R> =>
    flights.run(plan.hash, plan.namespace, start(plan, effect, prior), Metric.increment(metrics.coalesced)).pipe(
      Effect.flatMap(({ joined, value: outcome }) =>
        traced
          ? Effect.annotateCurrentSpan("s3cache.result", joined ? "coalesced" : outcome.result).pipe(
            Effect.zipRight(valueFor(plan, outcome, joined, effect))
          )
          : valueFor(plan, outcome, joined, effect)
      )
    )

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
      deleteObjects: writer.deleteObjects,
      coherence
    }),
    stats: CacheMetrics.stats(metrics),
    // a failed write releases its lock after it: wait for that too, so a flushed cache holds no stale lock
    // refreshes first: a refresh under way queues its write when its effect is done
    flush: Effect.suspend(() => Fiber.awaitAll(Array.from(refreshSet))).pipe(
      Effect.zipRight(writer.flush),
      Effect.zipRight(Effect.suspend(() => Fiber.awaitAll(Array.from(releases)))),
      Effect.asVoid
    ),
    inFlight: Effect.sync(flights.size)
  }
  return service
})

/** The fiber's clock, ns: read from the fiber in the step at hand, rather than in a step of its own. */
const nanosOf = (fiber: Fiber.RuntimeFiber<unknown, unknown>): bigint =>
  Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeNanos()

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
