/**
 * The hits that need no computation of their own: the in-process tier (L1), then the store's read in one promise step
 * (`MetadataStore.tryHit`), each decoded in plain code where the serializer can. A hit on Redis then costs the
 * caller's fiber one asynchronous step, where the full path (single flight, lookup under the lock bookkeeping,
 * deadline, fence) costs dozens of Effect operations.
 *
 * What these cannot answer goes on to the shared tier's computation (`orElse`), with what the read found, if anything:
 * nothing there (the lookup takes the lock), a computation of the key already in flight (the call joins it), a record
 * to judge (another key's, a payload that fails its checksum: dropped and reported there), a payload that needs the
 * Effect path (an object in the blob store, compressed, a schema or a codec), a read that failed (reported there as
 * the lookup's failure, and the call runs uncached, without waiting for the store twice). Nothing here reports or
 * counts a failure: the full path does, once.
 *
 * @since 0.2.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type * as CacheConfig from "../CacheConfig.js"
import { SerializationError } from "../CacheError.js"
import type * as CacheMetrics from "../CacheMetrics.js"
import * as CacheTracing from "../CacheTracing.js"
import type { EntryRecord, MetadataStore } from "../MetadataStore.js"
import type { Serializer } from "../Serializer.js"
import * as Breaker from "./breaker.js"
import type * as decisions from "./decide.js"
import { FiberRef } from "./effect3.js"
import { liveClock } from "./fence.js"
import { type Plan, refreshPoint } from "./plan.js"
import { nowOf } from "./serializer.js"
import type * as Tier from "./tier.js"

/** @internal */
export interface Dependencies {
  readonly config: CacheConfig.Resolved
  readonly metadata: MetadataStore["Type"]
  readonly serializer: Serializer["Type"]
  readonly metrics: CacheMetrics.Instruments
  readonly tier: Tier.Tier | undefined
  readonly hitNow: decisions.Decisions["hitNow"]
  /** whether a computation of `hash` is in flight in this process (a call would rather join it) */
  readonly inFlight: (hash: string) => boolean
  /** the metadata store's circuit breaker: the one-step read runs only while it is closed, and reports to it */
  readonly breaker: Breaker.Breaker
}

/** @internal */
export interface Hits {
  /**
   * The call answered by the in-process tier or by the store's one-step read; `orElse` (the shared tier's
   * computation) for the rest, with the record found. `fiber`: the caller's, which runs this; `traced`: the call has
   * a span of its own to annotate.
   */
  readonly lookUp: <A, E, R>(
    plan: Plan,
    fiber: Fiber.RuntimeFiber<unknown, unknown>,
    traced: boolean,
    orElse: (prior: decisions.Prior | undefined) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E, R>
  /** keep a hit read from the shared tier in the in-process one (`startedAt`, ms: when the read began) */
  readonly keep: (plan: Plan, hit: decisions.Hit, startedAt: number, generation: number) => void
}

/** @internal */
export const make = (
  { breaker, config, hitNow, inFlight, metadata, metrics, serializer, tier }: Dependencies
): Hits => {
  const restoreNow = nowOf(serializer)?.restore
  // Only from a store that honours deadlines: the promise is not watched, so it must settle by its deadline; and a
  // store that does not is often a wrapper of another (a test's, an instrumented one), whose `tryHit` would skip the
  // `lookup` it wraps.
  const tryHit = metadata.honoursDeadline === true ? metadata.tryHit : undefined
  const metadataTimeoutMs = Duration.toMillis(config.metadataTimeout)

  const keep: Hits["keep"] = (plan, hit, startedAt, generation) => {
    // the tier would refuse it: spare the copy (of up to the largest payloads)
    if (tier === undefined || plan.l1TtlMs <= 0 || hit.snapshot.bytes.byteLength >= config.l1MaxBytes) return
    tier.set(plan.namespace, plan.hash, {
      // a copy: the value may own the snapshot's bytes
      snapshot: { format: hit.snapshot.format, bytes: new Uint8Array(hit.snapshot.bytes) },
      value: config.l1ShareValues ? hit.value : undefined,
      storedAt: startedAt,
      expiresAt: Math.min(startedAt + plan.l1TtlMs, hit.expiresAt)
    }, generation)
  }

  /** Count the hit (and, from the shared tier, its latency since `startedAt`, ns) and hand out the value. */
  const done = <A>(
    fiber: Fiber.RuntimeFiber<unknown, unknown>,
    traced: boolean,
    value: unknown,
    startedAt: bigint | undefined
  ): Effect.Effect<A> => {
    const labels = fiber.getFiberRef(FiberRef.currentMetricLabels)
    metrics.hits.unsafeUpdate(1, labels)
    if (startedAt === undefined) metrics.l1Hits.unsafeUpdate(1, labels)
    else {
      const now = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeNanos()
      metrics.hitLatency.unsafeUpdate(Number(now - startedAt) / 1e6, labels)
    }
    return traced
      ? Effect.as(Effect.annotateCurrentSpan("s3cache.result", startedAt === undefined ? "l1" : "hit"), value as A)
      : Effect.succeed(value as A)
  }

  /**
   * A value of its own decoded from the kept bytes, or (`l1ShareValues`) the kept value itself. A value this call
   * cannot read (another schema) is dropped and looked up in the shared tier.
   */
  const fromTier = <A, E, R>(
    plan: Plan,
    entry: Tier.Entry,
    fiber: Fiber.RuntimeFiber<unknown, unknown>,
    traced: boolean,
    orElse: (prior: decisions.Prior | undefined) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E, R> => {
    const unreadable = () => {
      tier!.drop(plan.namespace, [plan.hash])
      return orElse(undefined)
    }
    if (config.l1ShareValues) return done(fiber, traced, entry.value, undefined)
    const restored = plan.schema === undefined ? restoreNow?.(entry.snapshot) : undefined
    if (restored === undefined) {
      return Effect.matchEffect(serializer.restore(entry.snapshot, { schema: plan.schema }), {
        onFailure: unreadable,
        onSuccess: (value) => done<A>(fiber, traced, value, undefined)
      })
    }
    return restored instanceof SerializationError ? unreadable() : done(fiber, traced, restored.value, undefined)
  }

  /** The store's one-step read, where it offers one and the call would not rather join a computation in flight. */
  const fromStore = <A, E, R>(
    plan: Plan,
    fiber: Fiber.RuntimeFiber<unknown, unknown>,
    traced: boolean,
    orElse: (prior: decisions.Prior | undefined) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E, R> => {
    // an open (or probing) breaker: the full path, whose deadline asks the breaker
    if (tryHit === undefined || inFlight(plan.hash) || !breaker.closed()) return orElse(undefined)
    const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
    // a promise keeps its deadline by the wall clock: under another clock (TestClock), the full path's deadline
    if (clock !== liveClock) return orElse(undefined)
    // inner spans: the full path, whose store calls and serializer steps make them
    if (Context.get(fiber.getFiberRef(FiberRef.currentContext), CacheTracing.InnerSpans)) return orElse(undefined)
    const startedAt = clock.unsafeCurrentTimeNanos()
    const startedAtMs = Number(startedAt / 1_000_000n)
    // what the tier dropped after this point (an invalidation) must not come back from this read, here or in the
    // full path that judges what it found
    const read: decisions.ReadStart = { startedAt, generation: tier?.generation() ?? 0 }
    let pending: Promise<EntryRecord | undefined> | undefined
    try {
      pending = tryHit(plan.namespace, plan.hash, { now: startedAtMs, deadline: Date.now() + metadataTimeoutMs })
    } catch (defect) {
      breaker.settled(true, Date.now())
      return orElse({ _tag: "Failed", cause: Cause.die(defect), read })
    }
    if (pending === undefined) return orElse(undefined)
    const answer = pending
    return Effect.async<A, E, R>((resume) => {
      let left = false
      const settle = (record: EntryRecord | undefined): Effect.Effect<A, E, R> => {
        if (record === undefined) return orElse(undefined)
        // past its TTL (stale, or expired by this clock) or due for a refresh: the full path decides
        if (startedAtMs >= refreshPoint(plan, record.createdAt, record.ttlMs)) {
          return orElse({ _tag: "Found", record, read })
        }
        const hit = hitNow(plan, record, false)
        if (hit === undefined || hit instanceof SerializationError) return orElse({ _tag: "Found", record, read })
        keep(plan, hit, startedAtMs, read.generation)
        return done(fiber, traced, hit.value, startedAt)
      }
      // whatever happens here, the caller is resumed exactly once (a throw would leave it waiting for ever)
      const next = (step: () => Effect.Effect<A, E, R>) => {
        if (left) return
        let effect: Effect.Effect<A, E, R>
        try {
          effect = step()
        } catch (defect) {
          effect = Effect.die(defect)
        }
        resume(effect)
      }
      answer.then(
        (record) => {
          breaker.settled(false, Date.now())
          next(() => {
            try {
              return settle(record)
            } catch (defect) {
              return orElse({ _tag: "Failed", cause: Cause.die(defect), read })
            }
          })
        },
        // the lookup's failure: reported as such, without asking the store a second time
        (error: unknown) => {
          const cause = Cause.fail(error)
          breaker.settled(Breaker.countsAgainst(cause), Date.now())
          next(() => orElse({ _tag: "Failed", cause, read }))
        }
      )
      // the caller left: the read settles in the background, and nothing comes of it (a read takes no lock)
      return Effect.sync(() => {
        left = true
      })
    })
  }

  const lookUp: Hits["lookUp"] = (plan, fiber, traced, orElse) => {
    if (tier !== undefined) {
      const now = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
      const entry = tier.get(plan.namespace, plan.hash, now)
      if (entry !== undefined) return fromTier(plan, entry, fiber, traced, orElse)
    }
    return fromStore(plan, fiber, traced, orElse)
  }

  return { lookUp, keep }
}
