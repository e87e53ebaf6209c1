/**
 * The Promise facade: one `ManagedRuntime` for the cache, and the Exit of each call turned into a resolution or a
 * rejection with the error itself.
 *
 * Calls run with `runPromiseExit`, not `runPromise`: `runPromise` rejects with a `FiberFailure` that wraps the cause,
 * and the user wants back the very object their function threw. An error that failed inside a span is a `Proxy` of
 * the original (Effect adds the span to it): `Cause.originalError` gives the original back.
 *
 * The user's function becomes an effect whose failure channel holds whatever it threw or rejected with: `Cache.cached`
 * passes an effect's own failures through untouched and never caches them, and fail-safe options (`failSafe`) see
 * them as the effect's failures. As a defect (`Effect.promise`) a rejection would pass through too, but typed
 * failures are what the cache's options are written against.
 *
 * @since 0.2.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Cache from "../Cache.js"
import type { CacheClient, CallOptions, Wrapped } from "../CacheClient.js"

/** The layer's own failure, boxed so that a call can tell it from its effect's failures. */
class BuildFailure {
  constructor(readonly error: unknown) {}
}

/** @internal */
export type ClientErrorFactory = (reason: "Closed" | "Interrupted", method: string, description: string) => Error

/** @internal */
export const make = <E>(layer: Layer.Layer<Cache.Cache, E>, clientError: ClientErrorFactory): CacheClient => {
  let reported = false
  // built on the first call, once: a failed build is kept too, and every call gets its error
  const runtime = ManagedRuntime.make(Layer.mapError(layer, (error) => new BuildFailure(Cause.originalError(error))))
  let closing: Promise<void> | undefined

  const closed = (method: string) =>
    clientError(
      "Closed",
      method,
      "the client is closed (close() was called): make one client per process and close it at shutdown"
    )

  /** The settled Exit as a value or the error itself. */
  const settle = <A>(method: string, exit: Exit.Exit<A, unknown>, signal: AbortSignal | undefined): A => {
    if (Exit.isSuccess(exit)) return exit.value
    const cause = exit.cause
    const failure = Cause.failureOption(cause)
    if (Option.isSome(failure)) {
      const error = Cause.originalError(failure.value)
      if (error instanceof BuildFailure) {
        if (!reported) {
          reported = true
          Effect.runSync(Effect.logError(
            "s3cache: CacheClient: the cache layer failed to build; every call of this client rejects with its " +
              "error: fix the cause and make a new client",
            error.error
          ))
        }
        throw error.error
      }
      throw error
    }
    const defect = Cause.dieOption(cause)
    if (Option.isSome(defect)) throw Cause.originalError(defect.value)
    // interrupted
    if (signal?.aborted) throw signal.reason
    if (closing !== undefined) {
      throw clientError("Closed", method, "the client was closed while this call was in flight")
    }
    throw clientError("Interrupted", method, "the call was interrupted")
  }

  const run = <A, E>(method: string, effect: Effect.Effect<A, E, Cache.Cache>, options?: CallOptions) => {
    const signal = options?.signal
    if (closing !== undefined) return Promise.reject(closed(method))
    if (signal?.aborted) return Promise.reject(signal.reason)
    return runtime.runPromiseExit(effect, { signal }).then((exit) => settle(method, exit, signal))
  }

  /** What the user's function threw or rejected with, in the failure channel; its value, awaited. */
  const fromFunction = <A>(evaluate: () => A): Effect.Effect<Awaited<A>, unknown> =>
    Effect.tryPromise({ try: () => Promise.resolve(evaluate()), catch: (error) => error })

  const fromAbortable = <A>(evaluate: (signal: AbortSignal) => A): Effect.Effect<Awaited<A>, unknown> =>
    Effect.tryPromise({ try: (signal) => Promise.resolve(evaluate(signal)), catch: (error) => error })

  const wrap = (
    f: (...args: ReadonlyArray<any>) => unknown,
    options: Parameters<typeof Cache.wrap>[1]
  ): Wrapped<ReadonlyArray<any>, unknown> => {
    // throws a CacheInputError at once for a function without an identity, as Cache.wrap does
    const cached = (Cache.wrap as (
      f: (...args: ReadonlyArray<any>) => Effect.Effect<unknown, unknown>,
      options: unknown
    ) => (...args: ReadonlyArray<any>) => Effect.Effect<unknown, unknown, Cache.Cache>)(
      (...args) => fromFunction(() => f(...args)),
      options
    )
    const method = `CacheClient.wrap(${typeof options.name === "string" ? options.name : "key"})`
    const call = (callOptions: CallOptions | undefined) => (...args: ReadonlyArray<any>) =>
      run(method, Effect.suspend(() => cached(...args)), callOptions)
    return Object.assign(call(undefined), { with: call })
  }

  const client: CacheClient = {
    wrap: wrap as CacheClient["wrap"],
    cached: ((
      keyOrOptions: Cache.KeyShorthand | Cache.CachedOptions,
      f: (signal: AbortSignal) => unknown,
      callOptions?: CallOptions
    ) =>
      run(
        "CacheClient.cached",
        Effect.suspend(() => Cache.cached(fromAbortable(f), keyOrOptions)),
        callOptions
      )) as CacheClient["cached"],
    invalidate: (hash, options) => run("CacheClient.invalidate", Cache.invalidate(hash, options)),
    invalidateKey: (key, options) => run("CacheClient.invalidateKey", Cache.invalidateKey(key, options)),
    invalidateNamespace: (namespace) => run("CacheClient.invalidateNamespace", Cache.invalidateNamespace(namespace)),
    clear: () => run("CacheClient.clear", Cache.clear),
    hashKey: (key, namespace) => run("CacheClient.hashKey", Cache.hashKey(key, namespace)),
    cleanupOrphanedObjects: (options) =>
      run("CacheClient.cleanupOrphanedObjects", Cache.cleanupOrphanedObjects(options)),
    stats: () => run("CacheClient.stats", Cache.stats),
    flush: () => run("CacheClient.flush", Cache.flush),
    ready: () => run("CacheClient.ready", Effect.void),
    close: () => (closing ??= runtime.dispose())
  }
  return client
}
