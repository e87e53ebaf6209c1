/**
 * Permits handed out first come, first served, one waiter woken per release.
 *
 * Effect's `Semaphore` wakes every waiter on each release (each checks the count, one wins, the others wait again):
 * with a thousand writes queued behind `writeConcurrency` permits, every finished write resumed a thousand fibers, and
 * a fill of fresh keys spent most of its CPU there. Here a release hands its permit to the oldest waiter directly.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"

/** @internal */
export interface Permits {
  /** run `effect` holding one permit, waiting for it in order of arrival; the permit is returned however it ends */
  readonly withPermit: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** callers waiting for a permit now */
  readonly waiting: () => number
}

/** @internal */
export const make = (permits: number): Permits => {
  let free = permits
  // a Set keeps the order of arrival, and lets an interrupted waiter leave in O(1)
  const waiters = new Set<() => void>()

  const release = (): void => {
    const next = waiters.values().next()
    if (next.done === true) {
      free++
      return
    }
    waiters.delete(next.value)
    next.value()
  }

  /** wait for a permit; `ticket.handed` says whether this caller got one (and must give it back) */
  const take = (ticket: { handed: boolean }) =>
    Effect.async<void>((resume) => {
      if (free > 0) {
        free--
        ticket.handed = true
        resume(Effect.void)
        return
      }
      const wake = () => {
        ticket.handed = true
        resume(Effect.void)
      }
      waiters.add(wake)
      // interrupted while waiting: leave the line (a permit handed over meanwhile is passed on by `withPermit`)
      return Effect.sync(() => {
        if (!ticket.handed) waiters.delete(wake)
      })
    })

  return {
    withPermit: (effect) =>
      Effect.uninterruptibleMask((restore) => {
        const ticket = { handed: false }
        return restore(take(ticket)).pipe(
          // interrupted once the permit was handed over, before this caller could use it: pass it on
          Effect.onInterrupt(() => Effect.sync(() => ticket.handed && release())),
          Effect.zipRight(Effect.ensuring(restore(effect), Effect.sync(release)))
        )
      }),
    waiting: () => waiters.size
  }
}
