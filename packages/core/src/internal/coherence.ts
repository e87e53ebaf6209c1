/**
 * What instances tell each other, and what this one does about it: the in-process tier (`tier.ts`) kept coherent by
 * the bus (`CacheBus`), and callers waiting for another process's computation woken when it commits.
 *
 * - A commit publishes `Written`; an invalidation `Removed` or `Cleared`. Every other instance drops the entries an
 *   event names from its tier; this one keeps what it just wrote.
 * - Every event that names a key wakes this process's callers waiting for it (`wait`), whoever published it; polling
 *   stays as the fallback when events are lost.
 * - Without a bus, the tier serves an entry for at most `l1DisconnectedTtl` after it was stored, and waiters poll.
 *
 * @since 0.2.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type * as CacheBus from "../CacheBus.js"
import type * as CacheConfig from "../CacheConfig.js"
import type { Snapshot } from "../Serializer.js"
import { uniqueId } from "./random.js"
import * as Tier from "./tier.js"

/** @internal */
export interface Coherence {
  /** the in-process tier, when `l1MaxEntries` is above 0 */
  readonly tier: Tier.Tier | undefined
  /**
   * An entry this instance committed: other instances drop their copy; this one keeps it in its tier for `ttlMs`,
   * never past `expiresAt`, unless something was dropped from the tier since `since`.
   */
  readonly written: (
    namespace: string,
    hash: string,
    snapshot: Snapshot,
    value: unknown,
    keep: { readonly ttlMs: number; readonly expiresAt: number; readonly since: number }
  ) => Effect.Effect<void>
  /** entries this instance removes: dropped from its tier, and (`announce`) the other instances told */
  readonly removed: (namespace: string, hashes: ReadonlyArray<string>, announce: boolean) => Effect.Effect<void>
  /** a namespace (or all) this instance clears: dropped from its tier, and (`announce`) the other instances told */
  readonly cleared: (namespace: string | undefined, announce: boolean) => Effect.Effect<void>
  /** sleep `delay`, or less if an event names the key first */
  readonly wait: (namespace: string, hash: string, delay: Duration.Duration) => Effect.Effect<void>
}

/** @internal */
export const make = (
  config: CacheConfig.Resolved,
  bus: Option.Option<CacheBus.CacheBus["Type"]>
): Effect.Effect<Coherence, never, Scope.Scope> =>
  Effect.gen(function*() {
    const origin = uniqueId()
    const tier = config.l1MaxEntries > 0
      ? Tier.make({
        maxEntries: config.l1MaxEntries,
        maxBytes: config.l1MaxBytes,
        disconnectedTtlMs: Duration.toMillis(config.l1DisconnectedTtl)
      })
      : undefined

    const waiters = new Map<string, Set<() => void>>()
    const keyOf = (namespace: string, hash: string) => `${namespace}\u0000${hash}`
    const wake = (namespace: string, hash: string | undefined) => {
      if (hash !== undefined) {
        waiters.get(keyOf(namespace, hash))?.forEach((resume) => resume())
        return
      }
      for (const [key, set] of waiters) {
        if (namespace === "" || key.startsWith(`${namespace}\u0000`)) set.forEach((resume) => resume())
      }
    }

    if (Option.isSome(bus)) {
      yield* bus.value.listen({
        onEvent: (event) => {
          const own = event.origin === origin
          switch (event._tag) {
            case "Written":
              if (!own) tier?.drop(event.namespace, [event.hash])
              wake(event.namespace, event.hash)
              break
            case "Removed":
              if (!own) tier?.drop(event.namespace, event.hashes)
              for (const hash of event.hashes) wake(event.namespace, hash)
              break
            case "Cleared":
              if (!own) tier?.dropNamespace(event.namespace)
              wake(event.namespace ?? "", undefined)
          }
        },
        onConnected: (connected) => tier?.connected(connected)
      })
    }

    const publish = (event: CacheBus.Event) => Option.isSome(bus) ? bus.value.publish(event) : Effect.void

    const written: Coherence["written"] = (namespace, hash, snapshot, value, keep) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        if (tier !== undefined && keep.ttlMs > 0) {
          tier.set(namespace, hash, {
            snapshot,
            value,
            storedAt: now,
            expiresAt: Math.min(now + keep.ttlMs, keep.expiresAt)
          }, keep.since)
        }
        return publish({ _tag: "Written", origin, namespace, hash })
      })

    const removed: Coherence["removed"] = (namespace, hashes, announce) =>
      Effect.suspend(() => {
        tier?.drop(namespace, hashes)
        return announce ? publish({ _tag: "Removed", origin, namespace, hashes }) : Effect.void
      })

    const cleared: Coherence["cleared"] = (namespace, announce) =>
      Effect.suspend(() => {
        tier?.dropNamespace(namespace)
        return announce ? publish({ _tag: "Cleared", origin, namespace }) : Effect.void
      })

    const wait: Coherence["wait"] = (namespace, hash, delay) =>
      Option.isNone(bus) ? Effect.sleep(delay) : Effect.raceFirst(
        Effect.sleep(delay),
        Effect.async<void>((resume) => {
          const key = keyOf(namespace, hash)
          const set = waiters.get(key) ?? new Set()
          waiters.set(key, set)
          const resumeOnce = () => {
            set.delete(resumeOnce)
            if (set.size === 0 && waiters.get(key) === set) waiters.delete(key)
            resume(Effect.void)
          }
          set.add(resumeOnce)
          return Effect.sync(() => {
            set.delete(resumeOnce)
            if (set.size === 0 && waiters.get(key) === set) waiters.delete(key)
          })
        })
      )

    return { tier, written, removed, cleared, wait }
  })
