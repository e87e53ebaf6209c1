/**
 * `pnpm bench`: latency of the cached call on the embedded layers against the bare effect, in one run.
 *
 * For each payload and each blob store (memory, local folder):
 * - bare: the effect alone (it returns a prebuilt value: the cost of the call machinery, no cache);
 * - hit: `Cache.cached` answered from the cache (lookup + read + checksum + decompress + decode);
 * - miss: a new key each time (lookup + lock + the effect + forking the background write); the caller's latency;
 * - persist: the background write of one miss (encode + compress + write + commit), waited for with `flush`.
 *
 * Then what the snapshot costs a miss (1 KB, 100 KB, 10 MB): a miss encodes the value when the effect completes,
 * before the caller gets it, so that what is stored is the value as it was then. For each payload: the miss latency
 * on the memory stores, the snapshot alone (`Serializer.snapshot`), and what a caller that joined the computation pays
 * for a copy of its own (`Serializer.restore`).
 *
 * Medians and p99 in milliseconds; this machine is noisy, so compare ratios within one run.
 */
import { Cache, Serializer } from "@s3cache/core"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { performance } from "node:perf_hooks"

const payloads = {
  "1 KB object": { id: 1, name: "x".repeat(900), tags: ["a", "b"], at: new Date(0) },
  "100 KB rows": Array.from({ length: 1000 }, (_, id) => ({ id, amount: id * 1.5, label: `row ${id}` })),
  "1 MB bytes": new Uint8Array(1024 * 1024).map((_, i) => (i * 31) % 251)
} as const

const iterations = (name: string) => name.startsWith("1 MB") ? 200 : 1000
const warmup = 50

const quantile = (sorted: ReadonlyArray<number>, q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!

const summarize = (samples: Array<number>) => {
  const sorted = samples.sort((a, b) => a - b)
  return { median: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) }
}

const time = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const start = performance.now()
    yield* effect
    return performance.now() - start
  })

const measure = <E, R>(n: number, sample: (i: number) => Effect.Effect<number, E, R>) =>
  Effect.gen(function*() {
    for (let i = 0; i < Math.min(warmup, n); i++) yield* sample(-1 - i)
    const samples: Array<number> = []
    for (let i = 0; i < n; i++) samples.push(yield* sample(i))
    return summarize(samples)
  })

const bench = (payloadName: keyof typeof payloads) =>
  Effect.gen(function*() {
    const value = payloads[payloadName]
    const effect = Effect.succeed(value)
    const n = iterations(payloadName)
    const cache = yield* Cache.Cache

    const bare = yield* measure(n, () => time(effect))

    yield* Cache.cached(effect, "hot")
    yield* Cache.flush
    const hit = yield* measure(n, () => time(Cache.cached(effect, "hot")))

    let persistSamples: Array<number> = []
    const miss = yield* measure(n, (i) =>
      Effect.gen(function*() {
        const ms = yield* time(Cache.cached(effect, ["miss", payloadName, i]))
        const persist = yield* time(Cache.flush)
        if (i >= 0) persistSamples.push(persist)
        return ms
      }))
    const persist = summarize(persistSamples)
    persistSamples = []
    yield* cache.clear
    return { bare, hit, miss, persist }
  })

const fmt = (ms: number) => ms < 0.01 ? ms.toFixed(4) : ms < 1 ? ms.toFixed(3) : ms.toFixed(2)

const rowsOf = (n: number) => Array.from({ length: n }, (_, id) => ({ id, amount: id * 1.5, label: `row ${id}` }))

/** Payloads of the snapshot table, with their sizes as v8 encodes them. */
const snapshotPayloads = [
  { name: "1 KB object", value: payloads["1 KB object"], n: 1000 },
  { name: "100 KB rows", value: rowsOf(2_200), n: 300 },
  { name: "10 MB rows", value: rowsOf(220_000), n: 15 }
] as const

const snapshotCost = Effect.gen(function*() {
  const serializer = Serializer.make({})
  const rows = [
    "| payload | encoded size | miss median | snapshot median | snapshot / miss | restore median (per joiner) |",
    "|---|---|---|---|---|---|"
  ]
  const layer = Cache.layerEmbedded({ storageBackend: "memory", name: "bench-snapshot", maxCacheEntries: 100_000 })
  for (const { n, name, value } of snapshotPayloads) {
    const snapshot = yield* serializer.snapshot(value, { format: "auto" })
    const effect = Effect.succeed(value)
    const miss = yield* measure(n, (i) =>
      Effect.gen(function*() {
        const ms = yield* time(Cache.cached(effect, ["snapshot", name, i]))
        yield* Cache.flush
        return ms
      })).pipe(Effect.provide(layer))
    const snap = yield* measure(n, () => time(serializer.snapshot(value, { format: "auto" })))
    const restore = yield* measure(n, () => time(serializer.restore(snapshot, {})))
    rows.push(
      `| ${name} | ${(snapshot.bytes.byteLength / 1024).toFixed(0)} KiB | ${fmt(miss.median)} | ` +
        `${fmt(snap.median)} | ${(100 * snap.median / miss.median).toFixed(0)} % | ${fmt(restore.median)} |`
    )
    yield* Effect.sync(() => console.log(rows[rows.length - 1]))
  }
  return rows
})

const main = Effect.gen(function*() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "s3cache-bench-"))
  const rows: Array<string> = []
  const header = "| blob store | payload | bare median | hit median | hit p99 | miss median | miss p99 | " +
    "persist median | hit / bare |"
  rows.push(header, "|---|---|---|---|---|---|---|---|---|")
  try {
    for (const backend of ["memory", "local"] as const) {
      const layer = Cache.layerEmbedded({
        storageBackend: backend,
        localPath: dir,
        name: `bench-${backend}`,
        maxCacheEntries: 100_000
      })
      for (const payloadName of Object.keys(payloads) as Array<keyof typeof payloads>) {
        const r = yield* bench(payloadName).pipe(Effect.provide(layer))
        rows.push(
          `| ${backend} | ${payloadName} | ${fmt(r.bare.median)} | ${fmt(r.hit.median)} | ${fmt(r.hit.p99)} | ` +
            `${fmt(r.miss.median)} | ${fmt(r.miss.p99)} | ${fmt(r.persist.median)} | ` +
            `${(r.hit.median / r.bare.median).toFixed(0)}x |`
        )
        yield* Effect.sync(() => console.log(rows[rows.length - 1]))
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
  rows.push("", "What the snapshot costs a miss (memory stores):", "", ...yield* snapshotCost)
  return rows
})

console.log(`s3cache bench: Node ${process.version}, ${os.cpus().length} cores; times in ms\n`)
main.pipe(
  Logger.withMinimumLogLevel(LogLevel.Warning),
  Effect.runPromise
).then((rows) => console.log(`\n${rows.join("\n")}`)).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
