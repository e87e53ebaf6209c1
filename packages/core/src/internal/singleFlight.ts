/**
 * In-process single flight: concurrent callers of one key share one computation.
 *
 * The computation runs in its own fiber, forked into the cache's scope with the first caller's context, so that
 * the first caller leaving (interrupted, timed out) does not cancel the work others wait for. It is interrupted
 * only when every waiter is gone, and when the cache's scope closes.
 *
 * The callers wait on a deferred that the computation's fiber completes through an observer of its exit, not through
 * a finalizer inside the computation: a fiber interrupted before its first step (forked into a scope that is
 * closing) never runs its finalizers, and its callers, and every later caller of the key, would wait forever.
 *
 * @since 0.1.0
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import { FiberId } from "./effect3.js"

interface InFlight {
  readonly deferred: Deferred.Deferred<any, any>
  readonly namespace: string
  waiters: number
  /** some caller joined: the computation's value is shared */
  joined: boolean
  fiber: Fiber.RuntimeFiber<any, any> | undefined
}

/**
 * What one caller gets: the computation's value, and whether the caller joined a computation another caller had
 * started (then the value is shared, and a caller that must not share it makes its own copy).
 *
 * @internal
 */
export interface Joined<A> {
  readonly value: A
  readonly joined: boolean
}

/** @internal */
export interface SingleFlight {
  /**
   * Run `make(shared)` under `key`, or join the run already in flight; `onJoin` runs for callers that join.
   * `shared()` tells the computation whether some caller joined it so far.
   */
  readonly run: <A, E, R>(
    key: string,
    namespace: string,
    make: (shared: () => boolean) => Effect.Effect<A, E, R>,
    onJoin: Effect.Effect<void>
  ) => Effect.Effect<Joined<A>, E, R>
  /**
   * Forget the computations whose namespace (and key, when given) match: callers arriving now start afresh instead
   * of joining a computation that began before an invalidation. Callers already waiting keep waiting for it.
   */
  readonly detach: (namespace: string | undefined, key?: string) => void
  /** keys in flight, for tests and stats */
  readonly size: () => number
}

/** @internal */
export const make = (scope: Scope.Scope): SingleFlight => {
  const inFlight = new Map<string, InFlight>()

  const forget = (key: string, entry: InFlight): void => {
    if (inFlight.get(key) === entry) inFlight.delete(key)
  }

  const leave = (key: string, entry: InFlight) =>
    Effect.suspend(() => {
      entry.waiters--
      if (entry.waiters > 0 || entry.fiber === undefined) return Effect.void
      forget(key, entry)
      return Fiber.interrupt(entry.fiber)
    })

  const join = <A, E>(
    key: string,
    entry: InFlight,
    joined: boolean,
    restore: <X, Y, Z>(effect: Effect.Effect<X, Y, Z>) => Effect.Effect<X, Y, Z>
  ): Effect.Effect<Joined<A>, E> =>
    restore(Deferred.await(entry.deferred as Deferred.Deferred<A, E>)).pipe(
      Effect.map((value) => ({ value, joined })),
      Effect.onInterrupt(() => leave(key, entry))
    )

  const run: SingleFlight["run"] = <A, E, R>(
    key: string,
    namespace: string,
    make: (shared: () => boolean) => Effect.Effect<A, E, R>,
    onJoin: Effect.Effect<void>
  ) =>
    // uninterruptible between registering the entry and forking its fiber: a caller interrupted in between would
    // otherwise leave an entry that nobody completes
    Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        const existing = inFlight.get(key)
        if (existing !== undefined) {
          existing.waiters++
          existing.joined = true
          return Effect.zipRight(onJoin, join<A, E>(key, existing, true, restore))
        }
        const entry: InFlight = {
          deferred: Deferred.unsafeMake<A, E>(FiberId.none),
          namespace,
          waiters: 1,
          joined: false,
          fiber: undefined
        }
        inFlight.set(key, entry)
        // forked from inside `uninterruptibleMask`, the fiber would inherit uninterruptibility
        return Effect.forkIn(Effect.interruptible(make(() => entry.joined)), scope).pipe(
          Effect.flatMap((fiber) => {
            entry.fiber = fiber
            // called at once if the fiber is already done; forgetting the key first means a caller arriving now
            // starts afresh instead of reading an outcome that is already over
            fiber.addObserver((exit) => {
              forget(key, entry)
              Deferred.unsafeDone(entry.deferred as Deferred.Deferred<A, E>, exit)
            })
            return join<A, E>(key, entry, false, restore)
          })
        )
      })
    )

  const detach: SingleFlight["detach"] = (namespace, key) => {
    for (const [k, entry] of inFlight) {
      if ((namespace === undefined || entry.namespace === namespace) && (key === undefined || k === key)) {
        inFlight.delete(k)
      }
    }
  }

  return { run, detach, size: () => inFlight.size }
}
