/**
 * The Redis metadata store: entry records, the LRU index, stampede locks, the namespace registry and the store id in
 * Redis (standalone or Cluster), every multi-step change one atomic Lua script, one round trip per lookup.
 *
 * The layer builds even when Redis is down: calls then fail fast, the cache runs uncached (fail-open), and the
 * client reconnects by itself. The store id is read at first use, not at build time, for the same reason. A server
 * that answers but refuses the options (the password, the database of the url) fails the build: waiting would not fix
 * that. Either way the message says what happened and what to change (the variable or option to fix), and so do the
 * failures of later calls while there is no connection. `diagnose` checks a deployment's Redis before it serves.
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
import * as CacheVariables from "@s3cache/core/CacheVariables"
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
import type * as checks from "./internal/checks.js"
import * as client from "./internal/client.js"
import * as connection from "./internal/connection.js"
import * as internalDiagnose from "./internal/diagnose.js"
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
  /**
   * `redis://[user:password@]host:port/db`, or `rediss://` for TLS; default `redis://localhost:6379/0`. A password
   * or a database the server refuses fails the build of the store; a server that is down does not.
   */
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
      return yield* invalid(
        `${
          CacheVariables.optionName(CacheVariables.sourceOf(options, "slotsPerNamespace"))
        } must be an integer from 1 to 1024 (got ${String(slotsPerNamespace)})`
      )
    }
    const lruResolution = yield* CacheConfig.nonNegativeDuration(
      options.lruResolution ?? "1 second",
      CacheVariables.sourceOf(options, "lruResolution"),
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
      CacheVariables.sourceOf(options, "commandTimeout"),
      method
    )
    const connectTimeout = yield* CacheConfig.positiveDuration(
      options.connectTimeout ?? "1 second",
      CacheVariables.sourceOf(options, "connectTimeout"),
      method
    )
    const awaitReady = options.awaitReady === undefined
      ? connectTimeout
      : Option.getOrElse(Duration.decodeUnknown(options.awaitReady), () => connectTimeout)

    let watched: connection.Watch | undefined
    const redis = options.client !== undefined ? options.client : yield* Effect.acquireRelease(
      Effect.sync(() => {
        const settings: client.ConnectionOptions = {
          url: options.url ?? (options.nodes === undefined ? "redis://localhost:6379/0" : undefined),
          nodes: options.nodes,
          username: options.username,
          password: options.password,
          commandTimeoutMs: Duration.toMillis(commandTimeout),
          connectTimeoutMs: Duration.toMillis(connectTimeout),
          redisOptions: options.redisOptions,
          clusterOptions: options.clusterOptions
        }
        const owned = client.create(settings)
        // the client's 'error' listener: connection errors are explained and kept, so that the commands that fail
        // meanwhile (reported by the cache) say why; a database the server does not have closes the client
        if (!owned.isCluster) watched = connection.watch(owned, connection.originOf(settings))
        else owned.on("error", () => {})
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
    yield* waitUntilReady(redis, awaitReady, watched)
    // the server refused what the options say (a password, a database): that is for the user to fix, and waiting
    // will not fix it. Redis being down is not: the store is built, and the cache runs uncached until it answers.
    const refusal = watched?.problem()
    if (refusal !== undefined && connection.isRefusal(refusal)) return yield* invalid(refusal.description)
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

/**
 * Wait for the client to be ready, at most `budget`, or until the server refuses the options (a password, a database):
 * then no wait and no warning, the caller fails. Otherwise the warning says why Redis did not answer, where known.
 */
const waitUntilReady = (redis: client.Client, budget: Duration.Duration, watched: connection.Watch | undefined) => {
  const refused = () => {
    const problem = watched?.problem()
    return problem !== undefined && connection.isRefusal(problem)
  }
  return Effect.async<void>((resume) => {
    if (redis.status === "ready" || refused()) return resume(Effect.void)
    const onReady = () => resume(Effect.void)
    const onChange = () => {
      if (refused()) resume(Effect.void)
    }
    redis.once("ready", onReady)
    redis.once("end", onReady)
    const stop = watched?.onChange(onChange)
    return Effect.sync(() => {
      redis.off("ready", onReady)
      redis.off("end", onReady)
      stop?.()
    })
  }).pipe(
    Effect.timeoutOption(budget),
    Effect.flatMap(Option.match({
      onNone: () => {
        if (refused() || watched?.closed() === true) return Effect.void
        const problem = watched?.problem()
        return Effect.logWarning(
          problem !== undefined
            ? `s3cache: ${problem.description}; the cache runs uncached until Redis answers`
            : `s3cache: Redis at ${client.describeServer(redis)} did not answer within ${Duration.format(budget)}` +
              (watched?.origin.tls === true
                ? " (no TLS connection yet: if the server does not speak TLS, use redis:// instead of rediss:// in " +
                  "the url, S3CACHE_REDIS_URL)"
                : "") +
              "; the cache runs uncached until it does"
        )
      },
      onSome: () => Effect.void
    }))
  )
}

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
export const config: Config.Config<Options> = Config.all({
  options: CacheVariables.fromVariables({
    url: ["S3CACHE_REDIS_URL", Config.string],
    username: ["S3CACHE_REDIS_USERNAME", Config.string],
    password: ["S3CACHE_REDIS_PASSWORD", Config.redacted],
    keyPrefix: ["S3CACHE_REDIS_KEY_PREFIX", Config.string],
    commandTimeout: ["S3CACHE_REDIS_COMMAND_TIMEOUT", CacheVariables.duration],
    connectTimeout: ["S3CACHE_REDIS_CONNECT_TIMEOUT", CacheVariables.duration],
    lruResolution: ["S3CACHE_REDIS_LRU_RESOLUTION", CacheVariables.duration],
    slotsPerNamespace: ["S3CACHE_REDIS_SLOTS_PER_NAMESPACE", CacheVariables.integer]
  }),
  // read by its whole name, so that an error names the variable the user set
  nodes: Config.option(Config.string("S3CACHE_REDIS_CLUSTER_NODES"))
}).pipe(Config.mapOrFail(({ nodes, options }) => {
  if (Option.isNone(nodes)) return Either.right(options as Options)
  const parsed = nodes.value.split(",").map((node) => /^([^:]+):(\d+)$/.exec(node.trim()))
  if (parsed.some((match) => match === null)) {
    return Either.left(
      ConfigError.InvalidData(
        ["S3CACHE_REDIS_CLUSTER_NODES"],
        `expected host:port,host:port, got ${nodes.value}`
      )
    )
  }
  return Either.right(CacheVariables.withVariables({
    ...options,
    nodes: parsed.map((match) => ({ host: match![1]!, port: Number(match![2]) }))
  }, { nodes: "S3CACHE_REDIS_CLUSTER_NODES" }) as Options)
}))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config<Options> = config
): Layer.Layer<MetadataStore | CacheBus.CacheBus, CacheInputError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.zipRight(CacheVariables.warnUnknownVariables, Effect.map(options, layer)))

/**
 * One finding of `diagnose`: `status` is `"ok"`, `"warning"` (works, but not as it should) or `"problem"` (the store
 * cannot work, or works against its guarantees); `detail` says what was found, `fix` what to change when not ok.
 *
 * @since 0.2.0
 * @category models
 */
export type Check = checks.Check

/**
 * Connect to Redis with the store's options and report what an operator should change, one `Check` each:
 *
 * - `redis reachable`: a connection opens and the server answers (a refused port, a host that does not answer, a
 *   server that accepts and stays silent, `rediss://` against a server without TLS are told apart);
 * - `redis authenticated`: the server accepts the password (NOAUTH, WRONGPASS);
 * - `redis database`: the url's database exists;
 * - `redis version`: 5.0 or later (what the store's scripts need);
 * - `redis maxmemory-policy`: `noeviction`, `volatile-lru` or `volatile-ttl` are ok; `volatile-lfu` and
 *   `volatile-random` a warning; `allkeys-*` a problem (see the README);
 * - `redis cluster coverage` (on a Cluster node): `cluster-require-full-coverage no` is ok, `yes` a warning, and so
 *   is a `CONFIG GET` the server's ACL refuses;
 * - `clock skew`: this host's clock against Redis's (`TIME`, corrected by half the round trip): a warning above 1 s,
 *   a problem above 30 s.
 *
 * A failing connection step ends the list (the checks after it would say nothing). With `nodes`, every node is
 * checked on a connection of its own and each check tells the nodes that are not ok; with `client`, only the checks
 * after connecting run, on that client, which is left open. Never fails and never hangs: every step is bounded by
 * `connectTimeout` and `commandTimeout` (default 1 s each here), and the connection is closed at the end.
 *
 * @example
 * import { RedisMetadataStore } from "@s3cache/redis"
 * import * as Effect from "effect/Effect"
 *
 * const report = Effect.gen(function*() {
 *   for (const check of yield* RedisMetadataStore.diagnose({ url: "redis://localhost:6379/0" })) {
 *     yield* Effect.log(`${check.status} ${check.name}: ${check.detail}${check.fix ? ` (${check.fix})` : ""}`)
 *   }
 * })
 *
 * @since 0.2.0
 * @category constructors
 */
export const diagnose = (options: Options = {}): Effect.Effect<ReadonlyArray<Check>> =>
  internalDiagnose.diagnose(options)

/**
 * `diagnose` with options from `S3CACHE_REDIS_*` variables, as `layerConfig` reads them.
 *
 * @since 0.2.0
 * @category config
 */
export const diagnoseConfig = (
  options: Config.Config<Options> = config
): Effect.Effect<ReadonlyArray<Check>, ConfigError.ConfigError> => Effect.flatMap(options, diagnose)
