/**
 * Errors of the layers built from `S3CACHE_*` variables name the variable the user set (`S3CACHE_DEFAULT_TTL`, not
 * the path `S3CACHE.DEFAULT_TTL` nor the option `defaultTtl`) and say what it takes; options written in code are
 * named as written. And a local folder that never answers (a hung network mount) fails the layer instead of hanging.
 */
import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as TestClock from "effect/TestClock"
import * as fsPromises from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import * as BlobStore from "../src/BlobStore.js"
import * as Cache from "../src/Cache.js"
import * as CacheConfig from "../src/CacheConfig.js"
import * as CacheVariables from "../src/CacheVariables.js"
import * as fileSystem from "../src/internal/fileSystemBlobStore.js"
import * as MetadataStore from "../src/MetadataStore.js"

// As the environment is read: `_` splits a name into a path, as `ConfigProvider.fromEnv` does.
const env = (variables: Record<string, string>) =>
  ConfigProvider.fromMap(new Map(Object.entries(variables)), { pathDelim: "_" })

const quiet = Logger.withMinimumLogLevel(LogLevel.None)

const stores = Layer.merge(MetadataStore.layerMemory, BlobStore.layerMemory)

const buildFailure = <A, E>(layer: Layer.Layer<A, E>, variables: Record<string, string>) =>
  Effect.flip(Effect.scoped(Layer.build(layer))).pipe(Effect.withConfigProvider(env(variables)), quiet)

describe("a malformed variable is a ConfigError at the variable's name that says what it takes", () => {
  const cases: ReadonlyArray<readonly [string, string, string]> = [
    ["S3CACHE_DEFAULT_TTL", "soon", "expected seconds (e.g. 3600) or a duration"],
    ["S3CACHE_COMPRESSION", "lz4", "expected one of zstd, gzip, none"],
    ["S3CACHE_MAX_CACHE_ENTRIES", "many", "expected a whole number"],
    ["S3CACHE_MAX_CACHE_ENTRIES", "1.5", "expected a whole number"],
    ["S3CACHE_L1_SHARE_VALUES", "maybe", "expected true or false"],
    ["S3CACHE_REFRESH", "sometimes", "expected one of background, foreground"],
    ["S3CACHE_REFRESH_AHEAD", "most", "expected a number"],
    ["S3CACHE_FAIL_SAFE", "2", "expected true or false"]
  ]

  it.effect("CacheConfig.config", () =>
    Effect.gen(function*() {
      for (const [variable, value, expected] of cases) {
        const error = yield* Effect.flip(CacheConfig.config.pipe(Effect.withConfigProvider(env({ [variable]: value }))))
        const text = String(error)
        assert.include(text, `at ${variable}:`, text)
        assert.include(text, expected, text)
        assert.include(text, JSON.stringify(value), text)
        assert.notInclude(text, "S3CACHE.", text)
      }
    }))

  it.effect("Cache.layerConfig and Cache.layerEmbeddedConfig", () =>
    Effect.gen(function*() {
      for (const [variable, value, expected] of cases) {
        for (const layer of [Cache.layerConfig().pipe(Layer.provide(stores)), Cache.layerEmbeddedConfig()]) {
          const text = String(yield* buildFailure(layer, { [variable]: value }))
          assert.include(text, `at ${variable}:`, text)
          assert.include(text, expected, text)
          assert.notInclude(text, "S3CACHE.", text)
        }
      }
      const backend = String(yield* buildFailure(Cache.layerEmbeddedConfig(), { S3CACHE_STORAGE_BACKEND: "disk" }))
      assert.include(backend, "S3CACHE_STORAGE_BACKEND")
      assert.include(backend, "local, memory")
    }))

  it.effect("well-formed variables are still read, by the environment's name or one flat key", () =>
    Effect.gen(function*() {
      const flat = ConfigProvider.fromMap(new Map([["S3CACHE_DEFAULT_TTL", "90"], ["S3CACHE_L1_SHARE_VALUES", "yes"]]))
      for (const provider of [env({ S3CACHE_DEFAULT_TTL: "90", S3CACHE_L1_SHARE_VALUES: "yes" }), flat]) {
        const options = yield* CacheConfig.config.pipe(Effect.withConfigProvider(provider))
        assert.strictEqual(Duration.toSeconds(Duration.decode(options.defaultTtl!)), 90)
        assert.strictEqual(options.l1ShareValues, true)
      }
    }))
})

describe("a value out of range is refused naming the variable it came from, or the option written in code", () => {
  const cases: ReadonlyArray<
    readonly [variable: string, value: string, options: CacheConfig.Options, fromEnv: string, fromCode: string]
  > = [
    [
      "S3CACHE_MAX_CACHE_ENTRIES",
      "0",
      { maxCacheEntries: 0 },
      "S3CACHE_MAX_CACHE_ENTRIES must be a positive integer (got 0)",
      "maxCacheEntries must be a positive integer (got 0)"
    ],
    [
      "S3CACHE_COMPRESSION_THRESHOLD",
      "-1",
      { compressionThreshold: -1 },
      "S3CACHE_COMPRESSION_THRESHOLD must be an integer of 0 or more",
      "compressionThreshold must be an integer of 0 or more"
    ],
    [
      "S3CACHE_METADATA_TIMEOUT",
      "0",
      { metadataTimeout: 0 },
      "S3CACHE_METADATA_TIMEOUT must be a finite duration of at least 1 millisecond (got 0); " +
      "set e.g. S3CACHE_METADATA_TIMEOUT=30 (seconds)",
      "metadataTimeout must be a finite duration of at least 1 millisecond (got 0); pass e.g. \"10 minutes\""
    ],
    [
      "S3CACHE_DEFAULT_TTL",
      "0",
      { defaultTtl: 0 },
      "S3CACHE_DEFAULT_TTL must be a finite duration",
      "defaultTtl must be a finite duration"
    ],
    [
      "S3CACHE_REFRESH_AHEAD",
      "1.5",
      { refreshAhead: 1.5 },
      "S3CACHE_REFRESH_AHEAD must be a fraction of the TTL",
      "refreshAhead must be a fraction of the TTL"
    ],
    [
      "S3CACHE_NAMESPACE",
      "a:b",
      { namespace: "a:b" },
      "S3CACHE_NAMESPACE=a:b is not allowed",
      "namespace a:b is not allowed"
    ],
    ["S3CACHE_NAME", "", { name: "" }, "S3CACHE_NAME must be a non-empty string", "name must be a non-empty string"]
  ]

  it.effect("Cache.layerConfig, Cache.layerEmbeddedConfig, and Cache.layer with the same options in code", () =>
    Effect.gen(function*() {
      for (const [variable, value, options, fromEnv, fromCode] of cases) {
        for (const layer of [Cache.layerConfig().pipe(Layer.provide(stores)), Cache.layerEmbeddedConfig()]) {
          const error = yield* buildFailure(layer, { [variable]: value })
          assert.strictEqual(error._tag, "CacheInputError", String(error))
          assert.include(error.message, fromEnv)
        }
        const error = yield* buildFailure(Cache.layer(options).pipe(Layer.provide(stores)), {})
        assert.include(error.message, fromCode)
        assert.notInclude(error.message, "S3CACHE_")
      }
    }))

  it.effect("CacheConfig.resolve names the variable only for options that came from one", () =>
    Effect.gen(function*() {
      const options = yield* CacheConfig.config.pipe(Effect.withConfigProvider(env({ S3CACHE_GRACE: "60" })))
      // a value written in code beside one read from a variable
      const error = yield* Effect.flip(CacheConfig.resolve({ ...options, softTimeout: "-1 seconds" })).pipe(quiet)
      assert.include(error.message, "softTimeout must be a finite duration of zero or more")
      assert.deepStrictEqual(CacheVariables.sourceOf(options, "grace"), { option: "grace", variable: "S3CACHE_GRACE" })
      assert.deepStrictEqual(CacheVariables.sourceOf(options, "softTimeout"), { option: "softTimeout" })
    }))
})

describe("a local folder that never answers (a hung network mount)", () => {
  const hung: fileSystem.SetupFs = {
    mkdir: () => new Promise(() => {}),
    lstat: (file) => fsPromises.lstat(file),
    chmod: (file, mode) => fsPromises.chmod(file, mode),
    readlink: (file) => fsPromises.readlink(file)
  }

  it.effect("fails the store's building with a Timeout that names the folder and the variable", () =>
    Effect.gen(function*() {
      const directory = path.join(os.tmpdir(), "s3cache-hung-mount-test")
      const building = yield* Effect.fork(Effect.scoped(fileSystem.make({ directory }, { fs: hung })))
      yield* TestClock.adjust("9 seconds")
      assert.isNull(building.unsafePoll(), "still waiting before the bound")
      yield* TestClock.adjust("1 second")
      const exit = yield* Fiber.await(building)
      assert.isTrue(Exit.isFailure(exit))
      const error = yield* Effect.flip(exit)
      assert.strictEqual(error._tag, "BlobStoreError")
      assert.strictEqual(error.reason, "Timeout")
      assert.strictEqual(error.method, "make")
      assert.include(error.message, directory)
      assert.include(error.message, "S3CACHE_LOCAL_PATH")
      assert.include(error.message, "did not answer within 10s")
    }))

  it.effect("a lstat that never answers is bounded the same way", () =>
    Effect.gen(function*() {
      const directory = path.join(os.tmpdir(), "s3cache-hung-lstat-test")
      const building = yield* Effect.fork(
        fileSystem.make({ directory }, {
          fs: { ...hung, mkdir: async () => undefined, lstat: () => new Promise(() => {}) }
        })
      )
      yield* TestClock.adjust("10 seconds")
      const error = yield* Effect.flip(Fiber.join(building))
      assert.strictEqual(error.reason, "Timeout")
      assert.include(error.message, directory)
    }))
})
