/**
 * Where the cache lives, for every command: flags that fall back to the same `S3CACHE_*` variables the layers read,
 * and the stores built from them. The flags are handed to the layers as variables (a `ConfigProvider` over the
 * environment), so a flag and its variable mean exactly the same thing, and every other `S3CACHE_*` variable (key
 * prefix, credentials, SSE, timeouts) applies as it does in the application.
 */
import * as Options from "@effect/cli/Options"
import * as BlobStore from "@s3cache/core/BlobStore"
import * as Cache from "@s3cache/core/Cache"
import type * as MetadataStore from "@s3cache/core/MetadataStore"
import { RedisMetadataStore } from "@s3cache/redis"
import { S3BlobStore } from "@s3cache/s3"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"

/** A failure the CLI reports in one line (and exit code 1). */
export class CliError extends Data.TaggedError("CliError")<{ readonly message: string }> {}

const flag = (name: string, variable: string, description: string) =>
  Options.text(name).pipe(
    Options.withFallbackConfig(Config.string(variable)),
    Options.withDescription(`${description} (or ${variable})`),
    Options.optional
  )

/** The options every command takes. */
export const options = {
  redisUrl: flag(
    "redis-url",
    "S3CACHE_REDIS_URL",
    "the Redis of the metadata: redis://[user:password@]host[:port][/db]"
  ),
  redisClusterNodes: flag(
    "redis-cluster-nodes",
    "S3CACHE_REDIS_CLUSTER_NODES",
    "a Redis Cluster instead: host:port,host:port"
  ),
  s3Bucket: flag("s3-bucket", "S3CACHE_S3_BUCKET", "the S3 bucket of the payloads"),
  s3Endpoint: flag("s3-endpoint", "S3CACHE_S3_ENDPOINT", "an S3-compatible endpoint (MinIO, R2, …)"),
  localPath: flag("local-path", "S3CACHE_LOCAL_PATH", "payloads in this folder when no bucket is set"),
  json: Options.boolean("json").pipe(Options.withDescription("print JSON, for scripts"))
}

/** What the options resolved to. */
export interface Connection {
  readonly redisUrl: Option.Option<string>
  readonly redisClusterNodes: Option.Option<string>
  readonly s3Bucket: Option.Option<string>
  readonly s3Endpoint: Option.Option<string>
  readonly localPath: Option.Option<string>
  readonly json: boolean
}

/** A URL with its password masked, for output. */
export const masked = (url: string): string =>
  url.replace(
    /\/\/([^@/]*)@/,
    (_, auth: string) => `//${auth.includes(":") ? `${auth.slice(0, auth.indexOf(":"))}:***` : "***"}@`
  )
    // ioredis takes a password from the query too
    .replace(/([?&]password=)[^&#]*/gi, "$1***")

/** Where metadata and payloads live, as a human reads it. */
export const describe = (connection: Connection) => ({
  metadata: Option.match(connection.redisUrl, {
    onSome: (url) => `Redis at ${masked(url)}`,
    onNone: () =>
      Option.match(connection.redisClusterNodes, {
        onSome: (nodes) => `Redis Cluster ${nodes}`,
        onNone: () => "none"
      })
  }),
  payloads: Option.match(connection.s3Bucket, {
    onSome: (bucket) =>
      `S3 bucket ${bucket}${Option.match(connection.s3Endpoint, { onSome: (e) => ` at ${e}`, onNone: () => "" })}`,
    onNone: () => `local folder ${Option.getOrElse(connection.localPath, () => BlobStore.defaultLocalPath)}`
  })
})

/**
 * The environment with the flags on top: the layers read their `S3CACHE_*` variables from it, so a flag given on the
 * command line wins over its variable.
 */
export const configProvider = (connection: Connection): ConfigProvider.ConfigProvider => {
  const given = new Map<string, string>()
  const set = (variable: string, value: Option.Option<string>) => {
    if (Option.isSome(value)) given.set(variable, value.value)
  }
  set("S3CACHE_REDIS_URL", connection.redisUrl)
  set("S3CACHE_REDIS_CLUSTER_NODES", connection.redisClusterNodes)
  set("S3CACHE_S3_BUCKET", connection.s3Bucket)
  set("S3CACHE_S3_ENDPOINT", connection.s3Endpoint)
  set("S3CACHE_LOCAL_PATH", connection.localPath)
  return ConfigProvider.fromMap(given, { pathDelim: "_" }).pipe(
    ConfigProvider.orElse(() => ConfigProvider.fromEnv())
  )
}

export const noMetadataStore = "no metadata store is configured: the cache's records live in Redis; set " +
  "S3CACHE_REDIS_URL (or --redis-url redis://host:6379/0), or S3CACHE_REDIS_CLUSTER_NODES for a Cluster"

const hasRedis = (connection: Connection) =>
  Option.isSome(connection.redisUrl) || Option.isSome(connection.redisClusterNodes)

/** The Redis metadata store; a cache whose records live in one process's memory cannot be looked into from here. */
export const metadataLayer = (connection: Connection): Layer.Layer<MetadataStore.MetadataStore, CliError> =>
  hasRedis(connection)
    ? RedisMetadataStore.layerConfig().pipe(Layer.mapError((error) => new CliError({ message: messageOf(error) })))
    : Layer.fail(new CliError({ message: noMetadataStore }))

/** The S3 blob store when a bucket is set, else the local folder. */
export const blobLayer = (connection: Connection): Layer.Layer<BlobStore.BlobStore, CliError> =>
  (Option.isSome(connection.s3Bucket)
    ? S3BlobStore.layerConfig()
    : BlobStore.layerLocal({ directory: Option.getOrUndefined(connection.localPath) }))
    .pipe(Layer.mapError((error) => new CliError({ message: messageOf(error) })))

/** Both stores, and the cache on them (for its hashing, invalidation and cleanup). */
export const layer = (
  connection: Connection
): Layer.Layer<Cache.Cache | MetadataStore.MetadataStore | BlobStore.BlobStore, CliError> =>
  Cache.layerConfig().pipe(
    Layer.mapError((error) => new CliError({ message: messageOf(error) })),
    Layer.provideMerge(Layer.merge(metadataLayer(connection), blobLayer(connection)))
  )

/** Run `effect` on `layer`, built with the flags over the environment. */
export const provide =
  <ROut>(connection: Connection, layer: Layer.Layer<ROut, CliError>) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | CliError, Exclude<R, ROut>> =>
    effect.pipe(Effect.provide(layer), Effect.withConfigProvider(configProvider(connection)))

const configErrorOps = new Set(["And", "Or", "InvalidData", "MissingData", "SourceUnavailable", "Unsupported"])
const isConfigError = (error: unknown): boolean =>
  typeof error === "object" && error !== null && "_op" in error && configErrorOps.has(String(error._op))

/** The one line of an error: its message, without a stack. */
export const messageOf = (error: unknown): string => {
  // a ConfigError is no Error; its string names the variable and what was wrong with it
  if (isConfigError(error)) return String(error)
  if (error instanceof Error) return error.message.split("\n")[0] ?? String(error)
  if (typeof error === "object" && error !== null && "message" in error) return String(error.message)
  return String(error)
}
