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
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Metric from "effect/Metric"
import type * as CacheMetrics from "../CacheMetrics.js"
import type { Fence } from "./fence.js"
import type { Lease, Locks } from "./locks.js"
import type { Plan } from "./plan.js"
import { uniqueId } from "./random.js"

/** @internal */
export interface Refreshes {
  /**
   * Refresh `plan`'s entry with `effect` in the background, unless a refresh of it is under way in this process or
   * its key is in `graceBackoff`. The fiber forks into the layer's set with the caller's context (the effect's `R`).
   */
  readonly background: <A, E, R>(plan: Plan, effect: Effect.Effect<A, E, R>) => Effect.Effect<void, never, R>
  /** whether the effect of `plan`'s key failed less than `graceBackoff` ago */
  readonly inBackoff: (plan: Plan, now: number) => boolean
  /** a refresh's effect failed at `now`: counted, logged, and its key rests for `graceBackoff` */
  readonly failed: (plan: Plan, now: number, cause: Cause.Cause<unknown>) => Effect.Effect<void>
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
}

/** @internal */
export const make = ({ fence, locks, metrics, set, store }: Dependencies): Refreshes => {
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

  const failed: Refreshes["failed"] = (plan, now, cause) =>
    Effect.suspend(() => {
      if (backoff.size >= pruneAt) {
        for (const [key, until] of backoff) if (until <= now) backoff.delete(key)
        pruneAt = Math.max(1024, backoff.size * 2)
      }
      if (plan.policy.graceBackoffMs > 0) backoff.set(keyOf(plan), now + plan.policy.graceBackoffMs)
      return Metric.increment(metrics.refreshFailures).pipe(
        Effect.zipRight(Effect.logDebug("s3cache: a refresh failed; the stale entry is served for graceBackoff", cause))
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
                          : Effect.flatMap(Clock.currentTimeMillis, (now) => failed(plan, now, exit.cause))
                      )
                    })
                  ))
          )).pipe(Effect.ensuring(Effect.sync(() => running.delete(key))))
      )
      return Effect.asVoid(FiberSet.run(set, Effect.interruptible(refresh)))
    })

  return { background, inBackoff, failed }
}
