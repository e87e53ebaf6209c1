/**
 * The cache for code outside Effect: async functions in, Promises out.
 *
 * A client runs every call on one long-lived `ManagedRuntime` built from the layer you give it, once, on first use.
 * That runtime is the cache: its in-process state (single flight, the in-process tier), its connections and its
 * pending writes live there. Make one client per process (a module-level constant) and close it at shutdown. A layer
 * provided per request (`Effect.runPromise(effect.pipe(Effect.provide(Cache.layerEmbedded())))` in a handler) builds
 * a new, empty cache every time: the embedded cache's entries die with it, and such a cache never hits.
 *
 * Rejections are the errors themselves: the very object your function threw or rejected with (never a wrapper or a
 * copy), the `CacheError` of an administrative call, the layer's error when it failed to build, and a
 * `CacheClientError` for a client that is closed.
 *
 * @since 0.2.0
 */
import "./internal/effectVersion.js"
import type * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Cache from "./Cache.js"
import type * as CacheKey from "./CacheKey.js"
import type * as CacheMetrics from "./CacheMetrics.js"
import * as internal from "./internal/client.js"

/**
 * Options of one call: an `AbortSignal` that abandons it (the call rejects with `signal.reason`). A computation that
 * other callers share goes on for them; one left with no caller is interrupted.
 *
 * @since 0.2.0
 * @category models
 */
export interface CallOptions {
  readonly signal?: AbortSignal | undefined
}

/**
 * A cached async function: the arguments and the resolved type of the function it wraps. `with({ signal })` gives
 * the same function with options for its calls.
 *
 * @since 0.2.0
 * @category models
 */
export interface Wrapped<Args extends ReadonlyArray<any>, A> {
  (...args: Args): Promise<A>
  readonly with: (options: CallOptions) => (...args: Args) => Promise<A>
}

/**
 * @since 0.2.0
 * @category models
 */
export interface CacheClient {
  /**
   * An async function (or a plain one) as a cached function of the same arguments, like `Cache.wrap`: its identity
   * is a `name` (a call's key is the name and the arguments) or a `key` function of the arguments. The function runs
   * at most once per miss; a rejection reaches the caller as is and is never cached. A wrap without an identity
   * throws a `CacheInputError` at once.
   */
  readonly wrap: {
    <Args extends ReadonlyArray<CacheKey.CacheKey>, S extends Schema.Schema.AnyNoContext>(
      f: (...args: Args) => Schema.Schema.Type<S> | PromiseLike<Schema.Schema.Type<S>>,
      options: Cache.WrapOptions & {
        readonly name: string
        readonly key?: undefined
        readonly schema: S
        readonly format?: undefined
      }
    ): Wrapped<Args, Schema.Schema.Type<S>>
    <Args extends ReadonlyArray<any>, S extends Schema.Schema.AnyNoContext>(
      f: (...args: Args) => Schema.Schema.Type<S> | PromiseLike<Schema.Schema.Type<S>>,
      options: Cache.WrapOptions & {
        readonly key: (...args: Args) => CacheKey.CacheKey
        readonly name?: string | undefined
        readonly schema: S
        readonly format?: undefined
      }
    ): Wrapped<Args, Schema.Schema.Type<S>>
    <Args extends ReadonlyArray<CacheKey.CacheKey>, R>(
      f: (...args: Args) => R,
      options: Cache.WrapOptions & { readonly name: string; readonly key?: undefined; readonly schema?: undefined }
    ): Wrapped<Args, Awaited<R>>
    <Args extends ReadonlyArray<any>, R>(
      f: (...args: Args) => R,
      options: Cache.WrapOptions & {
        readonly key: (...args: Args) => CacheKey.CacheKey
        readonly name?: string | undefined
        readonly schema?: undefined
      }
    ): Wrapped<Args, Awaited<R>>
  }
  /**
   * One cached computation, like `Cache.cached`: a key (not a record), or the options of `Cache.cached`
   * (`{ key, namespace, ttl, format, schema, grace, … }`). `f` gets a signal that aborts when the computation is
   * interrupted (every caller gone, or the client closing). As in `Cache.cached`, a bad key or option never fails
   * the call: it is logged and `f` runs uncached.
   */
  readonly cached: {
    <S extends Schema.Schema.AnyNoContext>(
      options: Cache.CachedSchemaOptions<S>,
      f: (signal: AbortSignal) => Schema.Schema.Type<S> | PromiseLike<Schema.Schema.Type<S>>,
      callOptions?: CallOptions
    ): Promise<Schema.Schema.Type<S>>
    <R>(
      keyOrOptions: Cache.KeyShorthand | Cache.CachedOptions,
      f: (signal: AbortSignal) => R,
      callOptions?: CallOptions
    ): Promise<Awaited<R>>
  }
  /** `Cache.invalidate`: one entry by hash; true when something was removed */
  readonly invalidate: (hash: string, options?: { readonly namespace?: string | undefined }) => Promise<boolean>
  /** `Cache.invalidateKey`: one entry by key; a bad key or namespace rejects with a `CacheInputError` */
  readonly invalidateKey: (
    key: CacheKey.CacheKey,
    options?: { readonly namespace?: string | undefined }
  ) => Promise<boolean>
  /** `Cache.invalidateNamespace`: the number of entries removed */
  readonly invalidateNamespace: (namespace: string) => Promise<number>
  /** `Cache.clear`: every entry of every namespace; the number removed */
  readonly clear: () => Promise<number>
  /** `Cache.hashKey`: the entry hash of a key, for `invalidate` */
  readonly hashKey: (key: CacheKey.CacheKey, namespace?: string) => Promise<string>
  /** `Cache.cleanupOrphanedObjects` */
  readonly cleanupOrphanedObjects: (options?: Cache.CleanupOptions) => Promise<Cache.CleanupReport>
  /** `Cache.stats` */
  readonly stats: () => Promise<CacheMetrics.Stats>
  /** `Cache.flush`: wait until the writes pending now are stored */
  readonly flush: () => Promise<void>
  /**
   * Build the cache now rather than on the first call, so that a layer that cannot be built fails at start-up;
   * rejects with the layer's error.
   */
  readonly ready: () => Promise<void>
  /**
   * Close the cache: calls made from now on reject with a `CacheClientError`; calls in flight whose computation is
   * interrupted reject with one too; pending writes are stored (within the cache's `shutdownTimeout`), connections
   * closed, and the layer's other finalizers run. Resolves when that is done; calling it again returns the same
   * promise.
   */
  readonly close: () => Promise<void>
}

/**
 * A call on a client that is closed (`Closed`), or a call interrupted for another reason than its signal
 * (`Interrupted`).
 *
 * @since 0.2.0
 * @category errors
 */
export class CacheClientError extends Schema.TaggedError<CacheClientError>("@s3cache/core/CacheClientError")(
  "CacheClientError",
  {
    reason: Schema.Literal("Closed", "Interrupted"),
    method: Schema.String,
    description: Schema.String
  }
) {
  /**
   * @since 0.2.0
   */
  override get message(): string {
    return `${this.reason} (${this.method}): ${this.description}`
  }
}

/**
 * A client on `layer` (any layer that provides `Cache` and needs nothing: `Cache.layerEmbedded()`, `Cache.layer(…)`
 * with its stores provided). The layer is built once, on the first call (or `ready()`), and lives until `close()`.
 * A layer that fails to build rejects every call (and `ready()`) with its error: fix the cause and make a new
 * client.
 *
 * @example
 * import { Cache, CacheClient } from "@s3cache/core"
 *
 * interface User {
 *   readonly id: string
 *   readonly name: string
 * }
 * declare const db: { findUser(id: string): Promise<User> }
 *
 * // once per process: the cache lives as long as the client
 * const cache = CacheClient.make(Cache.layerEmbedded())
 *
 * // (id: string) => Promise<User>, cached by ("users.get", id)
 * const getUser = cache.wrap((id: string) => db.findUser(id), {
 *   name: "users.get",
 *   namespace: "users",
 *   ttl: "5 minutes"
 * })
 *
 * export const handler = async (id: string): Promise<User> => {
 *   const user = await getUser(id) // on failure: the very error db.findUser threw
 *   const total = await cache.cached({ key: ["report", id], ttl: "1 hour" }, async () => 42)
 *   return { ...user, name: `${user.name} (${total})` }
 * }
 *
 * // at shutdown: pending writes are stored, connections closed
 * process.once("SIGTERM", () => void cache.close())
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = <E>(layer: Layer.Layer<Cache.Cache, E>): CacheClient =>
  internal.make(layer, (reason, method, description) => new CacheClientError({ reason, method, description }))
