/**
 * The Redis metadata store: entry records, the LRU index, stampede locks, the namespace registry and the store id in
 * Redis (standalone or Cluster), every multi-step change one atomic Lua script, one round trip per lookup.
 *
 * The layer builds even when Redis is down: calls then fail fast, the cache runs uncached (fail-open), and the
 * client reconnects by itself. The store id is read at first use, not at build time, for the same reason.
 *
 * Run Redis with `maxmemory-policy noeviction` (or `volatile-lru` / `volatile-ttl`): under `allkeys-*` Redis may evict
 * the indexes and the store id (see the package README).
 *
 * @example
 * import { Cache } from "@s3cache/core"
 * import { RedisMetadataStore } from "@s3cache/redis"
 * import { S3BlobStore } from "@s3cache/s3"
 * import * as Layer from "effect/Layer"
 *
 * const CacheLive = Cache.layer({ namespace: "reports" }).pipe(
 *   Layer.provide(RedisMetadataStore.layer({ url: "redis://localhost:6379/0" })),
 *   Layer.provide(S3BlobStore.layer({ bucket: "my-cache-bucket", region: "eu-west-1" }))
 * )
 *
 * @since 0.1.0
 */
import * as CacheBus from "@s3cache/core/CacheBus"
import * as CacheConfig from "@s3cache/core/CacheConfig"
import { CacheInputError } from "@s3cache/core/CacheError"
import { MetadataStore } from "@s3cache/core/MetadataStore"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type { ClusterOptions, RedisOptions } from "ioredis"
import * as bus from "./internal/bus.js"
import * as client from "./internal/client.js"
import { ConfigError, Either } from "./internal/effect3.js"
import * as store from "./internal/store.js"

/**
 * A client of your own for `Options.client`: an ioredis `Redis` or `Cluster` of major 5 or 6, whichever major this
 * package resolves as its `ioredis` peer, with any `protocol` and `replyMapping`.
 *
 * @since 0.1.0
 * @category models
 */
export type Client = client.Client

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `redis://[user:password@]host:port/db`, or `rediss://` for TLS; default `redis://localhost:6379/0` */
  readonly url?: string | undefined
  /** the nodes of a Redis Cluster (instead of `url`) */
  readonly nodes?: ReadonlyArray<{ readonly host: string; readonly port: number }> | undefined
  /**
   * A client you own and close yourself (instead of `url` or `nodes`). Give it the bounded options this package uses
   * (no offline queue, `commandTimeout`, `maxRetriesPerRequest: 0`): an ioredis client with defaults hangs on faults.
   */
  readonly client?: Client | undefined
  readonly username?: string | undefined
  /** overrides a password in the URL */
  readonly password?: Redacted.Redacted | undefined
  /** prefix of every key; default `"qc:"`; may not contain `{` or `}` (they would break the hash tags) */
  readonly keyPrefix?: string | undefined
  /** deadline of one command on the wire; default 250 ms */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /** deadline of one connection attempt; default 1 s */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /**
   * How long building the layer waits for the first connection before going on (uncached until Redis answers);
   * default: `connectTimeout`. Building never fails because Redis is down.
   */
  readonly awaitReady?: Duration.DurationInput | undefined
  /** records removed per `clearNamespace` step (one script call); default 500 */
  readonly removeBatchSize?: number | undefined
  /**
   * The precision of the LRU order: a hit writes its entry's last-access score only when the score is older than
   * this, so a hot key costs Redis a read (ZSCORE), not a write that reorders the index on every hit. Entries
   * accessed within one resolution of each other may be evicted in either order. 0: every hit writes. Default 1 s.
   */
  readonly lruResolution?: Duration.DurationInput | undefined
  /**
   * Shards per namespace, 1 to 1024 (default 1): each is a hash tag of its own, so on a Redis Cluster a namespace
   * spreads over this many slots (and up to as many nodes) instead of one; each shard keeps its share of
   * `maxCacheEntries`. Every process of a deployment must use the same value: a process with another one does not
   * find the others' entries, nor do its invalidations reach them. Change it as you would start a new cache: clear
   * the namespaces first. See "Scaling" in the README.
   */
  readonly slotsPerNamespace?: number | undefined
  /**
   * extra ioredis options, applied last (they can undo the bounded defaults: take care); typed by the ioredis you
   * installed, so with ioredis 6 they include `protocol` and `replyMapping`
   */
  readonly redisOptions?: RedisOptions | undefined
  readonly clusterOptions?: ClusterOptions | undefined
}

const keyPrefixPattern = /^[A-Za-z0-9_.:-]{0,64}$/

const invalid = (description: string) =>
  new CacheInputError({ reason: "InvalidOption", method: "RedisMetadataStore.make", description })

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<MetadataStore["Type"], CacheInputError, Scope.Scope> => Effect.map(connect(options), (_) => _.store)

/**
 * The store and, on a connection of its own, the bus (`CacheBus`) on the channel `<keyPrefix>bus`: writes and
 * invalidations reach every instance's in-process tier, and callers waiting for another process's computation wake
 * when it commits.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeWithBus = (
  options: Options = {}
): Effect.Effect<
  { readonly store: MetadataStore["Type"]; readonly bus: CacheBus.CacheBus["Type"] },
  CacheInputError,
  Scope.Scope
> =>
  Effect.flatMap(
    connect(options),
    ({ commandTimeoutMs, keyPrefix, redis, store }) =>
      Effect.map(bus.make(redis, `${keyPrefix}bus`, commandTimeoutMs), (bus) => ({ store, bus }))
  )

const connect = (options: Options) =>
  Effect.gen(function*() {
    const method = "RedisMetadataStore.make"
    const keyPrefix = options.keyPrefix ?? "qc:"
    if (!keyPrefixPattern.test(keyPrefix)) {
      return yield* invalid(
        `keyPrefix ${JSON.stringify(keyPrefix.slice(0, 80))} is not allowed: use up to 64 of [A-Za-z0-9_.:-] ` +
          "(braces would break the {namespace} hash tags)"
      )
    }
    const removeBatchSize = options.removeBatchSize ?? 500
    if (!Number.isSafeInteger(removeBatchSize) || removeBatchSize < 1) {
      return yield* invalid(`removeBatchSize must be a positive integer (got ${String(removeBatchSize)})`)
    }
    const slotsPerNamespace = options.slotsPerNamespace ?? 1
    if (!Number.isSafeInteger(slotsPerNamespace) || slotsPerNamespace < 1 || slotsPerNamespace > 1024) {
      return yield* invalid(`slotsPerNamespace must be an integer from 1 to 1024 (got ${String(slotsPerNamespace)})`)
    }
    const lruResolution = yield* CacheConfig.nonNegativeDuration(
      options.lruResolution ?? "1 second",
      "lruResolution",
      method
    )
    if ([options.url, options.nodes, options.client].filter((_) => _ !== undefined).length > 1) {
      return yield* invalid("give one of url, nodes or client")
    }
    if (options.url !== undefined) {
      const problem = client.checkUrl(options.url)
      if (problem !== undefined) return yield* invalid(problem)
    }
    const commandTimeout = yield* CacheConfig.positiveDuration(
      options.commandTimeout ?? "250 millis",
      "commandTimeout",
      method
    )
    const connectTimeout = yield* CacheConfig.positiveDuration(
      options.connectTimeout ?? "1 second",
      "connectTimeout",
      method
    )
    const awaitReady = options.awaitReady === undefined
      ? connectTimeout
      : Option.getOrElse(Duration.decodeUnknown(options.awaitReady), () => connectTimeout)

    let refused: string | undefined
    const redis = options.client !== undefined ? options.client : yield* Effect.acquireRelease(
      Effect.sync(() => {
        const owned = client.create({
          url: options.url ?? (options.nodes === undefined ? "redis://localhost:6379/0" : undefined),
          nodes: options.nodes,
          username: options.username,
          password: options.password,
          commandTimeoutMs: Duration.toMillis(commandTimeout),
          connectTimeoutMs: Duration.toMillis(connectTimeout),
          redisOptions: options.redisOptions,
          clusterOptions: options.clusterOptions
        })
        // without a listener, a connection error is an unhandled 'error' event and kills the process; the commands
        // that fail meanwhile are reported by the cache. A database the server does not have is refused on every
        // connection, after which ioredis would send every command to database 0: the client is closed instead.
        owned.on("error", (error: Error) => {
          if (client.isDatabaseRefusal(error)) {
            refused = error.message
            owned.disconnect()
          }
        })
        owned.connect().catch(() => {})
        return owned
      }),
      (owned) =>
        Effect.promise(() => owned.quit().catch(() => undefined)).pipe(
          Effect.timeout(connectTimeout),
          Effect.ignore,
          Effect.ensuring(Effect.sync(() => owned.disconnect()))
        )
    )
    yield* waitUntilReady(redis, awaitReady, () => refused !== undefined)
    if (refused !== undefined) {
      return yield* invalid(
        `Redis refused the database of the url (${refused}): the server has fewer databases (its \`databases\` ` +
          "setting, 16 by default; a Cluster has only 0). Fix the /<db> at the end of the url (S3CACHE_REDIS_URL); " +
          "nothing was sent to another database"
      )
    }
    return {
      commandTimeoutMs: Duration.toMillis(commandTimeout),
      keyPrefix,
      redis,
      store: store.make(client.defineScripts(redis), {
        keyPrefix,
        removeBatchSize,
        lruResolutionUs: Math.round(Duration.toMillis(lruResolution) * 1000),
        slotsPerNamespace
      })
    }
  })

/** Wait for the client to be ready, at most `budget`; `closed`: it was closed on purpose (then no wait, no warning). */
const waitUntilReady = (redis: client.Client, budget: Duration.Duration, closed: () => boolean) =>
  Effect.async<void>((resume) => {
    if (redis.status === "ready" || closed()) return resume(Effect.void)
    const onReady = () => resume(Effect.void)
    redis.once("ready", onReady)
    redis.once("end", onReady)
    return Effect.sync(() => {
      redis.off("ready", onReady)
      redis.off("end", onReady)
    })
  }).pipe(
    Effect.timeoutOption(budget),
    Effect.flatMap(Option.match({
      onNone: () =>
        closed() ? Effect.void : Effect.logWarning(
          `s3cache: Redis did not answer within ${Duration.format(budget)}; the cache runs uncached until it does`
        ),
      onSome: () => Effect.void
    }))
  )

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<MetadataStore | CacheBus.CacheBus, CacheInputError> =>
  Layer.scopedContext(
    Effect.map(
      makeWithBus(options),
      ({ bus, store }) => Context.make(MetadataStore, store).pipe(Context.add(CacheBus.CacheBus, bus))
    )
  )

/**
 * Options from `S3CACHE_*` variables: `S3CACHE_REDIS_URL`, `S3CACHE_REDIS_CLUSTER_NODES` (`host:port,host:port`),
 * `S3CACHE_REDIS_USERNAME`, `S3CACHE_REDIS_PASSWORD`, `S3CACHE_REDIS_KEY_PREFIX`, `S3CACHE_REDIS_COMMAND_TIMEOUT`,
 * `S3CACHE_REDIS_CONNECT_TIMEOUT`, `S3CACHE_REDIS_LRU_RESOLUTION`, `S3CACHE_REDIS_SLOTS_PER_NAMESPACE`.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.nested(
  Config.all({
    url: Config.option(Config.string("URL")),
    nodes: Config.option(Config.array(Config.string(), "CLUSTER_NODES")),
    username: Config.option(Config.string("USERNAME")),
    password: Config.option(Config.redacted("PASSWORD")),
    keyPrefix: Config.option(Config.string("KEY_PREFIX")),
    commandTimeout: Config.option(CacheConfig.duration("COMMAND_TIMEOUT")),
    connectTimeout: Config.option(CacheConfig.duration("CONNECT_TIMEOUT")),
    lruResolution: Config.option(CacheConfig.duration("LRU_RESOLUTION")),
    slotsPerNamespace: Config.option(Config.integer("SLOTS_PER_NAMESPACE"))
  }).pipe(Config.mapOrFail(({ nodes, ...rest }) => {
    const options: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(rest) as Array<[string, Option.Option<unknown>]>) {
      if (Option.isSome(value)) options[key] = value.value
    }
    if (Option.isSome(nodes)) {
      const parsed = nodes.value.map((node) => /^([^:]+):(\d+)$/.exec(node.trim()))
      if (parsed.some((match) => match === null)) {
        return Either.left(
          ConfigError.InvalidData(["CLUSTER_NODES"], `expected host:port,host:port, got ${nodes.value.join(",")}`)
        )
      }
      options.nodes = parsed.map((match) => ({ host: match![1]!, port: Number(match![2]) }))
    }
    return Either.right(options as Options)
  })),
  "S3CACHE_REDIS"
)

/**
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config<Options> = config
): Layer.Layer<MetadataStore | CacheBus.CacheBus, CacheInputError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(options, layer))
