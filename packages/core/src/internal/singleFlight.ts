/**
 * In-process single flight: concurrent callers of one key share one computation.
 *
 * A computation has two phases. The first (the lookup, and on a hit the read) runs in the fiber of the caller that
 * started it: a hit costs no fiber of its own. If that caller leaves during the first phase, the phase stops, and
 * callers that joined start again (one of them leads): the first phase is the cache's own work, safe to redo. The
 * second phase (the user's effect and what follows) runs in a fiber of its own, forked into the cache's scope with the
 * first caller's context, so that the first caller leaving (interrupted, timed out) does not cancel the work others
 * wait for. It is interrupted only when every waiter is gone, and when the cache's scope closes.
 *
 * The callers wait on a deferred that the second phase's fiber completes through an observer of its exit, not through
 * a finalizer inside it: a fiber interrupted before its first step (forked into a scope that is closing) never runs
 * its finalizers, and its callers, and every later caller of the key, would wait forever.
 *
 * @since 0.1.0
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import { FiberId } from "./effect3.js"

interface InFlight {
  /**
   * What the callers wait on: made when the first of them joins, or when the second phase starts (a Deferred costs
   * more than a whole hit's bookkeeping; a caller alone with a hit never needs one)
   */
  deferred: Deferred.Deferred<any, any> | undefined
  readonly namespace: string
  waiters: number
  /** some caller joined: the computation's value is shared */
  joined: boolean
  /** the second phase, once forked */
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

/**
 * What the first phase found: the value (`Done`), or the second phase that computes it (`Continue`).
 *
 * @internal
 */
export type Phase<A, E, R> =
  | { readonly _tag: "Done"; readonly value: A }
  | { readonly _tag: "Continue"; readonly effect: Effect.Effect<A, E, R> }

/** @internal */
export interface SingleFlight {
  /**
   * Run `start(shared)` under `key`, or join the computation already in flight; `onJoin` runs for callers that join.
   * `shared()` tells the computation whether some caller joined it so far.
   */
  readonly run: <A, E, R>(
    key: string,
    namespace: string,
    start: (shared: () => boolean) => Effect.Effect<Phase<A, E, R>, never, R>,
    onJoin: Effect.Effect<void>
  ) => Effect.Effect<Joined<A>, E, R>
  /**
   * Forget the computations whose namespace (and key, when given) match: callers arriving now start afresh instead
   * of joining a computation that began before an invalidation. Callers already waiting keep waiting for it.
   */
  readonly detach: (namespace: string | undefined, key?: string) => void
  /** whether a computation of `key` is in flight (a caller would join it) */
  readonly has: (key: string) => boolean
  /** keys in flight, for tests and stats */
  readonly size: () => number
}

/** What joiners get when the caller that led the first phase left before it ended: start again. */
const restart: unique symbol = Symbol("@s3cache/core/singleFlight/restart")

const deferredOf = (entry: InFlight): Deferred.Deferred<any, any> =>
  entry.deferred ??= Deferred.unsafeMake<unknown, unknown>(FiberId.none)

/** Complete what the callers wait on, if any caller waits on it yet. */
const complete = (entry: InFlight, exit: Exit.Exit<unknown, unknown>): void => {
  if (entry.deferred !== undefined) Deferred.unsafeDone(entry.deferred, exit)
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

  const run: SingleFlight["run"] = <A, E, R>(
    key: string,
    namespace: string,
    start: (shared: () => boolean) => Effect.Effect<Phase<A, E, R>, never, R>,
    onJoin: Effect.Effect<void>
  ): Effect.Effect<Joined<A>, E, R> => {
    const join = (
      entry: InFlight,
      restore: <X, Y, Z>(effect: Effect.Effect<X, Y, Z>) => Effect.Effect<X, Y, Z>
    ): Effect.Effect<Joined<A>, E, R> =>
      restore(Deferred.await(deferredOf(entry) as Deferred.Deferred<A | typeof restart, E>)).pipe(
        Effect.onInterrupt(() => leave(key, entry)),
        Effect.flatMap((value) =>
          // started again with the caller's own interruptibility (this runs inside the uninterruptible region)
          value === restart ? restore(run(key, namespace, start, Effect.void)) : Effect.succeed({ value, joined: true })
        )
      )

    // uninterruptible but for the first phase and the waits: a caller interrupted elsewhere would leave an entry
    // that nobody completes
    return Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        const existing = inFlight.get(key)
        if (existing !== undefined) {
          existing.waiters++
          existing.joined = true
          return Effect.zipRight(onJoin, join(existing, restore))
        }
        const entry: InFlight = {
          deferred: undefined,
          namespace,
          waiters: 1,
          joined: false,
          fiber: undefined
        }
        inFlight.set(key, entry)
        // the exit is looked at in this uninterruptible region: no `onExit` (a region of its own) is needed
        return Effect.flatMap(
          Effect.exit(restore(start(() => entry.joined))),
          (exit): Effect.Effect<Joined<A>, E, R> => {
            if (Exit.isFailure(exit)) {
              // the first phase stopped (its caller left): whoever joined starts again
              forget(key, entry)
              complete(entry, Exit.succeed(restart))
              return Effect.failCause(exit.cause)
            }
            const phase = exit.value
            if (phase._tag === "Done") {
              // forgotten first, so a caller arriving now starts afresh instead of reading an outcome that is over
              forget(key, entry)
              complete(entry, Exit.succeed(phase.value))
              return Effect.succeed({ value: phase.value, joined: false })
            }
            const deferred = deferredOf(entry) as Deferred.Deferred<A, E>
            // forked from inside `uninterruptibleMask`, the fiber would inherit uninterruptibility
            return Effect.forkIn(Effect.interruptible(phase.effect), scope).pipe(
              Effect.flatMap((fiber) => {
                entry.fiber = fiber
                // called at once if the fiber is already done
                fiber.addObserver((exit) => {
                  forget(key, entry)
                  Deferred.unsafeDone(deferred, exit)
                })
                return restore(Deferred.await(deferred)).pipe(
                  Effect.onInterrupt(() => leave(key, entry)),
                  Effect.map((value) => ({ value: value as A, joined: false }))
                )
              })
            )
          }
        )
      })
    )
  }

  const detach: SingleFlight["detach"] = (namespace, key) => {
    for (const [k, entry] of inFlight) {
      if ((namespace === undefined || entry.namespace === namespace) && (key === undefined || k === key)) {
        inFlight.delete(k)
      }
    }
  }

  return { run, detach, has: (key) => inFlight.has(key), size: () => inFlight.size }
}
