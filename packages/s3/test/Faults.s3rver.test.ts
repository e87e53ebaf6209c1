/**
 * Faults of a real S3 server: s3rver SIGKILLed and restarted, and every mode of the TCP fault proxy (applied to
 * connections already open) between the store and s3rver. Each call of the cache returns the right value within
 * the store's deadline plus a margin, and the cache hits again once the fault is gone.
 */
import { assert, describe, it } from "@effect/vitest"
import * as FaultProxy from "@s3cache/core/test/FaultProxy"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as S3BlobStore from "../src/S3BlobStore.js"
import { createBucket, s3rver, storeOptions } from "./utils/servers.js"
import { cacheOn, withinDeadline } from "./utils/timing.js"

const timeoutMs = 500
const bucket = "faults"
const quiet = Logger.withMinimumLogLevel(LogLevel.None)

const counted = <A>(value: A) => {
  let runs = 0
  return {
    effect: Effect.sync(() => {
      runs++
      return value
    }),
    runs: () => runs
  }
}

describe("S3BlobStore with s3rver failing", () => {
  it.scopedLive(
    "SIGKILLed: calls return the right value within the deadline; once restarted, the breaker's probe finds it",
    () =>
      Effect.gen(function*() {
        const server = yield* s3rver
        yield* createBucket(server, bucket)
        const store = yield* S3BlobStore.make({ ...storeOptions(server, bucket), timeout: timeoutMs })
        const cache = yield* cacheOn(store, undefined, 0, { circuitBreakerCooldown: "1 second" })
        const query = counted({ report: "q3", total: 1234 })
        yield* cache.cached(query.effect, { key: "report" })
        yield* cache.flush
        assert.strictEqual(query.runs(), 1)

        yield* server.kill
        for (let i = 0; i < 20; i++) {
          const value = yield* withinDeadline(cache.cached(query.effect, { key: "report" }), timeoutMs, `call ${i}`)
          assert.deepStrictEqual(value, { report: "q3", total: 1234 })
        }
        assert.strictEqual(query.runs(), 21, "the effect ran for each call while S3 was down")

        assert.strictEqual((yield* cache.stats).blobBreaker, "open", "refused 20 times: the breaker skips S3")

        yield* server.restart
        // the cool-down ends; the next call is the probe
        yield* Effect.sleep("1100 millis")
        const runs = query.runs()
        const back = yield* cache.cached(query.effect, { key: "report" })
        assert.deepStrictEqual(back, { report: "q3", total: 1234 })
        assert.strictEqual(query.runs(), runs, "a hit once s3rver is back (same data folder)")
        assert.strictEqual((yield* cache.stats).blobBreaker, "closed")
      }).pipe(quiet),
    60_000
  )

  it.scopedLive(
    "SIGKILLed: entries whose payload is inline keep hitting, and no call waits for S3; large ones run the effect",
    () =>
      Effect.gen(function*() {
        const server = yield* s3rver
        yield* createBucket(server, bucket)
        const store = yield* S3BlobStore.make({ ...storeOptions(server, bucket), timeout: timeoutMs })
        const cache = yield* cacheOn(store, undefined, 1024)
        const small = counted({ report: "q3", total: 1234 })
        const large = counted({ report: "q4", rows: Array.from({ length: 2000 }, (_, i) => `row ${i} ${i * 7919}`) })
        yield* cache.cached(small.effect, { key: "small" })
        yield* cache.cached(large.effect, { key: "large" })
        yield* cache.flush

        yield* server.kill
        for (let i = 0; i < 20; i++) {
          // far within the S3 deadline: the metadata store alone answers
          assert.deepStrictEqual(
            yield* withinDeadline(cache.cached(small.effect, { key: "small" }), timeoutMs / 5, `small ${i}`),
            { report: "q3", total: 1234 }
          )
        }
        assert.strictEqual(small.runs(), 1, "an inline entry was served without S3")
        const value = yield* withinDeadline(cache.cached(large.effect, { key: "large" }), timeoutMs, "large")
        assert.strictEqual(value.rows.length, 2000)
        assert.strictEqual(large.runs(), 2, "the large entry's object is out of reach: the effect ran")
        const stats = yield* cache.stats
        assert.strictEqual(stats.hits, 20)
        yield* server.restart
      }).pipe(quiet),
    60_000
  )

  it.scopedLive(
    "SIGSTOPped: once the breaker opens, inline hits and the rest take no S3 deadline; SIGCONT and a probe close it",
    () =>
      Effect.gen(function*() {
        const server = yield* s3rver
        yield* createBucket(server, bucket)
        const store = yield* S3BlobStore.make({ ...storeOptions(server, bucket), timeout: timeoutMs })
        const cache = yield* cacheOn(store, undefined, 1024, {
          circuitBreakerFailures: 2,
          circuitBreakerCooldown: "2 seconds"
        })
        const small = counted({ report: "q3", total: 1234 })
        const large = counted({ report: "q4", rows: Array.from({ length: 2000 }, (_, i) => `row ${i} ${i * 7919}`) })
        yield* cache.cached(small.effect, { key: "small" })
        yield* cache.cached(large.effect, { key: "large" })
        yield* cache.flush

        const pid = server.pid()
        assert.isDefined(pid)
        process.kill(pid!, "SIGSTOP")
        yield* Effect.addFinalizer(() => Effect.sync(() => process.kill(pid!, "SIGCONT")))
        // two calls wait for the S3 deadline, and open the breaker
        for (let i = 0; i < 2; i++) {
          yield* withinDeadline(cache.cached(large.effect, { key: "large" }), timeoutMs, `large ${i}, stalled`)
        }
        assert.strictEqual((yield* cache.stats).blobBreaker, "open")
        const started = Date.now()
        for (let i = 0; i < 10; i++) {
          const value = yield* cache.cached(large.effect, { key: "large" })
          assert.strictEqual(value.rows.length, 2000)
          assert.deepStrictEqual(yield* cache.cached(small.effect, { key: "small" }), { report: "q3", total: 1234 })
        }
        // 20 calls that each paid the deadline would take 10 s; they take milliseconds (the bound is for a loaded
        // machine)
        const elapsed = Date.now() - started
        assert.isBelow(elapsed, 4000, `20 calls with the breaker open took ${elapsed} ms`)
        assert.strictEqual(small.runs(), 1, "the inline entry was served all along")
        assert.strictEqual(large.runs(), 13, "the large entry's object is out of reach: the effect ran, at once")

        process.kill(pid!, "SIGCONT")
        yield* Effect.sleep("2100 millis")
        // the probe: S3 answers again, the breaker closes, the entry is read again
        yield* cache.cached(large.effect, { key: "large" })
        assert.strictEqual((yield* cache.stats).blobBreaker, "closed")
        assert.strictEqual(large.runs(), 13, "a hit through the probe")
      }).pipe(quiet),
    60_000
  )

  const modes: ReadonlyArray<readonly [string, FaultProxy.FaultMode]> = [
    ["blackhole", "blackhole"],
    ["reset", "reset"],
    ["refuse", "refuse"],
    ["latency 100 ms", { latencyMs: 100 }],
    ["truncated, then silence", { truncateAfterBytes: 200, then: "hang" }],
    ["truncated, then closed", { truncateAfterBytes: 200, then: "close" }],
    ["corrupted bytes", { corruptEveryByte: 97 }]
  ]

  it.scopedLive(
    "through every fault-proxy mode, on connections already open: right value, within the deadline",
    () =>
      Effect.gen(function*() {
        const server = yield* s3rver
        yield* createBucket(server, bucket)
        const proxy = yield* FaultProxy.make({ host: "127.0.0.1", port: server.port })
        const store = yield* S3BlobStore.make({
          ...storeOptions({ endpoint: `http://127.0.0.1:${proxy.port}`, credentials: server.credentials }, bucket),
          timeout: timeoutMs
        })
        const cache = yield* cacheOn(store)
        const expected = { rows: Array.from({ length: 3000 }, (_, i) => i * 3) }
        for (const [name, mode] of modes) {
          const query = counted(expected)
          const key = `mode ${name}`
          yield* cache.cached(query.effect, { key })
          yield* cache.flush
          // keep-alive sockets are open now; the mode applies to them
          yield* proxy.setMode(mode)
          const calls = yield* Effect.forEach(
            Array.from({ length: 4 }, (_, i) => i),
            (i) => withinDeadline(cache.cached(query.effect, { key }), timeoutMs, `${name}, call ${i}`),
            { concurrency: 2 }
          )
          for (const value of calls) assert.deepStrictEqual(value, expected, name)
          yield* proxy.setMode("pass")
          yield* cache.flush
          // recovered: a hit (no run) once the proxy passes bytes again
          const runs = query.runs()
          assert.deepStrictEqual(yield* cache.cached(query.effect, { key }), expected, `${name}: after pass`)
          assert.strictEqual(query.runs(), runs, `${name}: must hit after the fault is gone`)
        }
      }).pipe(quiet),
    90_000
  )
})
