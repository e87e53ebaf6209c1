/**
 * Defaults and validation of the S3 store's options. Every rule that S3 would enforce late (a part too small, a
 * bucket name it rejects) is checked here, when the layer is built, with a message that says what to change.
 *
 * @since 0.1.0
 */
import * as BlobStore from "@s3cache/core/BlobStore"
import * as CacheConfig from "@s3cache/core/CacheConfig"
import { CacheInputError } from "@s3cache/core/CacheError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type { Options } from "../S3BlobStore.js"
import { Either } from "./effect3.js"

const method = "S3BlobStore.make"

/** @internal */
export const MiB = 1024 * 1024

// S3's own limits: parts of 5 MiB to 5 GiB (the last one may be smaller), at most 10,000 parts.
/** @internal */
export const minPartSize = 5 * MiB
/** @internal */
export const maxPartSize = 5 * 1024 * MiB
/** @internal */
export const maxParts = 10_000

/** @internal */
export const defaults = {
  prefix: "query-cache",
  region: "us-east-1",
  serverSideEncryption: "AES256",
  timeout: Duration.seconds(5),
  connectTimeout: Duration.seconds(1),
  minThroughput: MiB,
  getAttempts: 1,
  attempts: 2,
  multipartThreshold: 16 * MiB,
  partSize: 8 * MiB,
  uploadConcurrency: 4,
  maxSockets: 128
} as const

/** @internal */
export interface Resolved {
  readonly bucket: string
  /** `""`, or the prefix followed by `/`: prepended to every object key */
  readonly keyPrefix: string
  readonly region: string
  readonly endpoint: URL | undefined
  readonly forcePathStyle: boolean
  readonly credentials:
    | { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string }
    | undefined
  /** the SSE parameters of PutObject and CreateMultipartUpload */
  readonly sse: { readonly ServerSideEncryption?: "AES256" | "aws:kms"; readonly SSEKMSKeyId?: string }
  readonly timeoutMs: number
  readonly connectTimeoutMs: number
  readonly minThroughput: number
  readonly getAttempts: number
  readonly attempts: number
  readonly multipartThreshold: number
  readonly partSize: number
  readonly uploadConcurrency: number
  readonly maxSockets: number
  readonly checksums: "when-required" | "when-supported"
  readonly verifyBucket: boolean
}

const invalid = (description: string) => new CacheInputError({ reason: "InvalidOption", method, description })

// AWS rules for new buckets, loosened to admit the legacy us-east-1 names (capitals, underscores, up to 255
// characters) that still exist; anything else cannot be a bucket anywhere.
const bucketPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$/

const integerIn = (value: number, option: string, min: number, max: number, unit = "") =>
  Number.isSafeInteger(value) && value >= min && value <= max
    ? Either.right(value)
    : Either.left(invalid(`${option} must be an integer from ${min}${unit} to ${max}${unit} (got ${String(value)})`))

const durationMs = (input: Duration.DurationInput, option: string) =>
  Either.map(CacheConfig.positiveDuration(input, option, method), Duration.toMillis)

/** @internal */
export const resolve = (options: Options): Effect.Effect<Resolved, CacheInputError> =>
  Effect.gen(function*() {
    const bucket = options.bucket
    if (typeof bucket !== "string" || !bucketPattern.test(bucket)) {
      return yield* invalid(
        `bucket ${JSON.stringify(bucket)} is not a valid bucket name: 3 to 63 characters of a-z 0-9 . - starting ` +
          "and ending with a letter or digit (set S3CACHE_S3_BUCKET)"
      )
    }
    const rawPrefix = options.prefix ?? defaults.prefix
    const prefix = rawPrefix.endsWith("/") ? rawPrefix.slice(0, -1) : rawPrefix
    if (prefix !== "") {
      yield* BlobStore.validateObjectKey("make", prefix).pipe(
        Effect.mapError((error) => invalid(`prefix: ${error.description ?? error.message} (set S3CACHE_S3_PREFIX)`))
      )
    }
    const endpoint = yield* parseEndpoint(options.endpoint)
    const sse = yield* resolveSse(options)
    const timeoutMs = yield* durationMs(options.timeout ?? defaults.timeout, "timeout")
    const connectTimeoutMs = yield* durationMs(options.connectTimeout ?? defaults.connectTimeout, "connectTimeout")
    const minThroughput = options.minThroughput ?? defaults.minThroughput
    if (!Number.isFinite(minThroughput) || minThroughput < 1024) {
      return yield* invalid(
        `minThroughput must be a number of bytes per second of at least 1024 (got ${minThroughput})`
      )
    }
    const partSize = yield* integerIn(options.partSize ?? defaults.partSize, "partSize", minPartSize, maxPartSize)
    const multipartThreshold = yield* integerIn(
      options.multipartThreshold ?? defaults.multipartThreshold,
      "multipartThreshold",
      minPartSize,
      maxPartSize
    )
    const credentials = options.credentials
    if (credentials !== undefined && Redacted.value(credentials.accessKeyId).length === 0) {
      return yield* invalid("credentials.accessKeyId is empty (set S3CACHE_AWS_ACCESS_KEY_ID)")
    }
    return {
      bucket,
      keyPrefix: prefix === "" ? "" : `${prefix}/`,
      region: options.region ?? defaults.region,
      endpoint,
      forcePathStyle: options.forcePathStyle ?? false,
      credentials: credentials === undefined ? undefined : {
        accessKeyId: Redacted.value(credentials.accessKeyId),
        secretAccessKey: Redacted.value(credentials.secretAccessKey),
        ...(credentials.sessionToken !== undefined ? { sessionToken: Redacted.value(credentials.sessionToken) } : {})
      },
      sse,
      timeoutMs,
      connectTimeoutMs,
      minThroughput,
      getAttempts: yield* integerIn(options.getAttempts ?? defaults.getAttempts, "getAttempts", 1, 10),
      attempts: yield* integerIn(options.attempts ?? defaults.attempts, "attempts", 1, 10),
      multipartThreshold,
      partSize,
      uploadConcurrency: yield* integerIn(
        options.uploadConcurrency ?? defaults.uploadConcurrency,
        "uploadConcurrency",
        1,
        64
      ),
      maxSockets: yield* integerIn(options.maxSockets ?? defaults.maxSockets, "maxSockets", 1, 4096),
      // The aws-chunked trap (RELIABILITY.md): S3-compatible servers may store the checksum framing inside the
      // object or reject the headers, so checksums are sent only where required unless the target is AWS itself.
      checksums: options.checksums ?? (endpoint === undefined ? "when-supported" : "when-required"),
      verifyBucket: options.verifyBucket ?? false
    }
  })

const parseEndpoint = (endpoint: string | undefined): Effect.Effect<URL | undefined, CacheInputError> => {
  if (endpoint === undefined || endpoint === "") return Effect.succeed(undefined)
  try {
    const url = new URL(endpoint)
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("not http(s)")
    return Effect.succeed(url)
  } catch {
    return Effect.fail(
      invalid(
        `endpoint ${JSON.stringify(endpoint)} is not an http(s) URL; pass e.g. "http://127.0.0.1:9000" for MinIO or ` +
          "\"https://<account>.r2.cloudflarestorage.com\" for R2 (set S3CACHE_S3_ENDPOINT)"
      )
    )
  }
}

const resolveSse = (options: Options): Effect.Effect<Resolved["sse"], CacheInputError> => {
  const mode = options.serverSideEncryption ?? defaults.serverSideEncryption
  const keyId = options.kmsKeyId === "" ? undefined : options.kmsKeyId
  switch (mode) {
    case "AES256":
    case "none":
      return keyId !== undefined
        ? Effect.fail(
          invalid(
            `kmsKeyId is set but serverSideEncryption is ${JSON.stringify(mode)}; set serverSideEncryption to ` +
              "\"aws:kms\" (S3CACHE_S3_SSE=aws:kms) or remove the key id"
          )
        )
        : Effect.succeed(mode === "AES256" ? { ServerSideEncryption: "AES256" } : {})
    case "aws:kms":
      return Effect.succeed({ ServerSideEncryption: "aws:kms", ...(keyId !== undefined ? { SSEKMSKeyId: keyId } : {}) })
    default:
      return Effect.fail(
        invalid(`serverSideEncryption must be "AES256", "aws:kms" or "none" (got ${JSON.stringify(String(mode))})`)
      )
  }
}

/**
 * The deadline of an operation that moves `bytes`: the base timeout, plus the time the payload takes at the
 * slowest throughput the user accepts.
 *
 * @internal
 */
export const budgetMs = (resolved: Resolved, bytes: number): number =>
  resolved.timeoutMs + Math.ceil((bytes / resolved.minThroughput) * 1000)

/** @internal */
export const s3Key = (resolved: Resolved, key: string): string => resolved.keyPrefix + key

/** @internal */
export const serverAddress = (resolved: Resolved): string =>
  resolved.endpoint !== undefined
    ? resolved.endpoint.hostname
    : resolved.forcePathStyle
    ? `s3.${resolved.region}.amazonaws.com`
    : `${resolved.bucket}.s3.${resolved.region}.amazonaws.com`
