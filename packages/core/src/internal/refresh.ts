/**
 * Refreshes of entries that are stale (past their TTL, within the call's grace) or due (`refreshAhead`): the effect
 * runs under the key's stampede lock, one refresh per key in this process and, through the lock, across processes;
 * its value replaces the entry only when it succeeds. A failed refresh leaves the entry as it is, and the key is not
 * refreshed again for `graceBackoff`: calls get the stale value meanwhile.
 *
 * @since 0.3.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as CacheMetrics from "../CacheMetrics.js"
import type { EntryRecord } from "../MetadataStore.js"
import type { Hit } from "./decide.js"
import { Either } from "./effect3.js"
import type { Fence } from "./fence.js"
import type { Lease, Locks } from "./locks.js"
import type { Plan } from "./plan.js"
import { uniqueId } from "./random.js"

/**
 * A refresh in the foreground: the effect of a call that found a stale entry and took the key's lock, with the stale
 * entry standing by.
 *
 * @internal
 */
export interface Foreground<O, E, R> {
  readonly plan: Plan
  /** the stale entry's record, read only if it is to stand in */
  readonly fallback: EntryRecord
  /** the effect, then the write of its value: its exit, never a failure (the lease is ended on failure) */
  readonly computed: Effect.Effect<Exit.Exit<O, E>, never, R>
  /** the outcome of the effect's value, counted as the miss it is */
  readonly missed: (outcome: O) => Effect.Effect<O>
  /** the outcome of a stale entry standing in */
  readonly stale: (hit: Hit) => O
  /** undo the caller's uninterruptible region (the wait is interruptible: callers may leave) */
  readonly restore: <X, Y, Z>(effect: Effect.Effect<X, Y, Z>) => Effect.Effect<X, Y, Z>
}

/** @internal */
export interface Refreshes {
  /**
   * The effect's outcome, or the stale entry's: when the effect fails (and `failSafe` says the failure qualifies), or
   * when it has not answered within `softTimeout` (it then goes on in the layer's set and stores its value when it
   * is done). A failure counts against the key: `refreshFailures`, and `graceBackoff`.
   */
  readonly foreground: <O, E, R>(refresh: Foreground<O, E, R>) => Effect.Effect<O, E, R>
  /**
   * Refresh `plan`'s entry with `effect` in the background, unless a refresh of it is under way in this process or
   * its key is in `graceBackoff`. The fiber forks into the layer's set with the caller's context (the effect's `R`).
   */
  readonly background: <A, E, R>(plan: Plan, effect: Effect.Effect<A, E, R>) => Effect.Effect<void, never, R>
  /** whether the effect of `plan`'s key failed less than `graceBackoff` ago */
  readonly inBackoff: (plan: Plan, now: number) => boolean
  /**
   * a refresh's effect failed at `now`: counted, logged, and (`rest`) its key is not refreshed for `graceBackoff`
   */
  readonly failed: (plan: Plan, now: number, cause: Cause.Cause<unknown>, rest: boolean) => Effect.Effect<void>
}

/** @internal */
export interface Dependencies {
  readonly metrics: CacheMetrics.Instruments
  readonly fence: Fence
  readonly locks: Locks
  /** the background refreshes, owned by the layer: interrupted when it closes */
  readonly set: FiberSet.FiberSet<unknown, unknown>
  /** store the value under the lease (which it ends): the write of a miss */
  readonly store: (plan: Plan, lease: Lease, value: unknown) => Effect.Effect<void>
  /** the value of a stale entry, read when it is to stand in */
  readonly readStale: (plan: Plan, record: EntryRecord) => Effect.Effect<Hit, unknown>
}

/** @internal */
export const make = ({ fence, locks, metrics, readStale, set, store }: Dependencies): Refreshes => {
  const running = new Set<string>()
  // key → until when (ms) it is not refreshed; pruned of past ones when it grows
  const backoff = new Map<string, number>()
  let pruneAt = 1024
  const keyOf = (plan: Plan) => `${plan.namespace}\u0000${plan.hash}`

  const inBackoff: Refreshes["inBackoff"] = (plan, now) => {
    if (backoff.size === 0) return false
    const until = backoff.get(keyOf(plan))
    return until !== undefined && now < until
  }

  const failed: Refreshes["failed"] = (plan, now, cause, rest) =>
    Effect.suspend(() => {
      if (backoff.size >= pruneAt) {
        for (const [key, until] of backoff) if (until <= now) backoff.delete(key)
        pruneAt = Math.max(1024, backoff.size * 2)
      }
      if (rest && plan.policy.graceBackoffMs > 0) backoff.set(keyOf(plan), now + plan.policy.graceBackoffMs)
      return Metric.increment(metrics.refreshFailures).pipe(
        Effect.zipRight(Effect.logDebug(
          rest ? "s3cache: a refresh failed; the stale entry is served for graceBackoff" : "s3cache: a refresh failed",
          cause
        ))
      )
    })

  const background: Refreshes["background"] = <A, E, R>(plan: Plan, effect: Effect.Effect<A, E, R>) =>
    Effect.suspend(() => {
      const key = keyOf(plan)
      if (running.has(key)) return Effect.void
      running.add(key)
      const token = uniqueId()
      // From taking the lease to handing it to the write nothing may interrupt but the effect (see `run` in cache.ts)
      const refresh = Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.flatMap(
            fence.fenced("refresh", "the entry is not refreshed", locks.acquire(plan, token, now), () => false),
            (acquired) =>
              // another process holds the lock: it refreshes the entry
              !acquired ?
                Effect.void :
                Effect.flatMap(locks.hold(plan, token), (lease) =>
                  Metric.increment(metrics.refreshes).pipe(
                    Effect.zipRight(Effect.exit(restore(effect))),
                    Effect.flatMap((exit) => {
                      if (Exit.isSuccess(exit)) return store(plan, lease, exit.value)
                      return Effect.zipRight(
                        lease.end(false),
                        Cause.isInterruptedOnly(exit.cause)
                          ? Effect.void
                          : Effect.flatMap(
                            Clock.currentTimeMillis,
                            (now) => failed(plan, now, exit.cause, qualifies(plan, exit.cause))
                          )
                      )
                    })
                  ))
          )).pipe(Effect.ensuring(Effect.sync(() => running.delete(key))))
      )
      return Effect.asVoid(FiberSet.run(set, Effect.interruptible(refresh)))
    })

  /** Whether a failure of the effect lets a stale entry stand in for its value (`failSafe`); never an interruption. */
  const qualifies = (plan: Plan, cause: Cause.Cause<unknown>): boolean => {
    const predicate = plan.policy.failSafe
    if (predicate === undefined) return false
    try {
      return predicate(Cause.squash(cause)) === true
    } catch {
      return false
    }
  }

  /** The stale entry's outcome; `undefined` when it no longer reads back, and cannot stand in. */
  const standIn = <O>(plan: Plan, record: EntryRecord, stale: (hit: Hit) => O): Effect.Effect<O | undefined> =>
    Effect.flatMap(Effect.either(readStale(plan, record)), (read) =>
      Either.isLeft(read)
        ? Effect.as(
          Effect.logDebug("s3cache: the stale entry does not read back; it cannot stand in", read.left),
          undefined
        )
        : Metric.increment(metrics.hits).pipe(
          Effect.zipRight(Metric.increment(metrics.staleServed)),
          Effect.as(stale({ ...read.right, stale: true }))
        ))

  const foreground: Refreshes["foreground"] = <O, E, R>(
    { computed, fallback, missed, plan, restore, stale }: Foreground<O, E, R>
  ): Effect.Effect<O, E, R> => {
    const failedOver = (cause: Cause.Cause<E>): Effect.Effect<O, E> => {
      if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
      // a failure that fail-safe does not cover (a real "no") passes through, and the key does not rest
      const covered = qualifies(plan, cause)
      return Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.zipRight(
          failed(plan, now, cause, covered),
          covered
            ? Effect.flatMap(
              standIn(plan, fallback, stale),
              (outcome) => outcome === undefined ? Effect.failCause(cause) : Effect.succeed(outcome)
            )
            : Effect.failCause(cause)
        ))
    }
    const settled = (exit: Exit.Exit<O, E>) => Exit.isSuccess(exit) ? missed(exit.value) : failedOver(exit.cause)
    if (plan.policy.softTimeoutMs === 0) {
      return Metric.increment(metrics.refreshes).pipe(Effect.zipRight(computed), Effect.flatMap(settled))
    }
    // The computation outlives the wait: forked into the layer's set, it stores its value when it is done. A failure
    // after the wait is the refresh's, counted as such.
    let late = false
    const outlived = Effect.tap(computed, (exit) =>
      late && Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)
        ? Effect.flatMap(Clock.currentTimeMillis, (now) => failed(plan, now, exit.cause, qualifies(plan, exit.cause)))
        : Effect.void)
    return Metric.increment(metrics.refreshes).pipe(
      Effect.zipRight(FiberSet.run(set, Effect.interruptible(outlived))),
      Effect.flatMap((forked) => {
        const fiber = forked as Fiber.RuntimeFiber<Exit.Exit<O, E>>
        return restore(Effect.timeoutOption(fiber.await, Duration.millis(plan.policy.softTimeoutMs))).pipe(
          Effect.flatMap((exit) =>
            Option.isSome(exit)
              ? settled(Exit.flatten(exit.value))
              : Effect.flatMap(standIn(plan, fallback, stale), (outcome) => {
                if (outcome === undefined) {
                  // nothing to stand in: wait for the effect after all
                  return Effect.flatMap(restore(fiber.await), (exit) => settled(Exit.flatten(exit)))
                }
                late = true
                return Effect.succeed(outcome)
              })
          )
        )
      })
    )
  }

  return { background, foreground, inBackoff, failed }
}
