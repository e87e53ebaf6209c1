/**
 * `pnpm exec tsx packages/s3/bench/failSafe.bench.ts`: what callers see when the source or the blob store fails,
 * with and without the fail-safe options. 16 callers loop over 20 keys for a few seconds each; payloads go to S3 (an
 * s3rver started here, loopback), metadata in memory.
 *
 * - source failing 50 % of its runs (5 ms each), TTL 200 ms: without `grace`, every miss has a coin's chance of
 *   failing its caller; with `grace` (refresh in the background), a stale entry answers and the refresh is retried
 *   after `graceBackoff`.
 * - source slow: 5 ms, and one run in ten 50 ms (p99 ×10), TTL 200 ms: without `grace` a caller that misses waits
 *   for it; with `grace`, a stale entry answers at once; with `refresh: "foreground"` and `softTimeout: 10 ms`, a
 *   caller waits at most that long.
 * - S3 hung (s3rver SIGSTOPped) after the entries are written, store timeout 1 s: with the circuit breaker off
 *   (`circuitBreakerFailures: 0`), every call pays the S3 deadline; with it (the default), the first calls do, then
 *   the effect runs at once.
 *
 * Columns: calls completed, calls/s, p50 and p99 latency (ms), calls that failed, stale answers, runs of the source.
 */
import * as Cache from "@s3cache/core/Cache"
import type * as CacheConfig from "@s3cache/core/CacheConfig"
import * as MetadataStore from "@s3cache/core/MetadataStore"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { performance } from "node:perf_hooks"
import * as S3BlobStore from "../src/S3BlobStore.js"
import { type ChildServer, createBucket, s3rver, storeOptions } from "../test/utils/servers.js"

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true"

const bucket = "bench-fail-safe"
const callers = 16
const keys = 20
const seconds = Number(process.env.S3CACHE_BENCH_SECONDS ?? 4)

interface Row {
  readonly scenario: string
  readonly variant: string
  readonly calls: number
  readonly failed: number
  readonly p50: number
  readonly p99: number
  readonly stale: number
  readonly runs: number
}

const quantile = (sorted: ReadonlyArray<number>, q: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!

let caches = 0

/** Run the workload on a fresh cache with `options`; `source(run)` is the effect of the run-th run. */
const measure = (
  server: ChildServer,
  scenario: string,
  variant: string,
  options: CacheConfig.Options,
  source: (run: number) => Effect.Effect<string, string>,
  storeTimeoutMs: number,
  before?: (call: (key: number) => Promise<unknown>) => Promise<void>
) =>
  Effect.promise(async () => {
    const layer = Cache.layer({
      name: `fail-safe-${++caches}`,
      inlineThreshold: 0,
      defaultTtl: "200 millis",
      ...options
    })
      .pipe(
        Layer.provide(MetadataStore.layerMemory),
        Layer.provide(S3BlobStore.layer({ ...storeOptions(server, bucket), timeout: storeTimeoutMs })),
        Layer.provide(Logger.minimumLogLevel(LogLevel.None))
      )
    const runtime = ManagedRuntime.make(layer)
    let runs = 0
    const call = (key: number) =>
      runtime.runPromise(Effect.either(Cache.cached(Effect.suspend(() => source(++runs)), { key: `key-${key}` })))
    // every key written once, while everything works
    for (let key = 0; key < keys; key++) {
      for (let attempt = 0; attempt < 20; attempt++) {
        if ((await call(key))._tag === "Right") break
      }
    }
    await runtime.runPromise(Cache.flush)
    await before?.(call)
    const latencies: Array<number> = []
    let failed = 0
    const stop = performance.now() + seconds * 1000
    const statsBefore = await runtime.runPromise(Cache.stats)
    const runsBefore = runs
    await Promise.all(Array.from({ length: callers }, async (_, caller) => {
      for (let i = 0; performance.now() < stop; i++) {
        const started = performance.now()
        const result = await call((caller * 7 + i) % keys)
        latencies.push(performance.now() - started)
        if (result._tag === "Left") failed++
      }
    }))
    const stats = await runtime.runPromise(Cache.stats)
    await runtime.dispose()
    latencies.sort((a, b) => a - b)
    return {
      scenario,
      variant,
      calls: latencies.length,
      failed,
      p50: quantile(latencies, 0.5),
      p99: quantile(latencies, 0.99),
      stale: stats.staleServed - statsBefore.staleServed,
      runs: runs - runsBefore
    } satisfies Row
  })

const flaky = (run: number): Effect.Effect<string, string> =>
  Effect.sleep("5 millis").pipe(
    Effect.zipRight(Math.random() < 0.5 ? Effect.fail(`run ${run} failed`) : Effect.succeed(`value of run ${run}`))
  )

const slow = (run: number): Effect.Effect<string, string> =>
  Effect.as(Effect.sleep(Math.random() < 0.1 ? "50 millis" : "5 millis"), `value of run ${run}`)

const steady = (run: number): Effect.Effect<string, string> =>
  Effect.as(Effect.sleep("5 millis"), `value of run ${run}`)

const program = Effect.gen(function*() {
  const server = yield* s3rver
  yield* createBucket(server, bucket)
  const rows: Array<Row> = []
  const grace = { grace: "1 minute", graceBackoff: "1 second" } as const
  rows.push(yield* measure(server, "source fails 50 %", "no options", {}, flaky, 5000))
  rows.push(yield* measure(server, "source fails 50 %", "grace", grace, flaky, 5000))
  rows.push(
    yield* measure(server, "source fails 50 %", "grace, foreground", { ...grace, refresh: "foreground" }, flaky, 5000)
  )
  rows.push(yield* measure(server, "source slow (p99 ×10)", "no options", {}, slow, 5000))
  rows.push(yield* measure(server, "source slow (p99 ×10)", "grace", grace, slow, 5000))
  rows.push(
    yield* measure(
      server,
      "source slow (p99 ×10)",
      "grace, foreground, softTimeout 10 ms",
      {
        ...grace,
        refresh: "foreground",
        softTimeout: "10 millis"
      },
      slow,
      5000
    )
  )
  const pid = server.pid()
  const hang = async () => {
    process.kill(pid!, "SIGSTOP")
  }
  try {
    rows.push(
      yield* measure(
        server,
        "S3 hung",
        "breaker off",
        { circuitBreakerFailures: 0, defaultTtl: "1 hour" },
        steady,
        1000,
        hang
      )
    )
    process.kill(pid!, "SIGCONT")
    rows.push(yield* measure(server, "S3 hung", "breaker (default)", { defaultTtl: "1 hour" }, steady, 1000, hang))
  } finally {
    process.kill(pid!, "SIGCONT")
  }
  const fmt = (ms: number) => (ms < 10 ? ms.toFixed(2) : ms.toFixed(0))
  console.log(`\n${callers} callers, ${keys} keys, ${seconds} s per row\n`)
  console.log("| scenario | options | calls | calls/s | p50 ms | p99 ms | failed | stale | source runs |")
  console.log("|---|---|---|---|---|---|---|---|---|")
  for (const row of rows) {
    console.log(
      `| ${row.scenario} | ${row.variant} | ${row.calls} | ${(row.calls / seconds).toFixed(0)} | ${fmt(row.p50)} | ${
        fmt(row.p99)
      } | ${row.failed} | ${row.stale} | ${row.runs} |`
    )
  }
})

Effect.runPromise(Effect.scoped(program)).catch((error) => {
  console.error(error)
  process.exit(1)
})
