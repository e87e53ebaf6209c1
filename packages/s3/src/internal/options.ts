/**
 * Defaults and validation of the S3 store's options. Every rule that S3 would enforce late (a part too small, a
 * bucket name it rejects) is checked here, when the layer is built, with a message that says what to change.
 *
 * @since 0.1.0
 */
import * as BlobStore from "@s3cache/core/BlobStore"
import * as CacheConfig from "@s3cache/core/CacheConfig"
import { CacheInputError } from "@s3cache/core/CacheError"
import * as CacheVariables from "@s3cache/core/CacheVariables"
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

// Sizes as people write them: 5 MiB (5242880), so the range reads at a glance and the bytes can be copied.
const showBytes = (bytes: number): string =>
  bytes >= 1024 * MiB && bytes % (1024 * MiB) === 0
    ? `${bytes / (1024 * MiB)} GiB (${bytes})`
    : bytes >= MiB && bytes % MiB === 0
    ? `${bytes / MiB} MiB (${bytes})`
    : String(bytes)

/** @internal */
export const resolve = (options: Options): Effect.Effect<Resolved, CacheInputError> =>
  Effect.gen(function*() {
    // Messages name what the user wrote: the variable when `config` read the option from one, else the option.
    const source = (option: keyof Options) => CacheVariables.sourceOf(options, option)
    const name = (option: keyof Options) => CacheVariables.optionName(source(option))
    const fromVariable = (option: keyof Options) => source(option).variable !== undefined
    const integerIn = (
      option: keyof Options,
      value: number,
      min: number,
      max: number,
      show: (n: number) => string = String
    ) =>
      Number.isSafeInteger(value) && value >= min && value <= max
        ? Either.right(value)
        : Either.left(
          invalid(`${name(option)} must be a whole number from ${show(min)} to ${show(max)} (got ${String(value)})`)
        )
    const durationMs = (option: "timeout" | "connectTimeout", input: Duration.DurationInput) =>
      Either.map(CacheConfig.positiveDuration(input, source(option), method), Duration.toMillis)
    const booleanOf = (option: "forcePathStyle" | "verifyBucket") => {
      const value = options[option]
      return value === undefined || typeof value === "boolean"
        ? Either.right(value ?? false)
        : Either.left(invalid(`${name(option)} must be true or false (got ${String(value)})`))
    }

    const bucket = options.bucket
    if (typeof bucket !== "string" || !bucketPattern.test(bucket)) {
      return yield* invalid(
        `${name("bucket")} must be a bucket name: 3 to 63 characters of a-z 0-9 . - starting and ending with a ` +
          `letter or digit (got ${JSON.stringify(bucket)})`
      )
    }
    const rawPrefix = options.prefix ?? defaults.prefix
    if (typeof rawPrefix !== "string") {
      return yield* invalid(`${name("prefix")} must be a string such as "query-cache" (got ${String(rawPrefix)})`)
    }
    const prefix = rawPrefix.endsWith("/") ? rawPrefix.slice(0, -1) : rawPrefix
    if (prefix !== "") {
      yield* BlobStore.validateObjectKey("make", prefix).pipe(
        Effect.mapError((error) =>
          invalid(
            `${name("prefix")} must be "" or /-separated segments of A-Z a-z 0-9 . _ = - (got ${
              JSON.stringify(rawPrefix)
            }: ${error.description ?? error.message})`
          )
        )
      )
    }
    const region = options.region ?? defaults.region
    if (typeof region !== "string" || region.trim() === "") {
      return yield* invalid(`${name("region")} must be a region such as "eu-west-1" (got ${JSON.stringify(region)})`)
    }
    const endpoint = yield* parseEndpoint(options.endpoint, name("endpoint"))
    const sse = yield* resolveSse(options, fromVariable("kmsKeyId") || fromVariable("serverSideEncryption"))
    const timeoutMs = yield* durationMs("timeout", options.timeout ?? defaults.timeout)
    const connectTimeoutMs = yield* durationMs("connectTimeout", options.connectTimeout ?? defaults.connectTimeout)
    const minThroughput = options.minThroughput ?? defaults.minThroughput
    if (typeof minThroughput !== "number" || !Number.isFinite(minThroughput) || minThroughput < 1024) {
      return yield* invalid(
        `${name("minThroughput")} must be a number of bytes per second of at least 1024 (got ${String(minThroughput)})`
      )
    }
    const partSize = yield* integerIn(
      "partSize",
      options.partSize ?? defaults.partSize,
      minPartSize,
      maxPartSize,
      showBytes
    )
    const multipartThreshold = yield* integerIn(
      "multipartThreshold",
      options.multipartThreshold ?? defaults.multipartThreshold,
      minPartSize,
      maxPartSize,
      showBytes
    )
    const credentials = options.credentials
    if (credentials !== undefined) {
      // from the environment both keys come from variables of their own
      const [accessKey, secretKey] = fromVariable("credentials")
        ? ["S3CACHE_AWS_ACCESS_KEY_ID", "S3CACHE_AWS_SECRET_ACCESS_KEY"]
        : ["credentials.accessKeyId", "credentials.secretAccessKey"]
      if (Redacted.value(credentials.accessKeyId).length === 0) {
        return yield* invalid(`${accessKey} is empty: set it, or leave out the credentials to use the SDK's chain`)
      }
      if (Redacted.value(credentials.secretAccessKey).length === 0) {
        return yield* invalid(`${secretKey} is empty: set it, or leave out the credentials to use the SDK's chain`)
      }
    }
    const checksums = options.checksums
    if (checksums !== undefined && checksums !== "when-required" && checksums !== "when-supported") {
      return yield* invalid(
        `${name("checksums")} must be "when-required" or "when-supported" (got ${JSON.stringify(String(checksums))})`
      )
    }
    return {
      bucket,
      keyPrefix: prefix === "" ? "" : `${prefix}/`,
      region,
      endpoint,
      forcePathStyle: yield* booleanOf("forcePathStyle"),
      credentials: credentials === undefined ? undefined : {
        accessKeyId: Redacted.value(credentials.accessKeyId),
        secretAccessKey: Redacted.value(credentials.secretAccessKey),
        ...(credentials.sessionToken !== undefined ? { sessionToken: Redacted.value(credentials.sessionToken) } : {})
      },
      sse,
      timeoutMs,
      connectTimeoutMs,
      minThroughput,
      getAttempts: yield* integerIn("getAttempts", options.getAttempts ?? defaults.getAttempts, 1, 10),
      attempts: yield* integerIn("attempts", options.attempts ?? defaults.attempts, 1, 10),
      multipartThreshold,
      partSize,
      uploadConcurrency: yield* integerIn(
        "uploadConcurrency",
        options.uploadConcurrency ?? defaults.uploadConcurrency,
        1,
        64
      ),
      maxSockets: yield* integerIn("maxSockets", options.maxSockets ?? defaults.maxSockets, 1, 4096),
      // The aws-chunked trap (RELIABILITY.md): S3-compatible servers may store the checksum framing inside the
      // object or reject the headers, so checksums are sent only where required unless the target is AWS itself.
      checksums: checksums ?? (endpoint === undefined ? "when-supported" : "when-required"),
      verifyBucket: yield* booleanOf("verifyBucket")
    }
  })

const parseEndpoint = (
  endpoint: string | undefined,
  name: string
): Effect.Effect<URL | undefined, CacheInputError> => {
  if (endpoint === undefined || endpoint === "") return Effect.succeed(undefined)
  try {
    const url = new URL(endpoint)
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("not http(s)")
    return Effect.succeed(url)
  } catch {
    return Effect.fail(
      invalid(
        `${name} must be an http(s) URL such as "http://127.0.0.1:9000" for MinIO or ` +
          `"https://<account>.r2.cloudflarestorage.com" for R2 (got ${JSON.stringify(endpoint)})`
      )
    )
  }
}

const resolveSse = (options: Options, fromVariables: boolean): Effect.Effect<Resolved["sse"], CacheInputError> => {
  const mode = options.serverSideEncryption ?? defaults.serverSideEncryption
  const keyId = options.kmsKeyId === "" ? undefined : options.kmsKeyId
  switch (mode) {
    case "AES256":
    case "none":
      return keyId !== undefined
        ? Effect.fail(
          invalid(
            fromVariables
              ? `S3CACHE_S3_KMS_KEY_ID is set but S3CACHE_S3_SSE is ${JSON.stringify(mode)}; set ` +
                "S3CACHE_S3_SSE=aws:kms or unset S3CACHE_S3_KMS_KEY_ID"
              : `kmsKeyId is set but serverSideEncryption is ${JSON.stringify(mode)}; set serverSideEncryption to ` +
                "\"aws:kms\" or remove kmsKeyId"
          )
        )
        : Effect.succeed(mode === "AES256" ? { ServerSideEncryption: "AES256" } : {})
    case "aws:kms":
      return Effect.succeed({ ServerSideEncryption: "aws:kms", ...(keyId !== undefined ? { SSEKMSKeyId: keyId } : {}) })
    default:
      return Effect.fail(
        invalid(
          `${
            CacheVariables.optionName(CacheVariables.sourceOf(options, "serverSideEncryption"))
          } must be "AES256", "aws:kms" or "none" (got ${JSON.stringify(String(mode))})`
        )
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
