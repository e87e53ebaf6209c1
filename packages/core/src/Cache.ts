/**
 * The public entry point: wrap an effect, and calls with the same key are answered from the cache.
 *
 * @example
 * import { Cache } from "@s3cache/core"
 * import * as Effect from "effect/Effect"
 *
 * declare const db: { query(sql: string, params: ReadonlyArray<unknown>): Promise<number> }
 *
 * const revenue = (year: number) =>
 *   Effect.promise(() => db.query("SELECT sum(amount) FROM orders WHERE year = $1", [year])).pipe(
 *     Cache.cached({ key: ["revenue", year], namespace: "reports", ttl: "10 minutes" })
 *   )
 *
 * // no server needed: in-memory metadata, payloads in a local folder; run it with Effect.runPromise(program)
 * const program = revenue(2025).pipe(Effect.provide(Cache.layerEmbedded()))
 *
 * @since 0.1.0
 */
import "./internal/effectVersion.js"
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
import * as CacheBus from "./CacheBus.js"
import * as CacheConfig from "./CacheConfig.js"
import { type BlobStoreError, type CacheError, CacheInputError } from "./CacheError.js"
import type * as CacheFailSafe from "./CacheFailSafe.js"
import type * as CacheKey from "./CacheKey.js"
import type * as CacheMetrics from "./CacheMetrics.js"
import * as internal from "./internal/cache.js"
import { embedded as embeddedChurn } from "./internal/embeddedChurn.js"
import * as maintenance from "./internal/maintenance.js"
import * as MetadataStore from "./MetadataStore.js"
import type { Format } from "./Serializer.js"

/**
 * A key given directly as the second argument of `cached`: anything but a plain record, which would be ambiguous
 * with the options. A record key goes in the options: `{ key: { … } }`.
 *
 * @since 0.1.0
 * @category models
 */
export type KeyShorthand = Exclude<CacheKey.CacheKey, { readonly [field: string]: CacheKey.CacheKey | undefined }>

/**
 * Options of one cached call, without a schema.
 *
 * @since 0.1.0
 * @category models
 */
export interface CachedOptions extends CacheFailSafe.Options {
  /** a string (whitespace-normalized outside quoted literals) or a structured value (stable encoding); `CacheKey` */
  readonly key: CacheKey.CacheKey
  /** default: the cache's `namespace` option */
  readonly namespace?: string | undefined
  /** default: the cache's `defaultTtl` */
  readonly ttl?: Duration.DurationInput | undefined
  /** default: the cache's `serializationFormat` (`"auto"`); see `Serializer` for what each format keeps */
  readonly format?: Format | undefined
  readonly schema?: undefined
  /** how long the value may live in the in-process tier (never past `ttl`); 0: not kept there; default `l1Ttl` */
  readonly l1Ttl?: Duration.DurationInput | undefined
}

/**
 * Options of one cached call that stores its value through a schema (`schema-json`): Dates, BigInts, classes and
 * brands round-trip, and a stored value that no longer decodes is a miss. The effect must produce the schema's type.
 *
 * @since 0.1.0
 * @category models
 */
export interface CachedSchemaOptions<S extends Schema.Schema.AnyNoContext> extends CacheFailSafe.Options {
  readonly key: CacheKey.CacheKey
  readonly namespace?: string | undefined
  readonly ttl?: Duration.DurationInput | undefined
  readonly schema: S
  /** the schema decides the format */
  readonly format?: undefined
  readonly l1Ttl?: Duration.DurationInput | undefined
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
  /**
   * called after each batch with the report so far (for a progress bar); it runs before the next batch is checked
   *
   * @since 0.2.0
   */
  readonly progress?: ((report: CleanupReport) => Effect.Effect<void>) | undefined
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
  readonly cached: {
    <S extends Schema.Schema.AnyNoContext, E, R>(
      effect: Effect.Effect<Schema.Schema.Type<S>, E, R>,
      options: CachedSchemaOptions<S>
    ): Effect.Effect<Schema.Schema.Type<S>, E, R>
    <A, E, R>(effect: Effect.Effect<A, E, R>, keyOrOptions: KeyShorthand | CachedOptions): Effect.Effect<A, E, R>
  }
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
  /**
   * wait until the background refreshes and writes pending now are done (each stored, or failed and reported), with
   * the lock releases that follow them; writes queued later are not waited for. A refresh runs the user's effect: one
   * that never ends keeps `flush` waiting (bound it with `Effect.timeout`).
   */
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
 * Answer `effect` from the cache, or run it and store its value in the background. The effect's own errors pass
 * through untouched and are never cached; a failing or slow cache never fails the call (fail-open). Concurrent
 * calls of one key in one process share one run, and each gets a value of its own.
 *
 * The second argument is a key (a string, a number, an array, …) or the call's options (`{ key, … }`); a record used
 * as a key goes in the options, so a misspelt option is a type error, never a key.
 *
 * @example
 * import { Cache } from "@s3cache/core"
 * import * as Effect from "effect/Effect"
 * import * as Schema from "effect/Schema"
 *
 * declare const fetchUsers: () => Promise<ReadonlyArray<{ readonly id: number; readonly name: string }>>
 *
 * const users = Effect.promise(() => fetchUsers())
 *
 * // data-first, key only
 * const a = Cache.cached(users, "SELECT * FROM users")
 * // data-last, with options
 * const b = users.pipe(Cache.cached({ key: { table: "users", page: 1 }, namespace: "api", ttl: "5 minutes" }))
 * // typed storage: the effect must produce the schema's type
 * const c = Effect.succeed({ at: new Date() }).pipe(
 *   Cache.cached({ key: "now", schema: Schema.Struct({ at: Schema.Date }) })
 * )
 *
 * @since 0.1.0
 * @category combinators
 */
export const cached: {
  <S extends Schema.Schema.AnyNoContext>(
    options: CachedSchemaOptions<S>
  ): <E, R>(self: Effect.Effect<Schema.Schema.Type<S>, E, R>) => Effect.Effect<Schema.Schema.Type<S>, E, R | Cache>
  (keyOrOptions: KeyShorthand | CachedOptions): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<
    A,
    E,
    R | Cache
  >
  <S extends Schema.Schema.AnyNoContext, E, R>(
    self: Effect.Effect<Schema.Schema.Type<S>, E, R>,
    options: CachedSchemaOptions<S>
  ): Effect.Effect<Schema.Schema.Type<S>, E, R | Cache>
  <A, E, R>(self: Effect.Effect<A, E, R>, keyOrOptions: KeyShorthand | CachedOptions): Effect.Effect<A, E, R | Cache>
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R>(self: Effect.Effect<A, E, R>, keyOrOptions: KeyShorthand | CachedOptions) =>
    Effect.flatMap(Cache, (cache) => cache.cached(self, keyOrOptions))
)

/**
 * Options of `wrap` besides the function's identity.
 *
 * @since 0.1.0
 * @category models
 */
export interface WrapOptions extends CacheFailSafe.Options {
  readonly namespace?: string | undefined
  readonly ttl?: Duration.DurationInput | undefined
  readonly format?: Format | undefined
  readonly l1Ttl?: Duration.DurationInput | undefined
}

/**
 * The identity of a wrapped function: a `name` (the key of a call is the name and the arguments), or a `key`
 * function of the arguments. Two wrapped functions share entries only when they are given the same name, or key
 * functions that return the same keys.
 *
 * @since 0.1.0
 * @category models
 */
export type WrapIdentity<Args extends ReadonlyArray<any>> =
  | { readonly name: string; readonly key?: undefined }
  | { readonly key: (...args: Args) => CacheKey.CacheKey; readonly name?: string | undefined }

/**
 * Turn a function returning an effect into a cached function of the same arguments (the seed's decorator). It needs
 * an identity: a `name`, or a `key` function; without one, two inline functions would share entries.
 *
 * @example
 * import { Cache } from "@s3cache/core"
 * import * as Effect from "effect/Effect"
 *
 * interface User {
 *   readonly id: number
 *   readonly name: string
 * }
 * declare const db: {
 *   readonly users: { find(id: number): Promise<User> }
 *   search(query: string): Promise<ReadonlyArray<User>>
 * }
 *
 * const getUser = Cache.wrap((id: number) => Effect.promise(() => db.users.find(id)), {
 *   name: "getUser",
 *   namespace: "users",
 *   ttl: "1 hour"
 * })
 * // getUser(42): Effect<User, never, Cache>
 *
 * const search = Cache.wrap((query: string, _traceId: string) => Effect.promise(() => db.search(query)), {
 *   key: (query) => ["search", query] // the trace id is not part of the key
 * })
 *
 * @since 0.1.0
 * @category combinators
 */
export const wrap: {
  <Args extends ReadonlyArray<CacheKey.CacheKey>, S extends Schema.Schema.AnyNoContext, E, R>(
    f: (...args: Args) => Effect.Effect<Schema.Schema.Type<S>, E, R>,
    options: WrapOptions & {
      readonly name: string
      readonly key?: undefined
      readonly schema: S
      readonly format?: undefined
    }
  ): (...args: Args) => Effect.Effect<Schema.Schema.Type<S>, E, R | Cache>
  <Args extends ReadonlyArray<any>, S extends Schema.Schema.AnyNoContext, E, R>(
    f: (...args: Args) => Effect.Effect<Schema.Schema.Type<S>, E, R>,
    options: WrapOptions & {
      readonly key: (...args: Args) => CacheKey.CacheKey
      readonly name?: string | undefined
      readonly schema: S
      readonly format?: undefined
    }
  ): (...args: Args) => Effect.Effect<Schema.Schema.Type<S>, E, R | Cache>
  <Args extends ReadonlyArray<CacheKey.CacheKey>, A, E, R>(
    f: (...args: Args) => Effect.Effect<A, E, R>,
    options: WrapOptions & { readonly name: string; readonly key?: undefined; readonly schema?: undefined }
  ): (...args: Args) => Effect.Effect<A, E, R | Cache>
  <Args extends ReadonlyArray<any>, A, E, R>(
    f: (...args: Args) => Effect.Effect<A, E, R>,
    options: WrapOptions & {
      readonly key: (...args: Args) => CacheKey.CacheKey
      readonly name?: string | undefined
      readonly schema?: undefined
    }
  ): (...args: Args) => Effect.Effect<A, E, R | Cache>
} = <Args extends ReadonlyArray<any>, A, E, R>(
  f: (...args: Args) => Effect.Effect<A, E, R>,
  options: WrapOptions & WrapIdentity<Args> & { readonly schema?: Schema.Schema.AnyNoContext | undefined }
): (...args: Args) => Effect.Effect<A, E, R | Cache> => {
  const { key, name, ...rest } = options
  if (typeof key !== "function" && (typeof name !== "string" || name.trim().length === 0)) {
    // found when the module loads, not on some later call: the definition itself is wrong
    throw new CacheInputError({
      reason: "InvalidOption",
      method: "Cache.wrap",
      description: "give the wrapped function an identity: a `name` (its calls are keyed by the name and the " +
        "arguments) or a `key` function of the arguments; without one, two inline functions would share entries"
    })
  }
  return (...args) =>
    Effect.flatMap(Cache, (cache) =>
      cache.cached(f(...args), {
        ...rest,
        key: typeof key === "function" ? key(...args) : { function: name!, args: args as ReadonlyArray<any> }
      } as CachedOptions))
}

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
 * Wait until the background writes pending now are done (writes queued later are not waited for, so it returns under
 * steady load too). Closing the layer waits for every pending write (bounded by
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
  /** default `BlobStore.defaultLocalPath`: `<os tmp>/query_cache-<uid>`, one folder per user */
  readonly localPath?: string | undefined
}

/**
 * The embedded default: in-memory metadata and payloads in a local folder; no server at all. Entries live as long as
 * the layer: closing it waits for pending writes, then deletes the objects it wrote (nobody else could tell they are
 * orphans, since the records that referenced them die with the process). Objects are written under the metadata
 * store's random id, so several processes may share one folder without touching each other's objects; those of a
 * process that crashed stay in `<localPath>/<id>/` until removed by hand.
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
  Layer.scoped(
    Cache,
    Effect.gen(function*() {
      const metadata = yield* MetadataStore.makeMemory
      const local = options.storageBackend !== "memory"
      const blobs = local
        ? yield* Effect.provide(BlobStore.BlobStore, BlobStore.layerLocal({ directory: options.localPath }))
        : yield* BlobStore.makeMemory
      // added before the cache, so it runs after the cache's own finalizers: pending writes are done by then
      if (local) yield* Effect.addFinalizer(() => maintenance.purge(metadata, blobs))
      // the records live in this process: a bus of its own keeps its in-process tier (l1MaxEntries) coherent
      return yield* make(options).pipe(
        Effect.provideService(MetadataStore.MetadataStore, metadata),
        Effect.provideService(BlobStore.BlobStore, blobs),
        Effect.provideService(CacheBus.CacheBus, yield* CacheBus.makeLocal),
        Effect.tap(embeddedChurn.track) // warns when caches built per request die without a hit
      )
    })
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
