/**
 * The stampede locks this process may hold: taken by a lookup, renewed until the value is committed (or its write
 * failed), released when the work ends, and released all at once when the cache closes.
 *
 * A lookup that times out may still have taken the lock on the server: its outcome is unknown, not a failure. Its
 * token is not forgotten: the lock is released once the call has settled, and at the latest when the cache closes.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import type * as CacheConfig from "../CacheConfig.js"
import type { MetadataStoreError } from "../CacheError.js"
import type { LookupResult, MetadataStore } from "../MetadataStore.js"
import { type Fence, isSkipped } from "./fence.js"

/** @internal */
export interface LockTarget {
  readonly namespace: string
  readonly hash: string
}

/**
 * A stampede lock held by this process, renewed until `end`.
 *
 * @internal
 */
export interface Lease {
  readonly token: string
  /**
   * Stop renewing. `released`: the store let the lock go already (a commit released it, or it was found gone);
   * otherwise it is released now, in the background. Only the first call counts.
   */
  readonly end: (released: boolean) => Effect.Effect<void>
}

/** @internal */
export interface Locks {
  /**
   * `MetadataStore.lookup` under the metadata deadline, keeping track of the token whatever the outcome. `now`: the
   * clock's time (ms), which the caller has just read.
   */
  readonly lookup: (target: LockTarget, token: string, now: number) => Effect.Effect<LookupResult, MetadataStoreError>
  /**
   * `MetadataStore.acquireLock` (whether or not a record exists: to replace a stale or expired one), kept track of
   * like `lookup`'s: true when the lock is now held under `token`.
   */
  readonly acquire: (target: LockTarget, token: string, now: number) => Effect.Effect<boolean, MetadataStoreError>
  /** renew the lock that `lookup` or `acquire` took under `token` until the lease ends */
  readonly hold: (target: LockTarget, token: string) => Effect.Effect<Lease>
  /** release every lock still held (closing the cache), each under the metadata deadline */
  readonly releaseAll: Effect.Effect<void>
  /**
   * Whether a lock of this process on `target` may be on the store with no work behind it: its release failed, or
   * the lookup that may have taken it was abandoned. A lookup that then finds the key `Busy` has most likely met that
   * lock, and nobody is computing the value it would wait for.
   */
  readonly orphaned: (target: LockTarget, now: number) => boolean
}

/** @internal */
export interface Dependencies {
  readonly config: CacheConfig.Resolved
  readonly metadata: MetadataStore["Type"]
  readonly fence: Fence
  /** background work of the layer (renewals); closed after `releaseAll` */
  readonly housekeeping: FiberSet.FiberSet<unknown, unknown>
  /** releases in the background, which `Cache.flush` waits for too */
  readonly releases: FiberSet.FiberSet<unknown, unknown>
  /**
   * fork into `housekeeping` with the layer's context: the renewal loop serves every lease, so it must not carry the
   * log annotations and span of whichever call started it
   */
  readonly inLayer: (effect: Effect.Effect<void>) => unknown
}

/** A lease held: when its renewal is due (ms), and whether one is under way. */
interface Held {
  readonly target: LockTarget
  due: number
  renewing: boolean
}

/** @internal */
export const make = ({ config, fence, housekeeping, inLayer, metadata, releases }: Dependencies): Locks => {
  const leaseMs = Duration.toMillis(config.stampedeLockLease)
  // Every token whose lock may be held, until it surely is not: released, or lapsed. A release that fails (the store
  // is down) does not keep a token for ever: the lock, if the store ever took it, lapses by itself one lease later,
  // so the token is kept until then (`until`), and forgotten after. Held leases are renewed: no end until released.
  // `orphan`: no work of ours is behind the lock any more (its release failed, or its lookup was abandoned).
  const tokens = new Map<string, { readonly target: LockTarget; until: number; orphan: boolean }>()
  let pruneAt = 1024
  const prune = (now: number): void => {
    if (tokens.size < pruneAt) return
    for (const [token, entry] of tokens) if (entry.until <= now) tokens.delete(token)
    pruneAt = Math.max(1024, tokens.size * 2)
  }

  const background = (effect: Effect.Effect<unknown>): Effect.Effect<void> =>
    Effect.asVoid(FiberSet.run(releases, Effect.interruptible(effect)))

  const release = (target: LockTarget, token: string): Effect.Effect<void> =>
    fence.withMetadataDeadline("releaseLock", metadata.releaseLock(target.namespace, target.hash, token)).pipe(
      Effect.tap(() => Effect.sync(() => tokens.delete(token))),
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause)
          ? Effect.failCause(cause as Cause.Cause<never>)
          : Effect.flatMap(Clock.currentTimeMillis, (now) => {
            const entry = tokens.get(token)
            if (entry !== undefined) {
              entry.until = Math.min(entry.until, now + leaseMs)
              entry.orphan = true
            }
            return Effect.logDebug(
              "s3cache: could not release a stampede lock; it expires after its lease (stampedeLockLease)",
              cause
            )
          })
      )
    )

  /**
   * A store call that may take the lock under `token` (`held`: whether its answer says it did), with the token kept
   * track of whatever the outcome.
   */
  const taking = <A>(
    target: LockTarget,
    token: string,
    now: number,
    method: string,
    call: () => Effect.Effect<A, MetadataStoreError>,
    held: (answer: A) => boolean
  ): Effect.Effect<A, MetadataStoreError> =>
    Effect.suspend(() => {
      prune(now)
      tokens.set(token, { target, until: Infinity, orphan: false })
      // The call may take the lock on the server while its answer is lost or late (a timeout, a dropped connection):
      // its outcome is then unknown, and the lock is released once the call has settled, which the call itself
      // reports. The deadline lets a call that ignores interruption finish in the background; one that never settles
      // keeps its token until the cache closes and releases it. Late releases are not ones `flush` waits for.
      let state: "waiting" | "settled" | "abandoned" = "waiting"
      const lateRelease = () => FiberSet.run(housekeeping, Effect.interruptible(release(target, token)))
      const settled = Effect.suspend(() => {
        if (state === "abandoned") return lateRelease()
        state = "settled"
        return Effect.void
      })
      return fence.withMetadataDeadline(method, call(), settled).pipe(
        Effect.onExit((exit) => {
          if (Exit.isSuccess(exit)) {
            if (!held(exit.value)) tokens.delete(token)
            return Effect.void
          }
          // not sent at all (the store's circuit breaker is open): no lock can have been taken
          if (isSkipped(exit.cause)) {
            tokens.delete(token)
            return Effect.void
          }
          if (state === "settled") return lateRelease()
          state = "abandoned"
          const entry = tokens.get(token)
          if (entry !== undefined) entry.orphan = true
          return Effect.void
        })
      )
    })

  const lookup: Locks["lookup"] = (target, token, now) =>
    taking(
      target,
      token,
      now,
      "lookup",
      () => metadata.lookup(target.namespace, target.hash, { token, lockTtlMs: leaseMs }),
      (result) => result._tag === "Acquired"
    )

  const acquire: Locks["acquire"] = (target, token, now) =>
    taking(
      target,
      token,
      now,
      "acquireLock",
      () => metadata.acquireLock(target.namespace, target.hash, { token, lockTtlMs: leaseMs }),
      (acquired) => acquired
    )

  // Held leases are renewed every third of a lease, and sooner after a failure, so one failed renewal does not let
  // the lock lapse. Renewal stops for good only when the lock is seen gone: released, lapsed, or removed by an
  // invalidation. One loop renews them all, and runs only while some lease is held: a value computed and committed
  // within a third of a lease (most are) costs no fiber, no timer and no interruption for its lock.
  const held = new Map<string, Held>()
  let renewing = false

  const renewOne = (
    token: string,
    lease: Held
  ) =>
    fence.withMetadataDeadline(
      "renewLock",
      metadata.renewLock(lease.target.namespace, lease.target.hash, { token, lockTtlMs: leaseMs })
    ).pipe(
      Effect.matchCauseEffect({
        onSuccess: (stillHeld) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => {
            lease.renewing = false
            lease.due = now + leaseMs / 3
            if (stillHeld) return Effect.void
            held.delete(token)
            return Effect.logDebug("s3cache: a stampede lock was lost (lapsed, or invalidated)")
          }),
        onFailure: (cause) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => {
            lease.renewing = false
            lease.due = now + leaseMs / 6
            return Cause.isInterruptedOnly(cause)
              ? Effect.void
              : Effect.logDebug("s3cache: could not renew a stampede lock; trying again", cause)
          })
      })
    )

  /** Renew what is due, sleep until the next is; stop when no lease is held (a new one starts the loop again). */
  const renewals: Effect.Effect<void> = Effect.flatMap(Clock.currentTimeMillis, (now) => {
    if (held.size === 0) {
      renewing = false
      return Effect.void
    }
    // A lease being renewed (started now, or still under way from an earlier round: a slow store) is looked at
    // again a sixth of a lease from now at the latest: by then its renewal has settled and set its next due time.
    // Without that bound, a round that found every lease still renewing would sleep for ever.
    let next = now + leaseMs / 6
    const due: Array<Effect.Effect<unknown>> = []
    for (const [token, lease] of held) {
      if (lease.renewing) continue
      if (lease.due <= now) {
        lease.renewing = true
        due.push(FiberSet.run(housekeeping, Effect.interruptible(renewOne(token, lease))))
      } else next = Math.min(next, lease.due)
    }
    return Effect.zipRight(
      Effect.all(due, { discard: true }),
      Effect.zipRight(Effect.sleep(Duration.millis(Math.max(1, next - now))), renewals)
    )
  })

  const hold: Locks["hold"] = (target, token) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      held.set(token, { target, due: now + leaseMs / 3, renewing: false })
      let ended = false
      const lease: Lease = {
        token,
        end: (released) =>
          Effect.suspend(() => {
            if (ended) return Effect.void
            ended = true
            held.delete(token)
            if (released) tokens.delete(token)
            return released ? Effect.void : background(release(target, token))
          })
      }
      if (!renewing) {
        renewing = true
        inLayer(renewals)
      }
      return Effect.succeed(lease)
    })

  const releaseAll: Locks["releaseAll"] = Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Effect.forEach(
      Array.from(tokens).filter(([, { until }]) => until > now),
      ([token, { target }]) => release(target, token),
      { concurrency: 16, discard: true }
    ))

  const orphaned: Locks["orphaned"] = (target, now) => {
    for (const entry of tokens.values()) {
      if (
        entry.orphan && entry.until > now && entry.target.hash === target.hash &&
        entry.target.namespace === target.namespace
      ) return true
    }
    return false
  }

  return { lookup, acquire, hold, releaseAll, orphaned }
}
