/**
 * The `CacheBus` port on Redis pub/sub: events are published on the channel `<keyPrefix>bus` through the store's
 * client, and heard on a connection of their own (a duplicate of the store's client: a subscribed connection takes no
 * other command), subscribed again at every reconnection. The listeners are told when the subscription is lost (the
 * connection closed) and when it is back, so the in-process tier forgets what it may have missed.
 *
 * @since 0.2.0
 */
import * as CacheBus from "@s3cache/core/CacheBus"
import * as StoreDeadline from "@s3cache/core/StoreDeadline"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Client } from "./client.js"

/** What the bus needs of a client: publish, and a duplicate to subscribe on. */
interface Publisher {
  readonly publish: (channel: string, message: string) => Promise<unknown>
  readonly duplicate: () => Subscriber
}

interface Subscriber {
  readonly connect?: () => Promise<unknown>
  readonly subscribe: (channel: string) => Promise<unknown>
  readonly on: (event: string, listener: (...args: Array<any>) => void) => unknown
  readonly quit: () => Promise<unknown>
  readonly disconnect: () => void
}

/** @internal */
export const make = (
  client: Client,
  channel: string,
  /** bound of one publish: a client of the user's may have no command timeout, and an invalidation waits for it */
  publishTimeoutMs: number
): Effect.Effect<CacheBus.CacheBus["Type"], never, Scope.Scope> =>
  Effect.gen(function*() {
    const publisher = client as unknown as Publisher
    const listeners = new Set<CacheBus.Listener>()
    let connected = false
    const setConnected = (now: boolean) => {
      if (now === connected) return
      connected = now
      for (const listener of listeners) listener.onConnected(now)
    }

    const subscriber = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const duplicate = publisher.duplicate()
        // without a listener, a connection error is an unhandled 'error' event and kills the process
        duplicate.on("error", () => {})
        duplicate.on("message", (from: string, text: string) => {
          if (from !== channel) return
          const event = CacheBus.decode(text)
          if (event === undefined) return
          for (const listener of listeners) listener.onEvent(event)
        })
        // subscribed on every (re)connection, and connected only once the subscription is confirmed: the store's
        // client options (no offline queue) refuse a SUBSCRIBE sent before the connection is ready
        duplicate.on("ready", () => {
          duplicate.subscribe(channel).then(() => setConnected(true), () => setConnected(false))
        })
        duplicate.on("close", () => setConnected(false))
        duplicate.connect?.().catch(() => {})
        return duplicate
      }),
      (duplicate) =>
        Effect.promise(() => duplicate.quit().catch(() => undefined)).pipe(
          Effect.timeout("1 second"),
          Effect.ignore,
          Effect.ensuring(Effect.sync(() => duplicate.disconnect()))
        )
    )
    void subscriber

    return {
      publish: (event) =>
        Effect.tryPromise(() =>
          StoreDeadline.race(
            Date.now() + publishTimeoutMs,
            () => publisher.publish(channel, CacheBus.encode(event))
          )
        ).pipe(
          Effect.catchAll((error) =>
            Effect.logDebug("s3cache: could not publish a cache event; other instances learn of it later", error)
          ),
          Effect.asVoid
        ),
      listen: (listener) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            listeners.add(listener)
            listener.onConnected(connected)
          }),
          () => Effect.sync(() => listeners.delete(listener))
        )
    }
  })
