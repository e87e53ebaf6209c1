/**
 * In-process single flight: concurrent callers of one key share one computation.
 *
 * The computation runs in its own fiber, forked into the cache's scope with the first caller's context, so that
 * the first caller leaving (interrupted, timed out) does not cancel the work others wait for. It is interrupted
 * only when every waiter is gone, and when the cache's scope closes.
 *
 * @since 0.1.0
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import type * as Scope from "effect/Scope"

interface InFlight {
  readonly deferred: Deferred.Deferred<any, any>
  waiters: number
  fiber: Fiber.RuntimeFiber<any, any> | undefined
}

/** @internal */
export interface SingleFlight {
  /**
   * Run `effect` under `key`, or join the run already in flight; `onJoin` runs for callers that join.
   */
  readonly run: <A, E, R>(key: string, effect: Effect.Effect<A, E, R>, onJoin: Effect.Effect<void>) => Effect.Effect<
    A,
    E,
    R
  >
  /** keys in flight, for tests and stats */
  readonly size: () => number
}

/** @internal */
export const make = (scope: Scope.Scope): SingleFlight => {
  const inFlight = new Map<string, InFlight>()

  const leave = (key: string, entry: InFlight) =>
    Effect.suspend(() => {
      entry.waiters--
      if (entry.waiters > 0 || entry.fiber === undefined) return Effect.void
      if (inFlight.get(key) === entry) inFlight.delete(key)
      return Fiber.interrupt(entry.fiber)
    })

  const join = <A, E>(
    key: string,
    entry: InFlight,
    restore: <X, Y, Z>(effect: Effect.Effect<X, Y, Z>) => Effect.Effect<X, Y, Z>
  ): Effect.Effect<A, E> =>
    restore(Deferred.await(entry.deferred as Deferred.Deferred<A, E>)).pipe(
      Effect.onInterrupt(() => leave(key, entry))
    )

  const run = <A, E, R>(key: string, effect: Effect.Effect<A, E, R>, onJoin: Effect.Effect<void>) =>
    // uninterruptible between registering the entry and forking its fiber: a caller interrupted in between would
    // otherwise leave an entry that nobody completes, and every later caller of the key would wait forever
    Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        const existing = inFlight.get(key)
        if (existing !== undefined) {
          existing.waiters++
          return Effect.zipRight(onJoin, join<A, E>(key, existing, restore))
        }
        const entry: InFlight = { deferred: Deferred.unsafeMake<A, E>(FiberId.none), waiters: 1, fiber: undefined }
        inFlight.set(key, entry)
        const computation = effect.pipe(
          Effect.onExit((exit) =>
            Effect.suspend(() => {
              // forget the key before completing, so a caller arriving now starts afresh instead of reading a
              // failure that is already over
              if (inFlight.get(key) === entry) inFlight.delete(key)
              return Deferred.done(entry.deferred as Deferred.Deferred<A, E>, exit)
            })
          ),
          Effect.interruptible
        )
        return Effect.forkIn(computation, scope).pipe(
          Effect.flatMap((fiber) => {
            entry.fiber = fiber
            return join<A, E>(key, entry, restore)
          })
        )
      })
    )

  return { run, size: () => inFlight.size }
}
