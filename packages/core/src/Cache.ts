/**
 * The public entry point: wrap an effect, and calls with the same key are answered from the cache.
 *
 * @example
 * import { Cache } from "@s3cache/core"
 * import * as Effect from "effect/Effect"
 *
 * const revenue = (year: number) =>
 *   Effect.promise(() => db.query("SELECT sum(amount) FROM orders WHERE year = $1", [year])).pipe(
 *     Cache.cached({ key: ["revenue", year], namespace: "reports", ttl: "10 minutes" })
 *   )
 *
 * Effect.runPromise(revenue(2025).pipe(Effect.provide(Cache.layerEmbedded())))
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as BlobStore from "./BlobStore.js"
import * as CacheConfig from "./CacheConfig.js"
import type { BlobStoreError, CacheError, CacheInputError } from "./CacheError.js"
import type * as CacheKey from "./CacheKey.js"
import type * as CacheMetrics from "./CacheMetrics.js"
import * as internal from "./internal/cache.js"
import * as MetadataStore from "./MetadataStore.js"
import type { Format } from "./Serializer.js"

/**
 * Options of one cached call.
 *
 * @since 0.1.0
 * @category models
 */
export interface CachedOptions<A = any> {
  /** a string (whitespace-normalized) or any structured value (stable encoding); see `CacheKey` */
  readonly key: CacheKey.CacheKey
  /** default: the cache's `namespace` option */
  readonly namespace?: string | undefined
  /** default: the cache's `defaultTtl` */
  readonly ttl?: Duration.DurationInput | undefined
  /** default: the cache's `serializationFormat` (`"auto"`) */
  readonly format?: Format | undefined
  /** store the value through this schema (`schema-json`); a stored value that no longer decodes is a miss */
  readonly schema?: Schema.Schema<A, any, never> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface CleanupOptions {
  /** the grace age: younger objects are never deleted (an upload whose record is not written yet); default 1 hour */
  readonly olderThan?: Duration.DurationInput | undefined
  /** report without deleting; default false */
  readonly dryRun?: boolean | undefined
  /** objects checked and deleted per batch, 1–1000; default 500 */
  readonly batchSize?: number | undefined
}

/**
 * What `cleanupOrphanedObjects` did. `listed = tooYoung + referenced + foreign + orphaned`.
 *
 * @since 0.1.0
 * @category models
 */
export interface CleanupReport {
  readonly dryRun: boolean
  /** objects seen */
  readonly listed: number
  /** kept: younger than the grace age */
  readonly tooYoung: number
  /** kept: a live record points at them */
  readonly referenced: number
  /** kept: not named like a cache object, so not ours to judge */
  readonly foreign: number
  /** no record points at them (deleted unless `dryRun`) */
  readonly orphaned: number
  readonly deleted: number
  readonly failed: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly config: CacheConfig.Resolved
  readonly cached: <A, E, R>(effect: Effect.Effect<A, E, R>, options: CachedOptions<A>) => Effect.Effect<A, E, R>
  /** remove one entry by hash; in every known namespace unless one is named; true when something was removed */
  readonly invalidate: (
    hash: string,
    options?: { readonly namespace?: string | undefined }
  ) => Effect.Effect<boolean, CacheError>
  readonly invalidateKey: (
    key: CacheKey.CacheKey,
    options?: { readonly namespace?: string | undefined }
  ) => Effect.Effect<boolean, CacheError>
  /** remove every entry of one namespace; other namespaces are untouched; returns the number removed */
  readonly invalidateNamespace: (namespace: string) => Effect.Effect<number, CacheError>
  /** remove every entry of every namespace; returns the number removed */
  readonly clear: Effect.Effect<number, CacheError>
  readonly cleanupOrphanedObjects: (options?: CleanupOptions) => Effect.Effect<CleanupReport, CacheError>
  readonly stats: Effect.Effect<CacheMetrics.Stats>
  readonly hashKey: (key: CacheKey.CacheKey, namespace?: string) => Effect.Effect<string, CacheInputError>
  /** wait until no background write is pending (each is stored, or failed and was reported) */
  readonly flush: Effect.Effect<void>
  /** computations in flight in this process */
  readonly inFlight: Effect.Effect<number>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Cache extends Context.Tag("@s3cache/core/Cache")<Cache, Service>() {}

/**
 * Is `u` the options of a call, rather than a key? Only a plain object with a `key` property is; to use such an
 * object itself as a key, wrap it: `{ key: { key: … } }`.
 */
const isCachedOptions = (u: unknown): u is CachedOptions => {
  if (typeof u !== "object" || u === null || Array.isArray(u)) return false
  const prototype = Object.getPrototypeOf(u)
  return (prototype === Object.prototype || prototype === null) && Object.hasOwn(u, "key")
}

const toOptions = <A>(keyOrOptions: CacheKey.CacheKey | CachedOptions<A>): CachedOptions<A> =>
  isCachedOptions(keyOrOptions) ? keyOrOptions : { key: keyOrOptions }

/**
 * Answer `effect` from the cache, or run it and store its value in the background. The effect's own errors pass
 * through untouched and are never cached; a failing or slow cache never fails the call (fail-open). Concurrent
 * calls of one key in one process share one run.
 *
 * The second argument is a key (string or structured value) or the call's options (a plain object with `key`).
 *
 * @example
 * import { Cache } from "@s3cache/core"
 * import * as Effect from "effect/Effect"
 *
 * const users = Effect.promise(() => fetchUsers())
 *
 * // data-first, key only
 * const a = Cache.cached(users, "SELECT * FROM users")
 * // data-last, with options
 * const b = users.pipe(Cache.cached({ key: ["users", 1], namespace: "api", ttl: "5 minutes" }))
 *
 * @since 0.1.0
 * @category combinators
 */
export const cached: {
  (keyOrOptions: CacheKey.CacheKey | CachedOptions): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<
    A,
    E,
    R | Cache
  >
  <A, E, R>(self: Effect.Effect<A, E, R>, keyOrOptions: CacheKey.CacheKey | CachedOptions<A>): Effect.Effect<
    A,
    E,
    R | Cache
  >
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R>(self: Effect.Effect<A, E, R>, keyOrOptions: CacheKey.CacheKey | CachedOptions<A>) =>
    Effect.flatMap(Cache, (cache) => cache.cached(self, toOptions(keyOrOptions)))
)

/**
 * @since 0.1.0
 * @category models
 */
export interface WrapOptions<Args extends ReadonlyArray<any>, A> extends Omit<CachedOptions<A>, "key" | "namespace"> {
  readonly namespace: string
  /** the key of a call; default: the function's name and its arguments */
  readonly key?: ((...args: Args) => CacheKey.CacheKey) | undefined
}

/**
 * Turn a function returning an effect into a cached function of the same arguments (the seed's decorator).
 *
 * @example
 * import { Cache } from "@s3cache/core"
 * import * as Effect from "effect/Effect"
 *
 * const getUser = Cache.wrap(
 *   (id: number) => Effect.promise(() => db.users.find(id)),
 *   { namespace: "users", ttl: "1 hour" }
 * )
 * // getUser(42): Effect<User, never, Cache>
 *
 * @since 0.1.0
 * @category combinators
 */
export const wrap = <Args extends ReadonlyArray<any>, A, E, R>(
  f: (...args: Args) => Effect.Effect<A, E, R>,
  options: WrapOptions<Args, A>
): (...args: Args) => Effect.Effect<A, E, R | Cache> =>
(...args) =>
  cached(f(...args), {
    ...options,
    key: options.key !== undefined ? options.key(...args) : { function: f.name, args }
  })

/**
 * @since 0.1.0
 * @category accessors
 */
export const invalidate = (
  hash: string,
  options?: { readonly namespace?: string | undefined }
): Effect.Effect<boolean, CacheError, Cache> => Effect.flatMap(Cache, (cache) => cache.invalidate(hash, options))

/**
 * @since 0.1.0
 * @category accessors
 */
export const invalidateKey = (
  key: CacheKey.CacheKey,
  options?: { readonly namespace?: string | undefined }
): Effect.Effect<boolean, CacheError, Cache> => Effect.flatMap(Cache, (cache) => cache.invalidateKey(key, options))

/**
 * @since 0.1.0
 * @category accessors
 */
export const invalidateNamespace = (namespace: string): Effect.Effect<number, CacheError, Cache> =>
  Effect.flatMap(Cache, (cache) => cache.invalidateNamespace(namespace))

/**
 * @since 0.1.0
 * @category accessors
 */
export const clear: Effect.Effect<number, CacheError, Cache> = Effect.flatMap(Cache, (cache) => cache.clear)

/**
 * Delete objects that no record points at (a crash between upload and record, expired or replaced entries), page
 * by page and in batches, never touching objects younger than the grace age.
 *
 * @since 0.1.0
 * @category accessors
 */
export const cleanupOrphanedObjects = (options?: CleanupOptions): Effect.Effect<CleanupReport, CacheError, Cache> =>
  Effect.flatMap(Cache, (cache) => cache.cleanupOrphanedObjects(options))

/**
 * @since 0.1.0
 * @category accessors
 */
export const stats: Effect.Effect<CacheMetrics.Stats, never, Cache> = Effect.flatMap(Cache, (cache) => cache.stats)

/**
 * Wait until no background write is pending. Closing the layer does this too (bounded by
 * `shutdownTimeout`); call it where a value must be stored before going on, e.g. before handing work to another
 * process.
 *
 * @since 0.1.0
 * @category accessors
 */
export const flush: Effect.Effect<void, never, Cache> = Effect.flatMap(Cache, (cache) => cache.flush)

/**
 * The entry hash of a key, as this cache computes it (namespace and `keyVersion` included).
 *
 * @since 0.1.0
 * @category accessors
 */
export const hashKey = (key: CacheKey.CacheKey, namespace?: string): Effect.Effect<string, CacheInputError, Cache> =>
  Effect.flatMap(Cache, (cache) => cache.hashKey(key, namespace))

/**
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options?: CacheConfig.Options
) => Effect.Effect<Service, CacheInputError, MetadataStore.MetadataStore | BlobStore.BlobStore | Scope.Scope> = (
  options = {}
) => internal.make(options)

/**
 * The cache on the metadata and blob stores you provide. Closing the layer waits up to `shutdownTimeout` for
 * pending background writes.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: CacheConfig.Options = {}
): Layer.Layer<Cache, CacheInputError, MetadataStore.MetadataStore | BlobStore.BlobStore> =>
  Layer.scoped(Cache, make(options))

/**
 * `layer`, with options read from `S3CACHE_*` variables (see `CacheConfig.config`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config<CacheConfig.Options> = CacheConfig.config
): Layer.Layer<Cache, CacheInputError | ConfigError.ConfigError, MetadataStore.MetadataStore | BlobStore.BlobStore> =>
  Layer.scoped(Cache, Effect.flatMap(config, make))

/**
 * @since 0.1.0
 * @category models
 */
export interface EmbeddedOptions extends CacheConfig.Options {
  /** `"local"` (default): payloads in `localPath`; `"memory"`: payloads in the process */
  readonly storageBackend?: "local" | "memory" | undefined
  /** default `<os tmp>/query_cache` */
  readonly localPath?: string | undefined
}

/**
 * The embedded default: in-memory metadata and payloads in a local folder; no server at all. Entries live as long as
 * the process; objects left in the folder by earlier processes are orphans for `cleanupOrphanedObjects`.
 *
 * @example
 * import { Cache } from "@s3cache/core"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.succeed(42).pipe(Cache.cached("answer"))
 * Effect.runPromise(program.pipe(Effect.provide(Cache.layerEmbedded())))
 *
 * @since 0.1.0
 * @category layers
 */
export const layerEmbedded = (options: EmbeddedOptions = {}): Layer.Layer<Cache, CacheInputError | BlobStoreError> =>
  layer(options).pipe(
    Layer.provide(Layer.merge(
      MetadataStore.layerMemory,
      options.storageBackend === "memory"
        ? BlobStore.layerMemory
        : BlobStore.layerLocal({ directory: options.localPath })
    ))
  )

/**
 * `layerEmbedded`, with options read from `S3CACHE_*` variables: those of `CacheConfig.config`, plus
 * `S3CACHE_STORAGE_BACKEND` (`local` or `memory`) and `S3CACHE_LOCAL_PATH`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerEmbeddedConfig = (
  config: Config.Config<EmbeddedOptions> = embeddedConfig
): Layer.Layer<Cache, CacheInputError | BlobStoreError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(config, layerEmbedded))

/**
 * The options of `layerEmbedded` from `S3CACHE_*` variables: those of `CacheConfig.config`, plus
 * `S3CACHE_STORAGE_BACKEND` (`local` or `memory`) and `S3CACHE_LOCAL_PATH`.
 *
 * @since 0.1.0
 * @category config
 */
export const embeddedConfig: Config.Config<EmbeddedOptions> = Config.all({
  options: CacheConfig.config,
  storageBackend: Config.option(Config.literal("local", "memory")("S3CACHE_STORAGE_BACKEND")),
  localPath: Config.option(Config.string("S3CACHE_LOCAL_PATH"))
}).pipe(Config.map(({ localPath, options, storageBackend }) => ({
  ...options,
  storageBackend: Option.getOrUndefined(storageBackend),
  localPath: Option.getOrUndefined(localPath)
})))
