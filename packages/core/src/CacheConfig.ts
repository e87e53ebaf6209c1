/**
 * Options of the cache, their defaults (those of the seed), their validation and their environment variables.
 *
 * @since 0.1.0
 */
import "./internal/effectVersion.js"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { CacheInputError } from "./CacheError.js"
import * as CacheFailSafe from "./CacheFailSafe.js"
import * as CacheKey from "./CacheKey.js"
import * as CacheVariables from "./CacheVariables.js"
import { Either } from "./internal/effect3.js"
import * as validate from "./internal/validate.js"
import * as variables from "./internal/variables.js"
import type { Compression, Format } from "./Serializer.js"
import { compressions } from "./Serializer.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options extends CacheFailSafe.Options {
  /** names this cache in metrics (`cache` attribute) and logs; default `"default"` */
  readonly name?: string | undefined
  /** the namespace of calls that name none; default `"default"` */
  readonly namespace?: string | undefined
  /** time to live of an entry; default 1 hour */
  readonly defaultTtl?: Duration.DurationInput | undefined
  /** live entries kept per namespace, least recently read evicted first; default 10000 */
  readonly maxCacheEntries?: number | undefined
  /** how long a caller waits for another process's result before running the effect itself; default 30 s */
  readonly stampedeLockTtl?: Duration.DurationInput | undefined
  /**
   * The lease of a stampede lock: the holder renews it every third of a lease while its effect runs, so a process
   * that dies blocks a key for at most one lease; default 5 s, or `stampedeLockTtl` when that is shorter
   */
  readonly stampedeLockLease?: Duration.DurationInput | undefined
  /** default `"auto"` */
  readonly serializationFormat?: Format | undefined
  /** default `"zstd"` */
  readonly compression?: Compression | undefined
  /**
   * Payloads whose encoded size is below this many bytes are stored uncompressed: zstd goes through the thread pool,
   * which costs ~40 µs even for 256 bytes, more than a small hit itself. 0 compresses everything. Default 4096.
   */
  readonly compressionThreshold?: number | undefined
  /**
   * Payloads of at most this many bytes (as stored: after compression) live in the metadata record itself, so a hit
   * is one round trip to the metadata store and no call to the blob store; larger ones go to the blob store. 0 sends
   * every payload to the blob store. Default 16384.
   */
  readonly inlineThreshold?: number | undefined
  /**
   * The in-process tier (L1): how many entries it keeps; 0 turns it off. Default 0 (off): across processes it serves
   * an entry until the bus tells it the entry changed, which takes a moment (see the README's "Tiers").
   */
  readonly l1MaxEntries?: number | undefined
  /** the in-process tier's bound in bytes (encoded payloads plus a per-entry overhead); default 64 MiB */
  readonly l1MaxBytes?: number | undefined
  /** how long an entry lives in the in-process tier (never past its TTL); a call's `l1Ttl` overrides it; default 60 s */
  readonly l1Ttl?: Duration.DurationInput | undefined
  /** while the bus is disconnected (or there is none), how long after it was stored an entry may still be served; 1 s */
  readonly l1DisconnectedTtl?: Duration.DurationInput | undefined
  /**
   * Hand every caller the same decoded value from the in-process tier instead of a copy of its own: faster, and safe
   * only for values nobody changes. Default false.
   */
  readonly l1ShareValues?: boolean | undefined
  /** deadline of each metadata store call; default 1 s */
  readonly metadataTimeout?: Duration.DurationInput | undefined
  /** deadline of each blob store call, plus the time a payload takes at `blobMinThroughput`; default 30 s */
  readonly blobTimeout?: Duration.DurationInput | undefined
  /**
   * The slowest transfer, bytes per second, that still counts as working: a payload of `n` bytes gets
   * `blobTimeout + n / blobMinThroughput` (500 MB: 30 s + 500 s). It bounds stalls, not speed. Default 1 MiB/s.
   */
  readonly blobMinThroughput?: number | undefined
  /** background writes that run at once; default 4 */
  readonly writeConcurrency?: number | undefined
  /** background writes that may wait; past this, new values are returned but not stored; default 1000 */
  readonly maxPendingWrites?: number | undefined
  /** how long closing the cache waits for pending writes; default 10 s */
  readonly shutdownTimeout?: Duration.DurationInput | undefined
  /** part of every hash: change it to start from an empty cache without deleting anything; default `"1"` */
  readonly keyVersion?: string | undefined
  /**
   * A store (metadata or blob, each its own) that fails this many calls in a row (timeouts, unreachable) is skipped
   * for `circuitBreakerCooldown`: calls go on without it at once instead of paying its deadline. 0 turns the
   * breakers off. Default 5.
   */
  readonly circuitBreakerFailures?: number | undefined
  /** how long an open breaker skips its store before one call probes it again; default 10 s */
  readonly circuitBreakerCooldown?: Duration.DurationInput | undefined
}

/**
 * Options after defaults and validation.
 *
 * @since 0.1.0
 * @category models
 */
export interface Resolved extends CacheFailSafe.Resolved {
  readonly name: string
  readonly namespace: string
  readonly defaultTtl: Duration.Duration
  readonly maxCacheEntries: number
  readonly stampedeLockTtl: Duration.Duration
  readonly stampedeLockLease: Duration.Duration
  readonly serializationFormat: Format
  readonly compression: Compression
  readonly compressionThreshold: number
  readonly inlineThreshold: number
  readonly l1MaxEntries: number
  readonly l1MaxBytes: number
  readonly l1Ttl: Duration.Duration
  readonly l1DisconnectedTtl: Duration.Duration
  readonly l1ShareValues: boolean
  readonly metadataTimeout: Duration.Duration
  readonly blobTimeout: Duration.Duration
  readonly blobMinThroughput: number
  readonly writeConcurrency: number
  readonly maxPendingWrites: number
  readonly shutdownTimeout: Duration.Duration
  readonly keyVersion: string
  readonly circuitBreakerFailures: number
  readonly circuitBreakerCooldown: Duration.Duration
}

/**
 * @since 0.1.0
 * @category constants
 */
export const defaults: Resolved = {
  name: "default",
  namespace: CacheKey.defaultNamespace,
  defaultTtl: Duration.hours(1),
  maxCacheEntries: 10_000,
  stampedeLockTtl: Duration.seconds(30),
  stampedeLockLease: Duration.seconds(5),
  serializationFormat: "auto",
  compression: "zstd",
  compressionThreshold: 4096,
  inlineThreshold: 16384,
  l1MaxEntries: 0,
  l1MaxBytes: 64 * 1024 * 1024,
  l1Ttl: Duration.seconds(60),
  l1DisconnectedTtl: Duration.seconds(1),
  l1ShareValues: false,
  metadataTimeout: Duration.seconds(1),
  blobTimeout: Duration.seconds(30),
  blobMinThroughput: 1024 * 1024,
  writeConcurrency: 4,
  maxPendingWrites: 1000,
  shutdownTimeout: Duration.seconds(10),
  keyVersion: CacheKey.defaultVersion,
  circuitBreakerFailures: 5,
  circuitBreakerCooldown: Duration.seconds(10),
  ...CacheFailSafe.defaults
}

const { invalid, nonNegativeInteger, positiveInteger } = validate

/**
 * A positive, finite duration, or a typed error naming the option (or its variable: see `CacheVariables.sourceOf`).
 *
 * @since 0.1.0
 * @category validation
 */
export const positiveDuration: (
  input: Duration.DurationInput,
  option: string | CacheVariables.OptionSource,
  method: string,
  reason?: "InvalidOption" | "InvalidTtl"
) => Either.Either<Duration.Duration, CacheInputError> = validate.positiveDuration

/**
 * A finite duration of zero or more, or a typed error naming the option. Effect's `Duration` turns a negative or NaN
 * number into zero, which would make "-5 minutes" mean "now": such input is refused before it is decoded.
 *
 * @since 0.1.0
 * @category validation
 */
export const nonNegativeDuration: (
  input: Duration.DurationInput,
  option: string | CacheVariables.OptionSource,
  method: string
) => Either.Either<Duration.Duration, CacheInputError> = validate.nonNegativeDuration

/**
 * Apply defaults and validate. Errors say which option is wrong and what it takes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolve = (options: Options = {}, method = "Cache.layer"): Effect.Effect<Resolved, CacheInputError> =>
  Effect.gen(function*() {
    // options that `config` read: say which set S3CACHE_* variables nothing reads (a misspelt one is ignored)
    if (variables.isFromVariables(options)) yield* variables.warnUnknown
    // messages name what the user wrote: the variable for options read from one, the option for options in code
    const source = (option: keyof Options) => validate.sourceOf(options, option)
    const name = (option: keyof Options) => validate.nameOf(source(option))
    const compression = options.compression ?? defaults.compression
    if (!compressions.includes(compression)) {
      return yield* invalid(
        method,
        `${name("compression")} must be one of ${compressions.join(", ")} (got ${String(compression)})`
      )
    }
    const format = options.serializationFormat ?? defaults.serializationFormat
    if (typeof format !== "string" || format.length === 0) {
      return yield* invalid(
        method,
        `${name("serializationFormat")} must be "auto", "v8", "json", "bytes" or a codec name`
      )
    }
    if (options.l1ShareValues !== undefined && typeof options.l1ShareValues !== "boolean") {
      return yield* invalid(
        method,
        `${name("l1ShareValues")} must be true or false (got ${String(options.l1ShareValues)})`
      )
    }
    const cacheName = options.name ?? defaults.name
    if (typeof cacheName !== "string" || cacheName.length === 0) {
      return yield* invalid(method, `${name("name")} must be a non-empty string`)
    }
    const keyVersion = options.keyVersion ?? defaults.keyVersion
    if (typeof keyVersion !== "string" || keyVersion.length === 0) {
      return yield* invalid(method, `${name("keyVersion")} must be a non-empty string`)
    }
    const duration = (option: DurationOption) =>
      positiveDuration(
        options[option] ?? defaults[option],
        source(option),
        method,
        option === "defaultTtl" ? "InvalidTtl" : "InvalidOption"
      )
    const integer = (option: IntegerOption) =>
      positiveInteger(options[option] ?? defaults[option], source(option), method)
    const count = (option: CountOption) =>
      nonNegativeInteger(options[option] ?? defaults[option], source(option), method)
    const stampedeLockTtl = yield* duration("stampedeLockTtl")
    const namespace = yield* CacheKey.validateNamespace(options.namespace ?? defaults.namespace, method).pipe(
      Either.mapLeft((error) =>
        source("namespace").variable === undefined ? error : new CacheInputError({
          reason: error.reason,
          method: error.method,
          description: error.description.replace(/^namespace /, `${name("namespace")}=`)
        })
      )
    )
    return {
      name: cacheName,
      namespace,
      defaultTtl: yield* duration("defaultTtl"),
      maxCacheEntries: yield* integer("maxCacheEntries"),
      stampedeLockTtl,
      stampedeLockLease: options.stampedeLockLease === undefined
        ? Duration.min(defaults.stampedeLockLease, stampedeLockTtl)
        : yield* duration("stampedeLockLease"),
      serializationFormat: format,
      compression,
      compressionThreshold: yield* count("compressionThreshold"),
      inlineThreshold: yield* count("inlineThreshold"),
      l1MaxEntries: yield* count("l1MaxEntries"),
      l1MaxBytes: yield* integer("l1MaxBytes"),
      l1Ttl: yield* nonNegativeDuration(options.l1Ttl ?? defaults.l1Ttl, source("l1Ttl"), method),
      l1DisconnectedTtl: yield* nonNegativeDuration(
        options.l1DisconnectedTtl ?? defaults.l1DisconnectedTtl,
        source("l1DisconnectedTtl"),
        method
      ),
      l1ShareValues: options.l1ShareValues ?? defaults.l1ShareValues,
      metadataTimeout: yield* duration("metadataTimeout"),
      blobTimeout: yield* duration("blobTimeout"),
      blobMinThroughput: yield* integer("blobMinThroughput"),
      writeConcurrency: yield* integer("writeConcurrency"),
      maxPendingWrites: yield* integer("maxPendingWrites"),
      shutdownTimeout: yield* duration("shutdownTimeout"),
      keyVersion,
      circuitBreakerFailures: yield* count("circuitBreakerFailures"),
      circuitBreakerCooldown: yield* duration("circuitBreakerCooldown"),
      ...(yield* CacheFailSafe.resolve(options, defaults, method))
    }
  })

type DurationOption =
  | "defaultTtl"
  | "stampedeLockTtl"
  | "stampedeLockLease"
  | "metadataTimeout"
  | "blobTimeout"
  | "shutdownTimeout"
  | "circuitBreakerCooldown"
type IntegerOption = "maxCacheEntries" | "writeConcurrency" | "maxPendingWrites" | "blobMinThroughput" | "l1MaxBytes"
type CountOption =
  | "compressionThreshold"
  | "inlineThreshold"
  | "l1MaxEntries"
  | "circuitBreakerFailures"

/**
 * A duration from the environment: a bare number is seconds (as in the seed: `S3CACHE_DEFAULT_TTL=3600`), anything
 * else is parsed as an Effect duration (`"10 minutes"`, `"250 millis"`). Give the variable's whole name
 * (`"S3CACHE_DEFAULT_TTL"`, not a name under `Config.nested`), so a `ConfigError` names the variable the user set.
 *
 * @since 0.1.0
 * @category config
 */
export const duration: (name: string) => Config.Config<Duration.Duration> = variables.duration

/**
 * The cache options from `S3CACHE_*` variables (with the default `ConfigProvider`, the environment):
 * `S3CACHE_NAME`, `S3CACHE_NAMESPACE`, `S3CACHE_DEFAULT_TTL`, `S3CACHE_MAX_CACHE_ENTRIES`,
 * `S3CACHE_STAMPEDE_LOCK_TTL`, `S3CACHE_STAMPEDE_LOCK_LEASE`, `S3CACHE_SERIALIZATION_FORMAT`, `S3CACHE_COMPRESSION`,
 * `S3CACHE_COMPRESSION_THRESHOLD`, `S3CACHE_INLINE_THRESHOLD`, `S3CACHE_L1_MAX_ENTRIES`, `S3CACHE_L1_MAX_BYTES`,
 * `S3CACHE_L1_TTL`, `S3CACHE_L1_DISCONNECTED_TTL`, `S3CACHE_L1_SHARE_VALUES`, `S3CACHE_METADATA_TIMEOUT`,
 * `S3CACHE_BLOB_TIMEOUT`, `S3CACHE_BLOB_MIN_THROUGHPUT`, `S3CACHE_WRITE_CONCURRENCY`, `S3CACHE_MAX_PENDING_WRITES`,
 * `S3CACHE_SHUTDOWN_TIMEOUT`, `S3CACHE_KEY_VERSION`, `S3CACHE_CIRCUIT_BREAKER_FAILURES`,
 * `S3CACHE_CIRCUIT_BREAKER_COOLDOWN`, `S3CACHE_GRACE`, `S3CACHE_REFRESH`, `S3CACHE_FAIL_SAFE`,
 * `S3CACHE_GRACE_BACKOFF`, `S3CACHE_SOFT_TIMEOUT`, `S3CACHE_REFRESH_AHEAD`. Unset variables take the defaults.
 *
 * Each is read by its whole name (not under `Config.nested`), so a malformed one is a `ConfigError` at that name,
 * `(Invalid data at S3CACHE_COMPRESSION: "expected one of zstd, gzip, none, got \"lz4\"")`, and a value out of
 * range is refused by `resolve` with a message that names the variable. Resolving these options also runs
 * `CacheVariables.warnUnknownVariables`.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = CacheVariables.fromVariables({
  name: ["S3CACHE_NAME", Config.string],
  namespace: ["S3CACHE_NAMESPACE", Config.string],
  defaultTtl: ["S3CACHE_DEFAULT_TTL", duration],
  maxCacheEntries: ["S3CACHE_MAX_CACHE_ENTRIES", CacheVariables.integer],
  stampedeLockTtl: ["S3CACHE_STAMPEDE_LOCK_TTL", duration],
  stampedeLockLease: ["S3CACHE_STAMPEDE_LOCK_LEASE", duration],
  serializationFormat: ["S3CACHE_SERIALIZATION_FORMAT", Config.string],
  compression: ["S3CACHE_COMPRESSION", CacheVariables.literal(...compressions)],
  compressionThreshold: ["S3CACHE_COMPRESSION_THRESHOLD", CacheVariables.integer],
  inlineThreshold: ["S3CACHE_INLINE_THRESHOLD", CacheVariables.integer],
  l1MaxEntries: ["S3CACHE_L1_MAX_ENTRIES", CacheVariables.integer],
  l1MaxBytes: ["S3CACHE_L1_MAX_BYTES", CacheVariables.integer],
  l1Ttl: ["S3CACHE_L1_TTL", duration],
  l1DisconnectedTtl: ["S3CACHE_L1_DISCONNECTED_TTL", duration],
  l1ShareValues: ["S3CACHE_L1_SHARE_VALUES", CacheVariables.boolean],
  metadataTimeout: ["S3CACHE_METADATA_TIMEOUT", duration],
  blobTimeout: ["S3CACHE_BLOB_TIMEOUT", duration],
  blobMinThroughput: ["S3CACHE_BLOB_MIN_THROUGHPUT", CacheVariables.integer],
  writeConcurrency: ["S3CACHE_WRITE_CONCURRENCY", CacheVariables.integer],
  maxPendingWrites: ["S3CACHE_MAX_PENDING_WRITES", CacheVariables.integer],
  shutdownTimeout: ["S3CACHE_SHUTDOWN_TIMEOUT", duration],
  keyVersion: ["S3CACHE_KEY_VERSION", Config.string],
  circuitBreakerFailures: ["S3CACHE_CIRCUIT_BREAKER_FAILURES", CacheVariables.integer],
  circuitBreakerCooldown: ["S3CACHE_CIRCUIT_BREAKER_COOLDOWN", duration],
  grace: ["S3CACHE_GRACE", duration],
  refresh: ["S3CACHE_REFRESH", CacheVariables.literal("background", "foreground")],
  failSafe: ["S3CACHE_FAIL_SAFE", CacheVariables.boolean],
  graceBackoff: ["S3CACHE_GRACE_BACKOFF", duration],
  softTimeout: ["S3CACHE_SOFT_TIMEOUT", duration],
  refreshAhead: ["S3CACHE_REFRESH_AHEAD", CacheVariables.number]
})
