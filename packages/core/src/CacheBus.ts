/**
 * The port for telling every cache instance what changed: an entry written, entries removed, a namespace cleared.
 * Instances that keep an in-process tier (`l1MaxEntries`) drop what an event makes stale, and callers waiting for
 * another process's computation wake at once instead of at their next poll.
 *
 * Delivery is best effort, like Redis pub/sub: an event may be missed while a listener is disconnected, which is why
 * a listener is told when it is (`onConnected(false)`: the in-process tier then serves entries for at most
 * `l1DisconnectedTtl`) and when events flow again (`onConnected(true)`: the tier starts empty, since it may have
 * missed some).
 *
 * Implementations: `layerLocal` (one process: every cache of the process that uses it), and the Redis one, which
 * `RedisMetadataStore.layer` provides beside the store.
 *
 * @since 0.2.0
 */
import "./internal/effectVersion.js"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"

/**
 * What changed. `origin` is the id of the cache instance that published it, so an instance can tell its own events.
 *
 * @since 0.2.0
 * @category models
 */
export type Event =
  | { readonly _tag: "Written"; readonly origin: string; readonly namespace: string; readonly hash: string }
  | {
    readonly _tag: "Removed"
    readonly origin: string
    readonly namespace: string
    readonly hashes: ReadonlyArray<string>
  }
  /** a namespace, or every namespace (`undefined`), was cleared */
  | { readonly _tag: "Cleared"; readonly origin: string; readonly namespace: string | undefined }

/**
 * @since 0.2.0
 * @category models
 */
export interface Listener {
  /** called for every event, the listener's own included, in the order they arrive */
  readonly onEvent: (event: Event) => void
  /** false: events may be missed from now on; true: events flow (again) */
  readonly onConnected: (connected: boolean) => void
}

/**
 * @since 0.2.0
 * @category tags
 */
export class CacheBus extends Context.Tag("@s3cache/core/CacheBus")<CacheBus, {
  /** Send an event to every listener. Best effort: it never fails (a failure is logged at debug level). */
  readonly publish: (event: Event) => Effect.Effect<void>
  /** Listen until the scope closes. `onConnected` is called once at the start, and at every change. */
  readonly listen: (listener: Listener) => Effect.Effect<void, never, Scope.Scope>
}>() {}

/**
 * A bus within one process: every listener gets every event at once, and it is always connected.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeLocal: Effect.Effect<CacheBus["Type"]> = Effect.sync(() => {
  const listeners = new Set<Listener>()
  return {
    publish: (event) =>
      Effect.sync(() => {
        for (const listener of listeners) listener.onEvent(event)
      }),
    listen: (listener) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          listeners.add(listener)
          listener.onConnected(true)
        }),
        () => Effect.sync(() => listeners.delete(listener))
      )
  }
})

/**
 * @since 0.2.0
 * @category layers
 */
export const layerLocal: Layer.Layer<CacheBus> = Layer.effect(CacheBus, makeLocal)

/**
 * An event as one line of text, for buses that carry strings (Redis pub/sub).
 *
 * @since 0.2.0
 * @category encoding
 */
export const encode = (event: Event): string => JSON.stringify(event)

/**
 * The inverse of `encode`; `undefined` for anything else (a message of another program on the same channel).
 *
 * @since 0.2.0
 * @category encoding
 */
export const decode = (text: string): Event | undefined => {
  let u: unknown
  try {
    u = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof u !== "object" || u === null) return undefined
  const event = u as Record<string, unknown>
  if (typeof event.origin !== "string") return undefined
  switch (event._tag) {
    case "Written":
      return typeof event.namespace === "string" && typeof event.hash === "string" ? event as Event : undefined
    case "Removed":
      return typeof event.namespace === "string" && Array.isArray(event.hashes) &&
          event.hashes.every((hash) => typeof hash === "string")
        ? event as Event
        : undefined
    case "Cleared":
      return event.namespace === undefined || typeof event.namespace === "string" ? event as Event : undefined
    default:
      return undefined
  }
}
