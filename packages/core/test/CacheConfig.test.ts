import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as CacheConfig from "../src/CacheConfig.js"

const fromEnv = (env: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)), { pathDelim: "_" }))

describe("CacheConfig", () => {
  it.effect("defaults are those of the seed", () =>
    Effect.gen(function*() {
      const resolved = yield* CacheConfig.resolve()
      assert.strictEqual(Duration.toSeconds(resolved.defaultTtl), 3600)
      assert.strictEqual(resolved.maxCacheEntries, 10_000)
      assert.strictEqual(Duration.toSeconds(resolved.stampedeLockTtl), 30)
      assert.strictEqual(resolved.serializationFormat, "auto")
      assert.strictEqual(resolved.compression, "zstd")
      assert.strictEqual(resolved.compressionThreshold, 4096)
      assert.strictEqual(resolved.namespace, "default")
    }))

  it.effect("reads S3CACHE_* variables; a bare number is seconds", () =>
    Effect.gen(function*() {
      const options = yield* CacheConfig.config.pipe(
        fromEnv({
          S3CACHE_DEFAULT_TTL: "120",
          S3CACHE_STAMPEDE_LOCK_TTL: "5 seconds",
          S3CACHE_MAX_CACHE_ENTRIES: "50",
          S3CACHE_COMPRESSION: "gzip",
          S3CACHE_COMPRESSION_THRESHOLD: "0",
          S3CACHE_NAMESPACE: "reports"
        })
      )
      const resolved = yield* CacheConfig.resolve(options)
      assert.strictEqual(Duration.toMillis(resolved.defaultTtl), 120_000)
      assert.strictEqual(Duration.toMillis(resolved.stampedeLockTtl), 5_000)
      assert.strictEqual(resolved.maxCacheEntries, 50)
      assert.strictEqual(resolved.compression, "gzip")
      assert.strictEqual(resolved.compressionThreshold, 0)
      assert.strictEqual(resolved.namespace, "reports")
      assert.strictEqual(resolved.blobTimeout, CacheConfig.defaults.blobTimeout)
    }))

  it.effect("the fail-safe and breaker options: defaults, variables, and errors that name the option", () =>
    Effect.gen(function*() {
      const defaults = yield* CacheConfig.resolve()
      assert.strictEqual(Duration.toMillis(defaults.grace), 0)
      assert.strictEqual(defaults.refresh, "background")
      assert.strictEqual(defaults.failSafe, true)
      assert.strictEqual(Duration.toMillis(defaults.graceBackoff), 5000)
      assert.strictEqual(Duration.toMillis(defaults.softTimeout), 0)
      assert.strictEqual(defaults.refreshAhead, 0)
      assert.strictEqual(defaults.circuitBreakerFailures, 5)
      assert.strictEqual(Duration.toMillis(defaults.circuitBreakerCooldown), 10_000)
      const options = yield* CacheConfig.config.pipe(
        fromEnv({
          S3CACHE_GRACE: "600",
          S3CACHE_REFRESH: "foreground",
          S3CACHE_FAIL_SAFE: "false",
          S3CACHE_GRACE_BACKOFF: "2 seconds",
          S3CACHE_SOFT_TIMEOUT: "250 millis",
          S3CACHE_REFRESH_AHEAD: "0.8",
          S3CACHE_CIRCUIT_BREAKER_FAILURES: "0",
          S3CACHE_CIRCUIT_BREAKER_COOLDOWN: "30"
        })
      )
      const resolved = yield* CacheConfig.resolve(options)
      assert.strictEqual(Duration.toMillis(resolved.grace), 600_000)
      assert.strictEqual(resolved.refresh, "foreground")
      assert.strictEqual(resolved.failSafe, false)
      assert.strictEqual(Duration.toMillis(resolved.graceBackoff), 2000)
      assert.strictEqual(Duration.toMillis(resolved.softTimeout), 250)
      assert.strictEqual(resolved.refreshAhead, 0.8)
      assert.strictEqual(resolved.circuitBreakerFailures, 0)
      assert.strictEqual(Duration.toMillis(resolved.circuitBreakerCooldown), 30_000)
      const bad: ReadonlyArray<readonly [CacheConfig.Options, string]> = [
        [{ refreshAhead: 1 }, "refreshAhead must be a fraction of the TTL"],
        [{ refreshAhead: -0.5 }, "refreshAhead must be a fraction of the TTL"],
        [{ grace: "-1 hour" }, "grace must be a finite duration of zero or more"],
        [{ softTimeout: Duration.infinity }, "softTimeout must be a finite duration"],
        [{ circuitBreakerFailures: 2.5 }, "circuitBreakerFailures must be an integer of 0 or more"],
        [{ circuitBreakerCooldown: 0 }, "circuitBreakerCooldown must be a finite duration of at least 1 millisecond"],
        [{ failSafe: "yes" as never }, "failSafe must be true, false or a predicate"]
      ]
      for (const [options, message] of bad) {
        const error = yield* Effect.flip(CacheConfig.resolve(options))
        assert.include(error.message, message)
      }
    }))

  it.effect("a malformed variable is a ConfigError naming it", () =>
    Effect.gen(function*() {
      for (
        const env of [
          { S3CACHE_DEFAULT_TTL: "soon" },
          { S3CACHE_COMPRESSION: "lz4" },
          { S3CACHE_MAX_CACHE_ENTRIES: "many" }
        ]
      ) {
        const error = yield* Effect.flip(CacheConfig.config.pipe(fromEnv(env)))
        assert.include(String(error), Object.keys(env)[0]!.replace("S3CACHE_", ""))
      }
    }))

  it.effect("resolve refuses out-of-range values with a message naming the option", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(CacheConfig.resolve({ stampedeLockTtl: Duration.infinity }))
      assert.strictEqual(error.reason, "InvalidOption")
      assert.include(error.message, "stampedeLockTtl")
      for (const compressionThreshold of [-1, 1.5, Number.NaN]) {
        const threshold = yield* Effect.flip(CacheConfig.resolve({ compressionThreshold }))
        assert.include(threshold.message, "compressionThreshold must be an integer of 0 or more")
      }
      const ttl = yield* Effect.flip(CacheConfig.resolve({ defaultTtl: "-1 seconds" as any }))
      assert.strictEqual(ttl.reason, "InvalidTtl")
    }))
})
