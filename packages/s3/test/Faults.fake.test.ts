/**
 * Faults a real S3 server does not produce on demand, from the tiny `node:http` S3 of `utils/fakeS3.ts`: 503s,
 * a drip-fed body, a server that never answers, a short body, a wrong checksum header, flipped bytes. For each:
 * the store fails within its budget with the right reason, and the cache still returns the right value within the
 * deadline plus a margin. Then 1000 calls with mixed faults, after which no socket is left behind.
 */
import { assert, describe, it } from "@effect/vitest"
import { assertSameBytes } from "@s3cache/core/test/BlobStoreSuite"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as S3BlobStore from "../src/S3BlobStore.js"
import * as FakeS3 from "./utils/fakeS3.js"
import { storeOptions } from "./utils/servers.js"
import { cacheOn, withinDeadline } from "./utils/timing.js"

const timeoutMs = 400
const quiet = Logger.withMinimumLogLevel(LogLevel.None)
const value = { answer: 42, rows: Array.from({ length: 100 }, (_, i) => `row ${i}`) }

const setup = (options: Partial<S3BlobStore.Options> = {}) =>
  Effect.gen(function*() {
    const fake = yield* FakeS3.make
    const store = yield* S3BlobStore.make({ ...storeOptions(fake, "fake-bucket"), timeout: timeoutMs, ...options })
    return { fake, store }
  })

describe("S3BlobStore under injected faults (fake S3)", () => {
  it.scopedLive("503: a get fails at once without a retry; a put is retried once", () =>
    Effect.gen(function*() {
      const { fake, store } = yield* setup()
      yield* store.put("k/a", new Uint8Array([1, 2, 3]))
      fake.setFault({ status: 503, code: "SlowDown" }, { method: "GET" })
      const error = yield* withinDeadline(Effect.flip(store.get("k/a")), timeoutMs, "get on 503")
      assert.strictEqual(error.reason, "Unavailable")
      assert.strictEqual(fake.count("GET"), 1, "reads are not retried")

      fake.setFault(undefined)
      fake.setFault({ status: 503, code: "SlowDown" }, { method: "PUT", times: 1 })
      yield* store.put("k/b", new Uint8Array([4]))
      assert.strictEqual(fake.count("PUT"), 3, "1 + a failed attempt and its retry")
      fake.setFault({ status: 500, code: "InternalError" }, { method: "PUT" })
      const putError = yield* withinDeadline(Effect.flip(store.put("k/c", new Uint8Array([5]))), timeoutMs, "put")
      assert.strictEqual(putError.reason, "Unavailable")
      assert.strictEqual(fake.count("PUT"), 5, "two attempts, no more")
      fake.setFault(undefined)
      assertSameBytes(Option.getOrThrow(yield* store.get("k/b")), new Uint8Array([4]))
    }), 30_000)

  it.scopedLive(
    "a drip-fed body or a silent server times out within the budget; the socket is closed",
    () =>
      Effect.gen(function*() {
        const { fake, store } = yield* setup()
        yield* store.put("k/slow", new Uint8Array(2000).fill(7))
        fake.setFault({ drip: { bytes: 1, everyMs: 20 } }, { method: "GET" })
        const dripped = yield* withinDeadline(Effect.flip(store.get("k/slow")), timeoutMs, "drip-fed get")
        assert.strictEqual(dripped.reason, "Timeout")
        assert.include(dripped.message, "budget")
        fake.setFault("hang", { method: "GET" })
        const silent = yield* withinDeadline(Effect.flip(store.get("k/slow")), timeoutMs, "silent get")
        assert.strictEqual(silent.reason, "Timeout")
        fake.setFault("hang", { method: "PUT" })
        const silentPut = yield* withinDeadline(Effect.flip(store.put("k/p", new Uint8Array(10))), timeoutMs, "put")
        assert.strictEqual(silentPut.reason, "Timeout")
        // the sockets of the abandoned requests were destroyed, not left to the server's keep-alive timeout
        yield* Effect.sleep("100 millis")
        assert.strictEqual(yield* fake.openConnections, 0)
        fake.setFault(undefined)
        assert.strictEqual(Option.getOrThrow(yield* store.get("k/slow")).byteLength, 2000)
      }),
    30_000
  )

  it.scopedLive(
    "a short body, a wrong checksum and flipped bytes never come back as a value",
    () =>
      Effect.gen(function*() {
        const { fake, store } = yield* setup()
        const supported = yield* S3BlobStore.make({
          ...storeOptions(fake, "fake-bucket"),
          timeout: timeoutMs,
          checksums: "when-supported"
        })
        const bytes = new Uint8Array(5000).map((_, i) => i % 256)
        yield* store.put("k/x", bytes)
        fake.setFault({ shortBody: 1000 }, { method: "GET" })
        const short = yield* Effect.flip(store.get("k/x"))
        assert.oneOf(short.reason, ["Unavailable", "Protocol"])
        fake.setFault("wrongChecksum", { method: "GET" })
        // without checksum validation (non-AWS default) the header is ignored: the bytes are right
        assertSameBytes(Option.getOrThrow(yield* store.get("k/x")), bytes)
        // with validation the mismatch is a Protocol error, which the cache treats as a bad entry
        const mismatch = yield* Effect.flip(supported.get("k/x"))
        assert.strictEqual(mismatch.reason, "Protocol")
        assert.include(mismatch.message, "checksum")
      }),
    30_000
  )

  it.scopedLive(
    "the cache returns the right value through every fault, within the deadline",
    () =>
      Effect.gen(function*() {
        const { fake, store } = yield* setup()
        const cache = yield* cacheOn(store)
        let runs = 0
        const query = Effect.sync(() => {
          runs++
          return value
        })
        yield* cache.cached(query, { key: "q" })
        yield* cache.flush
        const faults: ReadonlyArray<FakeS3.Fault> = [
          { status: 503, code: "SlowDown" },
          { drip: { bytes: 1, everyMs: 50 } },
          "hang",
          { shortBody: 10 },
          "corrupt"
        ]
        for (const fault of faults) {
          fake.setFault(fault, { method: "GET" })
          const got = yield* withinDeadline(cache.cached(query, { key: "q" }), timeoutMs, JSON.stringify(fault))
          assert.deepStrictEqual(got, value, JSON.stringify(fault))
          fake.setFault(undefined)
          yield* cache.flush
        }
        // healthy again: a hit, the effect does not run
        const before = runs
        assert.deepStrictEqual(yield* cache.cached(query, { key: "q" }), value)
        assert.strictEqual(runs, before)
      }).pipe(quiet),
    30_000
  )

  it.scopedLive(
    "no socket leak after 1000 calls with faults; the pool still serves requests",
    () =>
      Effect.gen(function*() {
        const maxSockets = 8
        const fake = yield* FakeS3.make
        // the store and its cache in a scope of their own, closed before the server
        const scope = yield* Scope.make()
        const store = yield* S3BlobStore.make({ ...storeOptions(fake, "fake-bucket"), timeout: timeoutMs, maxSockets })
          .pipe(Scope.extend(scope))
        // the breaker off: this test is about what every call does to the pool under faults (4 failures in a row are
        // part of the plan); CacheBreaker and Faults.s3rver test the breaker
        const cache = yield* cacheOn(store, undefined, 0, { circuitBreakerFailures: 0 }).pipe(Scope.extend(scope))
        // 100 entries; 16 calls in flight over consecutive keys, so no two share a read through single flight
        const keys = Array.from({ length: 100 }, (_, i) => `key-${i}`)
        yield* Effect.forEach(keys, (key) => cache.cached(Effect.succeed({ key, value }), { key }), { concurrency: 16 })
        yield* cache.flush
        const cycle: ReadonlyArray<FakeS3.Fault | undefined> = [
          undefined,
          { status: 503, code: "SlowDown" },
          { shortBody: 5 },
          "corrupt",
          { status: 500, code: "InternalError" },
          undefined,
          "wrongChecksum",
          { shortBody: 0 },
          { drip: { bytes: 1, everyMs: 100 } },
          "hang"
        ]
        fake.setFaultPlan("GET", (index) => cycle[index % cycle.length])
        let slowest = 0
        const timed = <A, E>(effect: Effect.Effect<A, E>) =>
          Effect.suspend(() => {
            const started = Date.now()
            return Effect.ensuring(effect, Effect.sync(() => (slowest = Math.max(slowest, Date.now() - started))))
          })
        // 1000 cached calls: every one returns the right value
        yield* Effect.forEach(
          Array.from({ length: 1000 }, (_, i) => keys[i % keys.length]!),
          (key) =>
            timed(cache.cached(Effect.succeed({ key, value }), { key })).pipe(
              Effect.map((got) => assert.deepStrictEqual(got, { key, value }))
            ),
          { concurrency: 16, discard: true }
        )
        const cachedGets = fake.count("GET")
        // 1000 raw store reads: bytes or a typed error, never a hang (flipped bytes are the cache's to catch)
        const outcomes = new Map<string, number>()
        fake.setFaultPlan("GET", undefined)
        for (let i = 0; i < 10; i++) yield* store.put(`probe/${i}`, new Uint8Array(3000).fill(i))
        fake.setFaultPlan("GET", (index) => cycle[index % cycle.length])
        yield* Effect.forEach(Array.from({ length: 1000 }, (_, i) => i), (i) =>
          timed(Effect.either(store.get(`probe/${i % 10}`))).pipe(
            Effect.map((result) => {
              const outcome = result._tag === "Right" ? "value" : result.left.reason
              outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
            })
          ), { concurrency: 16, discard: true })
        assert.isAtMost(slowest, timeoutMs + 1500, `slowest call ${slowest} ms`)
        // The plan: 2 in 10 answer right and 2 flip or mislabel bytes (400 values: the cache's checksum catches the
        // bad ones), 4 fail (400 Unavailable), 2 hang or drip (200 Timeout). Each fault's own outcome is asserted
        // exactly in the tests above; here a loaded machine may push an answer past the 400 ms budget, turning a
        // value or an Unavailable into a Timeout, never the other way, and nothing may end any other way.
        const counts = { value: 0, Unavailable: 0, Timeout: 0, ...Object.fromEntries(outcomes) }
        const described = JSON.stringify(counts)
        assert.deepStrictEqual(Object.keys(counts).sort(), ["Timeout", "Unavailable", "value"], described)
        assert.strictEqual(counts.value + counts.Unavailable + counts.Timeout, 1000, described)
        assert.isAtMost(counts.value, 400, described)
        assert.isAtMost(counts.Unavailable, 400, described)
        assert.isAtLeast(counts.Timeout, 200, described)
        assert.isAtMost(counts.Timeout, 250, `more than 50 answers ran late: ${described}`)
        // every call that got an answer reached the server (one that ran out of time waiting for a pooled socket, on
        // a loaded machine, may not have: it is among the Timeouts)
        assert.isAtLeast(fake.count("GET") - cachedGets, counts.value + counts.Unavailable, described)
        // never more connections than the pool allows, even with aborted requests in the mix
        assert.isAtMost(yield* fake.openConnections, maxSockets)
        fake.setFaultPlan("GET", undefined)
        // the pool is not exhausted: 100 more calls are all hits
        yield* cache.flush
        const hitsBefore = (yield* cache.stats).hits
        yield* Effect.forEach(
          keys,
          (key) =>
            withinDeadline(cache.cached(Effect.die("must hit"), { key }), timeoutMs, "healthy call"),
          { concurrency: 16 }
        )
        assert.strictEqual((yield* cache.stats).hits - hitsBefore, 100)
        const accepted = fake.acceptedConnections()
        yield* Scope.close(scope, Exit.void).pipe(Effect.zipRight(Effect.sleep("100 millis")))
        // closing the store closes every socket it had
        assert.strictEqual(yield* fake.openConnections, 0, `after close (${accepted} connections accepted in all)`)
      }).pipe(quiet),
    120_000
  )
})
