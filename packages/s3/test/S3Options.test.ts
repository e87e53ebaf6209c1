/**
 * The S3 store's option errors name what the user wrote, the option in code or the `S3CACHE_*` variable in the
 * environment, and say what it takes; an `S3CACHE_*` variable no package reads is reported when the layer is built.
 * Nothing here talks to S3: `make` sends nothing unless `verifyBucket` is set.
 */
import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as S3BlobStore from "../src/S3BlobStore.js"

const env = (variables: Record<string, string>) =>
  ConfigProvider.fromMap(new Map(Object.entries({ S3CACHE_S3_BUCKET: "ok-bucket", ...variables })), { pathDelim: "_" })

const quiet = Logger.withMinimumLogLevel(LogLevel.None)

const buildFailure = (variables: Record<string, string>) =>
  Effect.flip(Effect.scoped(Layer.build(S3BlobStore.layerConfig()))).pipe(
    Effect.withConfigProvider(env(variables)),
    quiet
  )

// option in code, the same value as a variable, what the message says in both cases
const cases: ReadonlyArray<
  readonly [options: Partial<S3BlobStore.Options>, variable: string, value: string, expected: string]
> = [
  [
    { partSize: 1024 },
    "S3CACHE_S3_PART_SIZE",
    "1024",
    "must be a whole number from 5 MiB (5242880) to 5 GiB (5368709120)"
  ],
  [
    { multipartThreshold: 1 },
    "S3CACHE_S3_MULTIPART_THRESHOLD",
    "1",
    "must be a whole number from 5 MiB (5242880) to 5 GiB (5368709120) (got 1)"
  ],
  [{ timeout: 0 }, "S3CACHE_S3_TIMEOUT", "0", "must be a finite duration of at least 1 millisecond (got 0)"],
  [{ connectTimeout: 0 }, "S3CACHE_S3_CONNECT_TIMEOUT", "0", "must be a finite duration of at least 1 millisecond"],
  [{ minThroughput: 10 }, "S3CACHE_S3_MIN_THROUGHPUT", "10", "must be a number of bytes per second of at least 1024"],
  [{ getAttempts: 0 }, "S3CACHE_S3_GET_ATTEMPTS", "0", "must be a whole number from 1 to 10 (got 0)"],
  [{ attempts: 11 }, "S3CACHE_S3_ATTEMPTS", "11", "must be a whole number from 1 to 10 (got 11)"],
  [{ uploadConcurrency: 0 }, "S3CACHE_S3_UPLOAD_CONCURRENCY", "0", "must be a whole number from 1 to 64"],
  [{ maxSockets: 5000 }, "S3CACHE_S3_MAX_SOCKETS", "5000", "must be a whole number from 1 to 4096"],
  [{ bucket: "x" }, "S3CACHE_S3_BUCKET", "x", "must be a bucket name: 3 to 63 characters"],
  [{ prefix: "../up" }, "S3CACHE_S3_PREFIX", "../up", "must be \"\" or /-separated segments"],
  [{ endpoint: "localhost:9000" }, "S3CACHE_S3_ENDPOINT", "localhost:9000", "must be an http(s) URL"],
  [{ region: " " }, "S3CACHE_AWS_REGION", " ", "must be a region such as \"eu-west-1\""]
]

describe("S3 option errors", () => {
  it.scoped("in code: the message names the option and what it takes, not a variable", () =>
    Effect.gen(function*() {
      for (const [options, variable, , expected] of cases) {
        const option = Object.keys(options)[0]!
        const error = yield* Effect.flip(S3BlobStore.make({ bucket: "ok-bucket", ...options }))
        assert.strictEqual(error._tag, "CacheInputError")
        assert.strictEqual(error.reason, "InvalidOption")
        assert.include(error.message, `${option} ${expected}`)
        assert.notInclude(error.message, variable)
      }
      const sse = yield* Effect.flip(S3BlobStore.make({ bucket: "ok-bucket", serverSideEncryption: "rot13" as "none" }))
      assert.include(sse.message, "serverSideEncryption must be \"AES256\", \"aws:kms\" or \"none\" (got \"rot13\")")
      const kms = yield* Effect.flip(S3BlobStore.make({ bucket: "ok-bucket", kmsKeyId: "key" }))
      assert.include(kms.message, "kmsKeyId is set but serverSideEncryption is \"AES256\"")
      assert.notInclude(kms.message, "S3CACHE_")
      const checksums = yield* Effect.flip(S3BlobStore.make({ bucket: "ok-bucket", checksums: "always" as never }))
      assert.include(checksums.message, "checksums must be \"when-required\" or \"when-supported\"")
      const pathStyle = yield* Effect.flip(S3BlobStore.make({ bucket: "ok-bucket", forcePathStyle: "yes" as never }))
      assert.include(pathStyle.message, "forcePathStyle must be true or false")
    }))

  it.effect("from the environment: the message names the variable and what it takes", () =>
    Effect.gen(function*() {
      for (const [options, variable, value, expected] of cases) {
        const option = Object.keys(options)[0]!
        const error = yield* buildFailure({ [variable]: value })
        assert.strictEqual(error._tag, "CacheInputError", String(error))
        assert.include(error.message, `${variable} ${expected}`)
        assert.notInclude(error.message, `${option} must`)
      }
      const timeout = yield* buildFailure({ S3CACHE_S3_TIMEOUT: "0" })
      assert.include(timeout.message, "set e.g. S3CACHE_S3_TIMEOUT=30 (seconds)")
      const kms = yield* buildFailure({ S3CACHE_S3_KMS_KEY_ID: "key" })
      assert.include(
        kms.message,
        "S3CACHE_S3_KMS_KEY_ID is set but S3CACHE_S3_SSE is \"AES256\"; set S3CACHE_S3_SSE=aws:kms"
      )
    }))

  it.effect("a malformed variable is a ConfigError at the variable that lists what it takes", () =>
    Effect.gen(function*() {
      const malformed: ReadonlyArray<readonly [string, string, string]> = [
        ["S3CACHE_S3_SSE", "lz4", "expected one of AES256, aws:kms, none, got \"lz4\""],
        ["S3CACHE_S3_CHECKSUMS", "always", "expected one of when-required, when-supported"],
        ["S3CACHE_S3_PART_SIZE", "8MB", "expected a whole number"],
        ["S3CACHE_S3_MIN_THROUGHPUT", "fast", "expected a number"],
        ["S3CACHE_S3_FORCE_PATH_STYLE", "maybe", "expected true or false"],
        ["S3CACHE_S3_VERIFY_BUCKET", "sure", "expected true or false"],
        ["S3CACHE_S3_TIMEOUT", "soon", "expected seconds (e.g. 3600) or a duration"]
      ]
      for (const [variable, value, expected] of malformed) {
        const text = String(yield* buildFailure({ [variable]: value }))
        assert.include(text, `at ${variable}:`, text)
        assert.include(text, expected, text)
        assert.notInclude(text, "S3CACHE.", text)
      }
      const noBucket = yield* Effect.flip(Effect.scoped(Layer.build(S3BlobStore.layerConfig()))).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(), { pathDelim: "_" })),
        quiet
      )
      assert.include(String(noBucket), "Missing data at S3CACHE_S3_BUCKET")
      assert.include(String(noBucket), "set it to the bucket that holds the payloads")
      const half = String(yield* buildFailure({ S3CACHE_AWS_ACCESS_KEY_ID: "only-one" }))
      assert.include(half, "at S3CACHE_AWS_SECRET_ACCESS_KEY:")
    }))

  it.effect("well-formed variables still configure the store, and it builds without S3", () =>
    Effect.gen(function*() {
      yield* Effect.scoped(Layer.build(S3BlobStore.layerConfig())).pipe(
        Effect.withConfigProvider(env({
          S3CACHE_S3_SSE: "aws:kms",
          S3CACHE_S3_KMS_KEY_ID: "key",
          S3CACHE_S3_PART_SIZE: String(16 * 1024 * 1024),
          S3CACHE_S3_FORCE_PATH_STYLE: "yes",
          S3CACHE_S3_TIMEOUT: "2",
          S3CACHE_AWS_ACCESS_KEY_ID: "a",
          S3CACHE_AWS_SECRET_ACCESS_KEY: "b"
        })),
        quiet
      )
    }))

  it.effect("layerConfig warns once about an S3CACHE_* variable no package reads", () =>
    Effect.gen(function*() {
      const warnings: Array<string> = []
      const logger = Logger.make(({ logLevel, message }) => {
        if (logLevel === LogLevel.Warning) warnings.push(Array.isArray(message) ? message.join(" ") : String(message))
      })
      const build = Effect.scoped(Layer.build(S3BlobStore.layerConfig())).pipe(
        Effect.withConfigProvider(env({ S3CACHE_S3_PART_SIZ: "1" })),
        Effect.provide(Logger.replace(Logger.defaultLogger, logger))
      )
      yield* build
      yield* build
      assert.lengthOf(warnings, 1, warnings.join("\n"))
      assert.include(warnings[0]!, "S3CACHE_S3_PART_SIZ (did you mean S3CACHE_S3_PART_SIZE?)")
    }))
})
