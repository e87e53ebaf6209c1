/**
 * The main job: a slow, query-like effect through the cache. Run with `pnpm demo`: on the embedded default (memory
 * metadata, payloads in a local folder; no server), or on Redis with `S3CACHE_REDIS_URL=redis://…`. Every
 * `S3CACHE_*` variable applies.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cache } from "@s3cache/core"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import { isDeepStrictEqual } from "node:util"
import * as Backends from "./layer.js"

let executions = 0

/** Stands in for a SQL query: 300 ms of "database time", then 10,000 rows. */
const slowQuery = (sql: string) =>
  Effect.gen(function*() {
    executions++
    yield* Effect.sleep("300 millis")
    return Array.from({ length: 10_000 }, (_, id) => ({ id, sql, amount: (id * 37) % 1000, at: new Date(0) }))
  })

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.timed(effect), ([duration, value]) => ({ ms: Duration.toMillis(duration), value }))

const line = Console.log

/**
 * What the cache did for `effect`, from its counters before and after: the demo says what happened, never what it
 * hoped would happen.
 */
const observed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const before = yield* Cache.stats
    const ran = executions
    const result = yield* timed(effect)
    const after = yield* Cache.stats
    const hits = after.hits - before.hits
    const failures = after.errors - before.errors
    const queries = executions - ran
    const how = hits > 0 && queries === 0
      ? "answered from the cache"
      : failures > 0
      ? `the query ran: the cache's stores failed ${failures} time(s), so it ran uncached (fail-open)`
      : "the query ran"
    return { ...result, how }
  })

let storeFailures = 0

const program = Effect.gen(function*() {
  const cache = yield* Cache.Cache
  const backends = yield* Backends.describe
  yield* line(
    `s3cache demo: metadata in ${backends.metadata}, payloads in ${backends.payloads}, ` +
      `compression ${cache.config.compression}\n`
  )

  const sql = "SELECT id, amount, at FROM orders WHERE year = 2026"
  const cold = yield* observed(slowQuery(sql).pipe(Cache.cached({ key: sql, namespace: "demo" })))
  yield* line(`1. cold call   ${cold.ms.toFixed(1).padStart(7)} ms  ${cold.value.length} rows  (${cold.how})`)

  // the cold call returned before its value was stored; wait for the background write
  yield* Cache.flush
  const warm = yield* observed(slowQuery(sql).pipe(Cache.cached({ key: sql, namespace: "demo" })))
  yield* line(`2. warm call   ${warm.ms.toFixed(1).padStart(7)} ms  ${warm.value.length} rows  (${warm.how})`)

  const before = executions
  const other = "SELECT id, amount, at FROM orders WHERE year = 2025"
  const crowd = yield* timed(
    Effect.all(
      Array.from({ length: 100 }, () => slowQuery(other).pipe(Cache.cached({ key: other, namespace: "demo" }))),
      { concurrency: "unbounded" }
    )
  )
  // each caller gets a copy of its own (restored from the value's snapshot), so no caller's mutation reaches another
  const first = crowd.value[0]!
  const equal = crowd.value.every((rows) =>
    rows.length === first.length && isDeepStrictEqual(rows[0], first[0]) && isDeepStrictEqual(rows.at(-1), first.at(-1))
  )
  const copies = new Set(crowd.value).size
  yield* line(
    `3. 100 concurrent callers on a new key: ${crowd.ms.toFixed(1)} ms, the query ran ${executions - before} ` +
      `time(s), ${crowd.value.length} callers got ${equal ? "equal values" : "DIFFERENT VALUES"}, ${copies} copies`
  )

  yield* Cache.flush
  const stats = yield* Cache.stats
  storeFailures = stats.errors
  yield* line(
    `4. stats: hits ${stats.hits}, misses ${stats.misses}, coalesced ${stats.coalesced}, errors ${stats.errors}, ` +
      `hit rate ${(stats.hitRate * 100).toFixed(0)}%, avg hit ${stats.avgHitLatencyMs.toFixed(1)} ms, ` +
      `avg miss ${stats.avgMissLatencyMs.toFixed(1)} ms, writes ${stats.writes} (${stats.bytesWritten} bytes stored)`
  )

  // an administrative call reports a store's failure to its caller (a cached call never does): say so, and go on
  yield* Cache.invalidateNamespace("demo").pipe(
    Effect.matchEffect({
      onSuccess: (removed) => line(`5. invalidateNamespace("demo"): ${removed} entries and their objects removed`),
      onFailure: (error) =>
        Effect.sync(() => storeFailures++).pipe(
          Effect.zipRight(line(`5. invalidateNamespace("demo") failed: ${error.message.split("\n")[0]}`))
        )
    })
  )
  yield* line(
    storeFailures === 0
      ? "\nevery call got its value; the cache answered what it had"
      : `\nevery call got its value, but the cache's stores failed ${storeFailures} time(s): calls ran uncached ` +
        "(fail-open). Check the warnings above, or run `s3cache doctor`"
  )
})

// runMain reports a failure and sets the exit code; Ctrl-C interrupts the program, which closes the cache's layer
program.pipe(
  Effect.provide(Backends.layer),
  Logger.withMinimumLogLevel(LogLevel.Warning),
  NodeRuntime.runMain
)
