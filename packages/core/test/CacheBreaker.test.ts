/**
 * The circuit breaker of each store: after `circuitBreakerFailures` failures in a row, calls skip the store (no call,
 * no deadline) for `circuitBreakerCooldown`; then one call probes it.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as TestClock from "effect/TestClock"
import { BlobStoreError, MetadataStoreError } from "../src/CacheError.js"
import { counted, makeHarness, pastDeadline, waitUntil } from "./utils/harness.js"

const quiet = Logger.withMinimumLogLevel(LogLevel.None)

const failing = (reason: "Unavailable" | "Protocol", method: string) =>
  Effect.fail(new MetadataStoreError({ reason, method, description: "injected" }))

/** `effect`, counting the calls that actually run (an open breaker skips running them, not building them) */
const counting = <A, E>(count: () => void, effect: () => Effect.Effect<A, E>) =>
  Effect.suspend(() => {
    count()
    return effect()
  })

describe("circuit breaker: the metadata store", () => {
  it.scoped("after N failures in a row calls skip the store; after the cool-down one probe closes it again", () =>
    Effect.gen(function*() {
      let lookups = 0
      let down = true
      const { cache } = yield* makeHarness({
        cache: { circuitBreakerFailures: 3, circuitBreakerCooldown: "10 seconds" },
        metadata: (store) => ({
          lookup: (namespace, hash, options) =>
            counting(
              () => lookups++,
              () => down ? failing("Unavailable", "lookup") : store.lookup(namespace, hash, options)
            ),
          // an outage: every call fails (a success of any call resets the count)
          releaseLock: (namespace, hash, token) =>
            down ? failing("Unavailable", "releaseLock") : store.releaseLock(namespace, hash, token)
        })
      })
      const query = counted("v")
      // each failed lookup is followed by the failed release (in the background) of the lock it may have taken
      for (let i = 0; i < 3; i++) assert.strictEqual(yield* cache.cached(query.effect, { key: "k" }), "v")
      const opened = lookups
      assert.isAtMost(opened, 3)
      assert.strictEqual((yield* cache.stats).metadataBreaker, "open")
      for (let i = 0; i < 5; i++) assert.strictEqual(yield* cache.cached(query.effect, { key: "k" }), "v")
      assert.strictEqual(lookups, opened, "while open, no call reaches the store")
      assert.strictEqual(query.runs, 8, "every call still got its value (fail-open)")

      down = false
      yield* TestClock.adjust("9 seconds")
      yield* cache.cached(query.effect, { key: "k" })
      assert.strictEqual(lookups, opened, "still open before the cool-down ends")
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* cache.stats).metadataBreaker, "open", "the state changes with the probe, not before")
      yield* cache.cached(query.effect, { key: "k" })
      assert.strictEqual(lookups, opened + 1, "one probe")
      assert.strictEqual((yield* cache.stats).metadataBreaker, "closed")
      yield* cache.flush
      const runs = query.runs
      assert.strictEqual(yield* cache.cached(query.effect, { key: "k" }), "v")
      assert.strictEqual(query.runs, runs, "a hit: the store is used again")
    }).pipe(quiet))

  it.scoped("a failed probe opens it for another cool-down", () =>
    Effect.gen(function*() {
      let lookups = 0
      const { cache } = yield* makeHarness({
        cache: { circuitBreakerFailures: 2, circuitBreakerCooldown: "5 seconds" },
        metadata: () => ({
          lookup: () => counting(() => lookups++, () => failing("Unavailable", "lookup")),
          releaseLock: () => failing("Unavailable", "releaseLock")
        })
      })
      for (let i = 0; i < 4; i++) yield* cache.cached(Effect.succeed(1), { key: "k" })
      // two failures: two lookups, or one lookup and the release of the lock it may have taken
      const opened = lookups
      assert.isAtMost(opened, 2)
      assert.strictEqual((yield* cache.stats).metadataBreaker, "open")
      yield* TestClock.adjust("5 seconds")
      yield* cache.cached(Effect.succeed(1), { key: "k" })
      assert.strictEqual(lookups, opened + 1, "the probe")
      assert.strictEqual((yield* cache.stats).metadataBreaker, "open")
      yield* TestClock.adjust("4 seconds")
      yield* cache.cached(Effect.succeed(1), { key: "k" })
      assert.strictEqual(lookups, opened + 1, "open again for a whole cool-down after the failed probe")
      yield* TestClock.adjust("1 second")
      yield* cache.cached(Effect.succeed(1), { key: "k" })
      assert.strictEqual(lookups, opened + 2)
    }).pipe(quiet))

  it.scoped("a probe whose caller is interrupted lets the next call probe: the breaker never waits for it for ever", () =>
    Effect.gen(function*() {
      let lookups = 0
      let mode: "fail" | "hang" | "work" = "fail"
      const { cache } = yield* makeHarness({
        cache: { circuitBreakerFailures: 1, circuitBreakerCooldown: "5 seconds", metadataTimeout: "1 minute" },
        metadata: (store) => ({
          lookup: (namespace, hash, options) =>
            counting(() => lookups++, () =>
              mode === "fail"
                ? failing("Unavailable", "lookup")
                : mode === "hang"
                ? Effect.never
                : store.lookup(namespace, hash, options)),
          releaseLock: (namespace, hash, token) =>
            mode === "fail" ? failing("Unavailable", "releaseLock") : store.releaseLock(namespace, hash, token)
        })
      })
      yield* cache.cached(Effect.succeed(1), { key: "k" })
      assert.strictEqual((yield* cache.stats).metadataBreaker, "open")
      yield* TestClock.adjust("5 seconds")
      mode = "hang"
      const probe = yield* Effect.fork(cache.cached(Effect.succeed(1), { key: "k" }))
      yield* waitUntil(Effect.sync(() => lookups === 2))
      yield* Fiber.interrupt(probe)
      mode = "work"
      assert.strictEqual(yield* cache.cached(Effect.succeed(2), { key: "k" }), 2)
      assert.strictEqual(lookups, 3, "the next call probed")
      assert.strictEqual((yield* cache.stats).metadataBreaker, "closed")
    }).pipe(quiet))

  it.scoped("timeouts count; an answer that proves the store works (Protocol) does not; 0 turns it off", () =>
    Effect.gen(function*() {
      let hung = 0
      const timeouts = yield* makeHarness({
        cache: { circuitBreakerFailures: 2, metadataTimeout: "1 second" },
        metadata: () => ({
          lookup: () => counting(() => hung++, () => Effect.never),
          releaseLock: () => Effect.never
        })
      })
      for (let i = 0; i < 2; i++) {
        yield* pastDeadline(timeouts.cache.cached(Effect.succeed(1), { key: "k" }), "1 second")
      }
      // no clock adjustment: a call that waited for the deadline would never return here
      assert.strictEqual(yield* timeouts.cache.cached(Effect.succeed(2), { key: "k" }), 2)
      assert.strictEqual(hung, 2)

      let malformed = 0
      const protocol = yield* makeHarness({
        cache: { circuitBreakerFailures: 2 },
        metadata: () => ({
          lookup: () => counting(() => malformed++, () => failing("Protocol", "lookup"))
        })
      })
      for (let i = 0; i < 5; i++) yield* protocol.cache.cached(Effect.succeed(1), { key: "k" })
      assert.strictEqual(malformed, 5)
      assert.strictEqual((yield* protocol.cache.stats).metadataBreaker, "closed")

      let refused = 0
      const off = yield* makeHarness({
        cache: { circuitBreakerFailures: 0 },
        metadata: () => ({
          lookup: () => counting(() => refused++, () => failing("Unavailable", "lookup")),
          releaseLock: () => failing("Unavailable", "releaseLock")
        })
      })
      for (let i = 0; i < 10; i++) yield* off.cache.cached(Effect.succeed(1), { key: "k" })
      assert.strictEqual(refused, 10)
      assert.strictEqual((yield* off.cache.stats).metadataBreaker, "closed")
    }).pipe(quiet))
})

describe("circuit breaker: the blob store", () => {
  it.scoped("a hung blob store: once open, calls take no deadline; inline entries still serve", () =>
    Effect.gen(function*() {
      let hung = false
      let gets = 0
      const { cache } = yield* makeHarness({
        cache: {
          circuitBreakerFailures: 2,
          blobTimeout: "2 seconds",
          inlineThreshold: 1024,
          compression: "none"
        },
        blobs: (store) => ({
          get: (key) => counting(() => gets++, () => hung ? Effect.never : store.get(key)),
          put: (key, bytes) =>
            hung
              ? Effect.fail(new BlobStoreError({ reason: "Unavailable", method: "put", key }))
              : store.put(key, bytes)
        })
      })
      const small = counted({ total: 1234 })
      const large = counted("x".repeat(4096))
      yield* cache.cached(small.effect, { key: "small" })
      yield* cache.cached(large.effect, { key: "large" })
      yield* cache.flush

      hung = true
      for (let i = 0; i < 2; i++) yield* pastDeadline(cache.cached(large.effect, { key: "large" }), "3 seconds")
      assert.strictEqual(gets, 2)
      assert.strictEqual((yield* cache.stats).blobBreaker, "open")
      assert.strictEqual((yield* cache.stats).metadataBreaker, "closed")
      // no clock adjustment: a call that waited for the blob deadline would never return here
      for (let i = 0; i < 5; i++) assert.strictEqual((yield* cache.cached(large.effect, { key: "large" })).length, 4096)
      assert.strictEqual(gets, 2, "the blob store is skipped")
      assert.strictEqual(large.runs, 8, "the large entry's object is out of reach: the effect ran")
      for (let i = 0; i < 5; i++) {
        assert.deepStrictEqual(yield* cache.cached(small.effect, { key: "small" }), { total: 1234 })
      }
      assert.strictEqual(small.runs, 1, "the inline entry is served without the blob store")
    }).pipe(quiet))
})
