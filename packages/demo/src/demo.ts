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

const program = Effect.gen(function*() {
  const cache = yield* Cache.Cache
  const backends = yield* Backends.describe
  yield* line(
    `s3cache demo: metadata in ${backends.metadata}, payloads in ${backends.payloads}, ` +
      `compression ${cache.config.compression}\n`
  )

  const sql = "SELECT id, amount, at FROM orders WHERE year = 2026"
  const cold = yield* timed(slowQuery(sql).pipe(Cache.cached({ key: sql, namespace: "demo" })))
  yield* line(`1. cold call   ${cold.ms.toFixed(1).padStart(7)} ms  ${cold.value.length} rows  (the query ran)`)

  // the cold call returned before its value was stored; wait for the background write
  yield* Cache.flush
  const warm = yield* timed(slowQuery(sql).pipe(Cache.cached({ key: sql, namespace: "demo" })))
  yield* line(
    `2. warm call   ${warm.ms.toFixed(1).padStart(7)} ms  ${warm.value.length} rows  (answered from the cache)`
  )

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
  yield* line(
    `4. stats: hits ${stats.hits}, misses ${stats.misses}, coalesced ${stats.coalesced}, errors ${stats.errors}, ` +
      `hit rate ${(stats.hitRate * 100).toFixed(0)}%, avg hit ${stats.avgHitLatencyMs.toFixed(1)} ms, ` +
      `avg miss ${stats.avgMissLatencyMs.toFixed(1)} ms, writes ${stats.writes} (${stats.bytesWritten} bytes stored)`
  )

  const removed = yield* Cache.invalidateNamespace("demo")
  yield* line(`5. invalidateNamespace("demo"): ${removed} entries and their objects removed`)
})

// runMain reports a failure and sets the exit code; Ctrl-C interrupts the program, which closes the cache's layer
program.pipe(
  Effect.provide(Backends.layer),
  Logger.withMinimumLogLevel(LogLevel.Warning),
  NodeRuntime.runMain
)
