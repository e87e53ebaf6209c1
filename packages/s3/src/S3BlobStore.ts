/**
 * The S3 `BlobStore`: payload bytes as objects in a bucket, under a key prefix, on `@aws-sdk/client-s3` v3. Works
 * with AWS S3 and with S3-compatible servers (MinIO, Cloudflare R2, s3rver, moto) through `endpoint` and
 * `forcePathStyle`.
 *
 * Every operation has one budget that covers sending the request and reading the whole response body, so a server
 * that stops answering, resets, answers 503 or drip-feeds a body costs the caller at most that budget. Reads are
 * not retried (the cache would rather run the effect); writes, deletes and listing pages are retried once on
 * transient failures, within the same budget. Objects are written with server-side encryption (`AES256` unless
 * configured otherwise) and payloads from `multipartThreshold` up are uploaded in parts.
 *
 * @example
 * import { Cache, MetadataStore } from "@s3cache/core"
 * import { S3BlobStore } from "@s3cache/s3"
 * import * as Layer from "effect/Layer"
 *
 * // AWS, credentials from the SDK's default chain
 * const blobs = S3BlobStore.layer({ bucket: "my-cache-bucket", region: "eu-west-1" })
 * // or from S3CACHE_S3_BUCKET, S3CACHE_AWS_REGION, …
 * const blobsFromEnv = S3BlobStore.layerConfig()
 *
 * const cache = Cache.layer().pipe(Layer.provide(Layer.merge(MetadataStore.layerMemory, blobs)))
 *
 * @since 0.1.0
 */
import { BlobStore } from "@s3cache/core/BlobStore"
import * as CacheConfig from "@s3cache/core/CacheConfig"
import type { BlobStoreError, CacheInputError } from "@s3cache/core/CacheError"
import * as CacheVariables from "@s3cache/core/CacheVariables"
import * as Config from "effect/Config"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import * as client from "./internal/client.js"
import { ConfigError, Either } from "./internal/effect3.js"
import * as options_ from "./internal/options.js"
import * as store from "./internal/store.js"

/**
 * Static credentials. Without them the SDK's default chain is used (environment, shared config and SSO profiles,
 * web identity, container and instance roles), which is what production on AWS should do.
 *
 * @since 0.1.0
 * @category models
 */
export interface Credentials {
  readonly accessKeyId: Redacted.Redacted<string>
  readonly secretAccessKey: Redacted.Redacted<string>
  readonly sessionToken?: Redacted.Redacted<string> | undefined
}

/**
 * `AES256`: S3-managed keys (SSE-S3), the default. `aws:kms`: a KMS key (`kmsKeyId`, or the account's `aws/s3`
 * key). `none`: no encryption header, for servers that refuse it.
 *
 * @since 0.1.0
 * @category models
 */
export type ServerSideEncryption = "AES256" | "aws:kms" | "none"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** the bucket; it must exist (`S3CACHE_S3_BUCKET`) */
  readonly bucket: string
  /** prepended, with a `/`, to every object key; `""` for the bucket's root; default `"query-cache"` */
  readonly prefix?: string | undefined
  /** default `"us-east-1"` */
  readonly region?: string | undefined
  /** an S3-compatible server, e.g. `"http://127.0.0.1:9000"`; default: AWS */
  readonly endpoint?: string | undefined
  /** `https://host/bucket/key` instead of `https://bucket.host/key`: MinIO, s3rver, moto; default false */
  readonly forcePathStyle?: boolean | undefined
  /** default: the SDK's default credential chain */
  readonly credentials?: Credentials | undefined
  /** default `"AES256"` */
  readonly serverSideEncryption?: ServerSideEncryption | undefined
  /** the KMS key id or ARN for `"aws:kms"`; default: the account's `aws/s3` key */
  readonly kmsKeyId?: string | undefined
  /**
   * The budget of one operation on a small payload, from sending the request to the last byte of the answer; also
   * the budget of each listing page and delete batch. Default 5 seconds.
   */
  readonly timeout?: Duration.DurationInput | undefined
  /** how long opening a TCP connection may take; default 1 second */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /**
   * The slowest transfer, in bytes per second, that still counts as working: a payload of `n` bytes gets
   * `timeout + n / minThroughput` (a 100 MB object 105 s at the default of 1 MiB/s). It bounds stalls, not speed.
   */
  readonly minThroughput?: number | undefined
  /** attempts of a `get`; default 1 (a failed read is a cache miss: running the effect beats waiting) */
  readonly getAttempts?: number | undefined
  /** attempts of a put, of each part, delete batch and listing page, on transient failures; default 2 */
  readonly attempts?: number | undefined
  /** payloads of this many bytes or more are uploaded in parts; default 16 MiB, at least 5 MiB */
  readonly multipartThreshold?: number | undefined
  /** bytes per part, 5 MiB to 5 GiB; grows when a payload would need more than 10,000 parts; default 8 MiB */
  readonly partSize?: number | undefined
  /** parts of one upload in flight at once; default 4 */
  readonly uploadConcurrency?: number | undefined
  /** open connections to S3, for the whole store; default 128 */
  readonly maxSockets?: number | undefined
  /**
   * `"when-supported"`: CRC32 checksums on uploads and validated on downloads, the SDK's default and the right one
   * for AWS. `"when-required"`: only where S3 requires one (DeleteObjects). Default: `"when-supported"` without an
   * `endpoint`, `"when-required"` with one, because S3-compatible servers may store the checksum framing inside
   * the object (RELIABILITY.md). The cache verifies its own checksum on every read either way.
   */
  readonly checksums?: "when-required" | "when-supported" | undefined
  /**
   * `HeadBucket` when the layer is built, failing it when the bucket is missing or unreadable. Default false: a
   * cache fails open, so it must start even while S3 is down.
   */
  readonly verifyBucket?: boolean | undefined
}

/**
 * A store on a new `S3Client`, destroyed (with its connections) when the scope closes. Options are validated
 * first; nothing is sent to S3 unless `verifyBucket` is set.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options: Options
) => Effect.Effect<BlobStore["Type"], CacheInputError | BlobStoreError, Scope.Scope> = Effect.fnUntraced(
  function*(options: Options) {
    const resolved = yield* options_.resolve(options)
    const runtime = yield* Effect.runtime<never>()
    // The SDK's HTTP handler warns (e.g. "socket usage at capacity") through a logger; route it to Effect's.
    const logger: client.Logger = {
      warn: (message) =>
        Runtime.runFork(runtime)(
          Effect.logWarning(`s3cache: ${message}`).pipe(Effect.annotateLogs({ "aws.s3.bucket": resolved.bucket }))
        )
    }
    const s3 = yield* Effect.acquireRelease(
      Effect.sync(() => client.make(resolved, logger)),
      (c) => Effect.sync(() => client.destroy(c))
    )
    const background = yield* FiberSet.make<unknown, unknown>()
    // Closing waits (bounded) for background aborts of failed multipart uploads before the client goes away.
    yield* Effect.addFinalizer(() =>
      FiberSet.awaitEmpty(background).pipe(Effect.timeoutOption(resolved.timeoutMs), Effect.asVoid)
    )
    const dependencies = { resolved, client: s3, background }
    if (resolved.verifyBucket) yield* store.verifyBucket(dependencies)
    return store.make(dependencies)
  }
)

/**
 * The store as a layer; its client is destroyed, with its connections, when the layer is released.
 *
 * @example
 * import { S3BlobStore } from "@s3cache/s3"
 *
 * // MinIO on localhost, no SSE (MinIO refuses it without a KMS)
 * const blobs = S3BlobStore.layer({
 *   bucket: "cache",
 *   endpoint: "http://127.0.0.1:9000",
 *   forcePathStyle: true,
 *   serverSideEncryption: "none"
 * })
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<BlobStore, CacheInputError | BlobStoreError> =>
  Layer.scoped(BlobStore, make(options))

/**
 * The options from `S3CACHE_*` variables (with the default `ConfigProvider`, the environment):
 *
 * | variable | option |
 * |---|---|
 * | `S3CACHE_S3_BUCKET` (required) | `bucket` |
 * | `S3CACHE_S3_PREFIX` | `prefix` |
 * | `S3CACHE_AWS_REGION` | `region` |
 * | `S3CACHE_S3_ENDPOINT` | `endpoint` |
 * | `S3CACHE_S3_FORCE_PATH_STYLE` | `forcePathStyle` |
 * | `S3CACHE_S3_SSE` (`AES256`, `aws:kms`, `none`) | `serverSideEncryption` |
 * | `S3CACHE_S3_KMS_KEY_ID` | `kmsKeyId` |
 * | `S3CACHE_AWS_ACCESS_KEY_ID`, `S3CACHE_AWS_SECRET_ACCESS_KEY`, `S3CACHE_AWS_SESSION_TOKEN` | `credentials` |
 * | `S3CACHE_S3_TIMEOUT`, `S3CACHE_S3_CONNECT_TIMEOUT` (seconds, or e.g. `"500 millis"`) | `timeout`, `connectTimeout` |
 * | `S3CACHE_S3_MIN_THROUGHPUT` (bytes per second) | `minThroughput` |
 * | `S3CACHE_S3_GET_ATTEMPTS`, `S3CACHE_S3_ATTEMPTS` | `getAttempts`, `attempts` |
 * | `S3CACHE_S3_MULTIPART_THRESHOLD`, `S3CACHE_S3_PART_SIZE` (bytes) | `multipartThreshold`, `partSize` |
 * | `S3CACHE_S3_UPLOAD_CONCURRENCY`, `S3CACHE_S3_MAX_SOCKETS` | `uploadConcurrency`, `maxSockets` |
 * | `S3CACHE_S3_CHECKSUMS` (`when-required`, `when-supported`) | `checksums` |
 * | `S3CACHE_S3_VERIFY_BUCKET` | `verifyBucket` |
 *
 * Each is read by its whole name, so a malformed one is a `ConfigError` at that name that says what it takes
 * (`(Invalid data at S3CACHE_S3_SSE: "expected one of AES256, aws:kms, none, got \"lz4\"")`), and a value out of
 * range fails `make` with an `InvalidOption` error that names the variable.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  bucket: Config.option(Config.string("S3CACHE_S3_BUCKET")),
  options: CacheVariables.fromVariables({
    prefix: ["S3CACHE_S3_PREFIX", Config.string],
    region: ["S3CACHE_AWS_REGION", Config.string],
    endpoint: ["S3CACHE_S3_ENDPOINT", Config.string],
    forcePathStyle: ["S3CACHE_S3_FORCE_PATH_STYLE", CacheVariables.boolean],
    serverSideEncryption: ["S3CACHE_S3_SSE", CacheVariables.literal("AES256", "aws:kms", "none")],
    kmsKeyId: ["S3CACHE_S3_KMS_KEY_ID", Config.string],
    timeout: ["S3CACHE_S3_TIMEOUT", CacheConfig.duration],
    connectTimeout: ["S3CACHE_S3_CONNECT_TIMEOUT", CacheConfig.duration],
    minThroughput: ["S3CACHE_S3_MIN_THROUGHPUT", CacheVariables.number],
    getAttempts: ["S3CACHE_S3_GET_ATTEMPTS", CacheVariables.integer],
    attempts: ["S3CACHE_S3_ATTEMPTS", CacheVariables.integer],
    multipartThreshold: ["S3CACHE_S3_MULTIPART_THRESHOLD", CacheVariables.integer],
    partSize: ["S3CACHE_S3_PART_SIZE", CacheVariables.integer],
    uploadConcurrency: ["S3CACHE_S3_UPLOAD_CONCURRENCY", CacheVariables.integer],
    maxSockets: ["S3CACHE_S3_MAX_SOCKETS", CacheVariables.integer],
    checksums: ["S3CACHE_S3_CHECKSUMS", CacheVariables.literal("when-required", "when-supported")],
    verifyBucket: ["S3CACHE_S3_VERIFY_BUCKET", CacheVariables.boolean]
  }),
  accessKeyId: Config.option(Config.redacted("S3CACHE_AWS_ACCESS_KEY_ID")),
  secretAccessKey: Config.option(Config.redacted("S3CACHE_AWS_SECRET_ACCESS_KEY")),
  sessionToken: Config.option(Config.redacted("S3CACHE_AWS_SESSION_TOKEN"))
}).pipe(
  Config.mapOrFail(({ accessKeyId, bucket, options, secretAccessKey, sessionToken }) => {
    if (Option.isNone(bucket)) {
      // missing data, so that `Config.option(S3BlobStore.config)` still means "no S3 configured"
      return Either.left(
        ConfigError.MissingData(
          ["S3CACHE_S3_BUCKET"],
          "S3CACHE_S3_BUCKET is not set: set it to the bucket that holds the payloads (it must exist)"
        )
      )
    }
    if (Option.isSome(accessKeyId) !== Option.isSome(secretAccessKey)) {
      return Either.left(
        ConfigError.InvalidData(
          [Option.isSome(accessKeyId) ? "S3CACHE_AWS_SECRET_ACCESS_KEY" : "S3CACHE_AWS_ACCESS_KEY_ID"],
          "set both S3CACHE_AWS_ACCESS_KEY_ID and S3CACHE_AWS_SECRET_ACCESS_KEY, or neither to use the AWS SDK's " +
            "default credential chain"
        )
      )
    }
    const credentials = Option.isSome(accessKeyId) && Option.isSome(secretAccessKey)
      ? {
        accessKeyId: accessKeyId.value,
        secretAccessKey: secretAccessKey.value,
        sessionToken: Option.getOrUndefined(sessionToken)
      } satisfies Credentials
      : undefined
    return Either.right(CacheVariables.withVariables(
      { ...options, bucket: bucket.value, ...(credentials !== undefined ? { credentials } : {}) } satisfies Options,
      {
        bucket: "S3CACHE_S3_BUCKET",
        ...(credentials !== undefined ? { credentials: "S3CACHE_AWS_ACCESS_KEY_ID" } : {})
      }
    ))
  })
)

/**
 * `layer`, with options from a `Config`: by default `config`, the `S3CACHE_*` variables. It first logs one warning
 * for `S3CACHE_*` variables that no package reads (`CacheVariables.warnUnknownVariables`): a misspelt one would
 * otherwise be ignored without a word.
 *
 * @example
 * import { S3BlobStore } from "@s3cache/s3"
 * import * as Config from "effect/Config"
 *
 * // everything from the environment
 * const fromEnv = S3BlobStore.layerConfig()
 * // or field by field
 * const custom = S3BlobStore.layerConfig({ bucket: Config.string("CACHE_BUCKET"), prefix: Config.succeed("svc") })
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<Options> = config
): Layer.Layer<BlobStore, CacheInputError | BlobStoreError | ConfigError.ConfigError> =>
  Layer.scoped(
    BlobStore,
    Effect.zipRight(CacheVariables.warnUnknownVariables, Effect.flatMap(Config.unwrap(options), make))
  )
