/**
 * Refreshes of entries that are stale (past their TTL, within the call's grace) or due (`refreshAhead`): the effect
 * runs under the key's stampede lock, one refresh per key in this process and, through the lock, across processes;
 * its value replaces the entry only when it succeeds. A failed refresh leaves the entry as it is; when `failSafe` covers
 * the failure, the key is not refreshed again for `graceBackoff`: calls get the stale value meanwhile. Before a stale
 * entry stands in for the effect, the store is asked whether it is still the same record (an invalidation wins).
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
import type { Found, Hit } from "./decide.js"
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
  /** end the lease (only the first call counts): for a computation that never started */
  readonly end: Effect.Effect<void>
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
   * Refresh the entry of `record` with `effect` in the background, unless a refresh of it is under way in this
   * process, another process holds its lock, or the record changed meanwhile. The fiber forks into the layer's set
   * with the caller's context (the effect's `R`). Keys in `graceBackoff` are the caller's to skip.
   */
  readonly background: <A, E, R>(
    plan: Plan,
    record: EntryRecord,
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<void, never, R>
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
  /** whether the store still holds `record` for its key (`"same"`), another one, none, or does not say */
  readonly unchanged: (plan: Plan, record: EntryRecord) => Effect.Effect<Found>
}

/** @internal */
export const make = ({ fence, locks, metrics, readStale, set, store, unchanged }: Dependencies): Refreshes => {
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

  const background: Refreshes["background"] = <A, E, R>(
    plan: Plan,
    record: EntryRecord,
    effect: Effect.Effect<A, E, R>
  ): Effect.Effect<void, never, R> => {
    const key = keyOf(plan)
    // a refresh of the key is under way: nothing to build (this runs on every hit of a stale or due entry)
    if (running.has(key)) return Effect.void
    const token = uniqueId()
    // From taking the lease to handing it to the write nothing may interrupt but the effect (see `run` in cache.ts)
    const refresh = Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.flatMap(
          fence.fenced("refresh", "the entry is not refreshed", locks.acquire(plan, token, now), () => false),
          (acquired) =>
            // another process holds the lock: it refreshes the entry
            !acquired ? Effect.void : Effect.flatMap(locks.hold(plan, token), (lease) =>
              // between the lookup that found the record and the lock, another process may have refreshed it
              Effect.flatMap(unchanged(plan, record), (found) =>
                found !== "same" ? lease.end(false) : Metric.increment(metrics.refreshes).pipe(
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
                )))
        ))
    )
    // the key is marked in the forked fiber itself, where no interruption can come between marking and unmarking
    const once = Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        if (running.has(key)) return Effect.void
        running.add(key)
        return Effect.ensuring(restore(refresh), Effect.sync(() => running.delete(key)))
      })
    )
    return Effect.asVoid(FiberSet.run(set, Effect.interruptible(once)))
  }

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

  /**
   * The stale entry's outcome; `undefined` when it cannot stand in: past the call's grace by now, no longer the record
   * the store holds (an invalidation removed it, a writer replaced it), or no longer reading back.
   */
  const standIn = <O>(plan: Plan, record: EntryRecord, stale: (hit: Hit) => O): Effect.Effect<O | undefined> => {
    const cannot = (why: string, cause?: unknown) =>
      Effect.as(
        Effect.logDebug(`s3cache: the stale entry cannot stand in: ${why}`, ...(cause === undefined ? [] : [cause])),
        undefined
      )
    return Effect.flatMap(Clock.currentTimeMillis, (now) =>
      now >= record.createdAt + record.ttlMs + plan.policy.graceMs
        ? cannot("it is past its grace")
        : Effect.flatMap(unchanged(plan, record), (held) =>
          held !== "same"
            ? cannot("the store no longer holds it (invalidated, or replaced)")
            : Effect.flatMap(Effect.either(readStale(plan, record)), (read) =>
              Either.isLeft(read)
                ? cannot("it does not read back", read.left)
                : Metric.increment(metrics.hits).pipe(
                  Effect.zipRight(Metric.increment(metrics.staleServed)),
                  Effect.as(stale({ ...read.right, stale: true }))
                ))))
  }

  const foreground: Refreshes["foreground"] = <O, E, R>(
    { computed, end, fallback, missed, plan, restore, stale }: Foreground<O, E, R>
  ): Effect.Effect<O, E, R> => {
    /** the stale entry in place of a failure fail-safe covers; `count`: the failure is this call's to count */
    const failedOver = (cause: Cause.Cause<E>, count: boolean): Effect.Effect<O, E> => {
      if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
      // a failure that fail-safe does not cover (a real "no") passes through, and the key does not rest
      const covered = qualifies(plan, cause)
      return Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.zipRight(
          count ? failed(plan, now, cause, covered) : Effect.void,
          covered
            ? Effect.flatMap(
              standIn(plan, fallback, stale),
              (outcome) => outcome === undefined ? Effect.failCause(cause) : Effect.succeed(outcome)
            )
            : Effect.failCause(cause)
        ))
    }
    if (plan.policy.softTimeoutMs === 0) {
      return Metric.increment(metrics.refreshes).pipe(
        Effect.zipRight(computed),
        Effect.flatMap((exit) => Exit.isSuccess(exit) ? missed(exit.value) : failedOver(exit.cause, true))
      )
    }
    // The computation outlives the wait: forked into the layer's set (uninterruptible but for the effect), it stores
    // its value when it is done, and counts its own failure, whether a caller still waits for it or not.
    const outlived = Effect.tap(computed, (exit) =>
      Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)
        ? Effect.flatMap(Clock.currentTimeMillis, (now) => failed(plan, now, exit.cause, qualifies(plan, exit.cause)))
        : Effect.void)
    const settled = (exit: Exit.Exit<Exit.Exit<O, E>>): Effect.Effect<O, E> => {
      const result = Exit.flatten(exit)
      // a computation interrupted before it began (the cache is closing) never ended its lease
      return Exit.isSuccess(result) ? missed(result.value) : Effect.zipRight(end, failedOver(result.cause, false))
    }
    return Metric.increment(metrics.refreshes).pipe(
      Effect.zipRight(FiberSet.run(set, outlived)),
      Effect.flatMap((forked) => {
        const fiber = forked as Fiber.RuntimeFiber<Exit.Exit<O, E>>
        return restore(Effect.timeoutOption(fiber.await, Duration.millis(plan.policy.softTimeoutMs))).pipe(
          Effect.flatMap((exit) =>
            Option.isSome(exit) ? settled(exit.value) : Effect.flatMap(
              standIn(plan, fallback, stale),
              // nothing to stand in: wait for the effect after all
              (outcome) =>
                outcome === undefined ? Effect.flatMap(restore(fiber.await), settled) : Effect.succeed(outcome)
            )
          )
        )
      })
    )
  }

  return { background, foreground, inBackoff, failed }
}
