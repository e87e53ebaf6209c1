/**
 * `pnpm bench` (comparison part): s3cache side by side with bentocache 1.6.1 and a raw ioredis floor, on one
 * redis-server this script starts on a free loopback port. 1 KB JSON values, 1000 hot keys pre-filled.
 *
 * Each contender runs in a process of its own (`compareWorker.ts`), so one's heap and GC do not weigh on another;
 * rounds are interleaved (round 1 runs every contender once, then round 2, …) and the final table holds medians over
 * rounds, with ratios to the `raw` floor of the same round (a ratio per round, then their median): the machine may be
 * busy with other work, and ratios survive that better than absolute times.
 *
 * Flags: `--rounds N` (default 5), `--quick` (2 rounds, shorter phases), `--only a,b` (contenders by name; `raw` is
 * always run). Environment: `S3CACHE_BENCH_OPTIONS` (JSON, merged into the `Cache.layer` options of every s3cache
 * contender) and `S3CACHE_BENCH_REDIS_OPTIONS` (JSON, merged into `RedisMetadataStore.layer` options), e.g.
 * `S3CACHE_BENCH_OPTIONS='{"compression":"none"}' pnpm tsx packages/redis/bench/compare.bench.ts --quick`.
 */
import * as Effect from "effect/Effect"
import * as ChildProcess from "node:child_process"
import { createRequire } from "node:module"
import * as Os from "node:os"
import { performance } from "node:perf_hooks"
import { fileURLToPath, pathToFileURL } from "node:url"
import * as RedisServer from "../test/utils/RedisServer.js"
import type { ContenderKind, WorkerConfig, WorkerResult } from "./compareWorker.js"

/**
 * The s3cache configurations benched, by name: each becomes a contender (its options go over those of the
 * environment). Add a line here to bench a new option beside the default, e.g.
 * `"s3cache-no-zstd": { cache: { compression: "none" } }`.
 */
const s3cacheVariants: Record<string, {
  readonly label?: string
  readonly cache?: Record<string, unknown>
  readonly redis?: Record<string, unknown>
  readonly fromEffect?: boolean
}> = {
  s3cache: { label: "s3cache, Redis + memory blobs" },
  // the hit phases as Effect code in one runtime (an Effect program's calls), not one runPromise per call
  "s3cache-effect": { label: "s3cache, Redis + memory blobs, called from Effect", fromEffect: true },
  // the in-process tier in front: each hit decodes a copy of its own (bentocache's memory tier serializes too)
  "s3cache-l1": { label: "s3cache, L1 + Redis", cache: { l1MaxEntries: 10_000 } },
  // the user vouches that values are never changed: the tier hands out the decoded value itself
  // ioredis's auto-pipelining (the commands of one tick in one write): measured, and left off by default, since it
  // costs a hit at c=1 ~20 µs (the write waits for the next tick) for 0-10 % more throughput at c=64
  "s3cache-autopipe": {
    label: "s3cache, Redis, enableAutoPipelining",
    redis: { redisOptions: { enableAutoPipelining: true } }
  },
  "s3cache-l1-shared": {
    label: "s3cache, L1 (l1ShareValues) + Redis",
    cache: { l1MaxEntries: 10_000, l1ShareValues: true }
  }
}

const contenders: ReadonlyArray<{ readonly name: string; readonly kind: ContenderKind; readonly label: string }> = [
  { name: "raw", kind: "raw", label: "raw ioredis GET + JSON.parse (floor)" },
  { name: "bento-redis", kind: "bento-redis", label: "bentocache 1.6.1, Redis only" },
  { name: "bento-mem", kind: "bento-mem", label: "bentocache 1.6.1, memory + Redis" },
  ...Object.keys(s3cacheVariants).map((name) => ({
    name,
    kind: "s3cache" as const,
    label: s3cacheVariants[name]!.label ?? name
  }))
]

// --- arguments ---------------------------------------------------------------------------------------------------

const args = process.argv.slice(2)
const flag = (name: string) => {
  const at = args.indexOf(name)
  return at < 0 ? undefined : args[at + 1]
}
const quick = args.includes("--quick")
const rounds = Number(flag("--rounds") ?? (quick ? 2 : 5))
if (!Number.isSafeInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer`)
const only = flag("--only")?.split(",").map((name) => name.trim())
const selected = contenders.filter((c) => c.name === "raw" || only === undefined || only.includes(c.name))

const jsonEnv = (name: string): Record<string, unknown> => {
  const text = process.env[name]
  if (text === undefined || text.trim() === "") return {}
  const parsed: unknown = JSON.parse(text)
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new Error(`${name} must be a JSON object (got ${text})`)
  }
  return parsed as Record<string, unknown>
}
const envCacheOptions = jsonEnv("S3CACHE_BENCH_OPTIONS")
const envRedisOptions = jsonEnv("S3CACHE_BENCH_REDIS_OPTIONS")

const phases = quick
  ? { hitCalls: 1000, hitMaxMs: 1000, throughputMs: 500, missKeys: 50, fillEntries: 500, fillMaxMs: 2000 }
  : { hitCalls: 5000, hitMaxMs: 3000, throughputMs: 2000, missKeys: 200, fillEntries: 2000, fillMaxMs: 6000 }

// --- one contender, one process ----------------------------------------------------------------------------------

const workerPath = fileURLToPath(new URL("./compareWorker.ts", import.meta.url))
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href

const runWorker = (config: WorkerConfig) =>
  Effect.async<WorkerResult, Error>((resume) => {
    const child = ChildProcess.spawn(
      process.execPath,
      ["--expose-gc", "--import", tsxLoader, workerPath, JSON.stringify(config)],
      { stdio: ["ignore", "pipe", "pipe"] }
    )
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")))
    child.stderr.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString("utf8")).slice(-8192)))
    const timer = setTimeout(() => child.kill("SIGKILL"), 180_000)
    child.once("exit", (code, signal) => {
      clearTimeout(timer)
      const line = stdout.split("\n").find((l) => l.startsWith("RESULT "))
      if (code === 0 && line !== undefined) return resume(Effect.succeed(JSON.parse(line.slice(7)) as WorkerResult))
      resume(Effect.fail(new Error(`${config.name} exited (code ${code}, signal ${signal}):\n${stdout}\n${stderr}`)))
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

// --- formatting --------------------------------------------------------------------------------------------------

const median = (values: ReadonlyArray<number>) => {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  if (sorted.length === 0) return Number.NaN
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}
const num = (value: number, digits = 0) =>
  Number.isFinite(value)
    ? value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : "n/a"
const us = (value: number) => num(value, value < 100 ? 1 : 0)

const roundLine = (name: string, r: WorkerResult) => {
  const s3 = r.s3cache === undefined ? "" : ` | s3cache errors ${r.s3cache.errors} bypassed ${r.s3cache.bypassed}` +
    ` (c=64: ${r.s3cache.throughputErrors}/${r.s3cache.throughputBypassed}) writes ${r.s3cache.writes}` +
    ` dropped ${r.s3cache.writesDropped} failed ${r.s3cache.writeFailures}`
  const computed = r.hitPhaseComputes === 0 ? "" : ` | ${r.hitPhaseComputes} computes during hit phases!`
  return `  ${name.padEnd(12)} hit p50 ${us(r.hitP50Us)} µs p99 ${us(r.hitP99Us)} µs (n=${r.hitSamples}) | ` +
    `c=64 ${num(r.opsPerSec)} ops/s, CPU ${us(r.cpuPerHitUs)} µs/hit | miss p50 ${us(r.missP50Us)} µs | ` +
    `fill ${num(r.fillPerSec)}/s (${r.fillStored} stored) | ${num(r.bytesPerEntry)} B/entry ` +
    `(used_memory ${num(r.usedMemoryPerEntry)})${s3}${computed} | took ` +
    Object.entries(r.phaseMs).map(([name, ms]) => `${name} ${(ms / 1000).toFixed(1)}`).join(", ") + " s"
}

// --- main --------------------------------------------------------------------------------------------------------

const main = Effect.gen(function*() {
  const started = performance.now()
  const loadBefore = Os.loadavg()
  const server = yield* RedisServer.make()
  console.log(
    `s3cache vs bentocache (Node ${process.version}, ${Os.cpus().length} CPUs, redis-server on port ${server.port}, ` +
      `${rounds} rounds${quick ? ", quick" : ""}, load average ${loadBefore.map((l) => l.toFixed(1)).join(" ")})`
  )
  if (Object.keys(envCacheOptions).length > 0) console.log(`S3CACHE_BENCH_OPTIONS: ${JSON.stringify(envCacheOptions)}`)
  if (Object.keys(envRedisOptions).length > 0) {
    console.log(`S3CACHE_BENCH_REDIS_OPTIONS: ${JSON.stringify(envRedisOptions)}`)
  }

  const results = new Map<string, Array<WorkerResult>>(selected.map((c) => [c.name, []]))
  for (let round = 1; round <= rounds; round++) {
    console.log(`round ${round}/${rounds}`)
    for (const contender of selected) {
      const variant = s3cacheVariants[contender.name]
      const result = yield* runWorker({
        name: contender.name,
        kind: contender.kind,
        redisUrl: server.url,
        cacheOptions: contender.kind === "s3cache" ? { ...envCacheOptions, ...variant?.cache } : undefined,
        redisOptions: contender.kind === "s3cache" ? { ...envRedisOptions, ...variant?.redis } : undefined,
        fromEffect: variant?.fromEffect,
        hotKeys: 1000,
        concurrency: 64,
        fillWriters: 16,
        maxBacklog: 256,
        ...phases
      })
      results.get(contender.name)!.push(result)
      console.log(roundLine(contender.name, result))
    }
  }

  const raw = results.get("raw")!
  const lines = [
    "",
    "| contender | hit p50 c=1 (µs) | ÷ raw | ops/s c=64 | ÷ raw | CPU/hit (µs) | miss p50 (µs) | fill entries/s | " +
    "Redis B/entry |",
    "|---|---|---|---|---|---|---|---|---|"
  ]
  for (const contender of selected) {
    const rs = results.get(contender.name)!
    const of = (pick: (r: WorkerResult) => number) => median(rs.map(pick))
    const ratio = (pick: (r: WorkerResult) => number) => median(rs.map((r, i) => pick(r) / pick(raw[i]!)))
    lines.push(
      `| ${contender.label} | ${us(of((r) => r.hitP50Us))} | ${num(ratio((r) => r.hitP50Us), 2)} | ` +
        `${num(of((r) => r.opsPerSec))} | ${num(ratio((r) => r.opsPerSec), 3)} | ${us(of((r) => r.cpuPerHitUs))} | ` +
        `${us(of((r) => r.missP50Us))} | ${num(of((r) => r.fillPerSec))} | ${num(of((r) => r.bytesPerEntry))} |`
    )
  }
  const loadAfter = Os.loadavg()
  lines.push(
    "",
    `Medians over ${rounds} rounds; ÷ raw is the median of per-round ratios. Miss: ${phases.missKeys} fresh keys one ` +
      `at a time, after ${phases.missKeys} untimed ones. Fill: ${phases.fillEntries} fresh keys ` +
      `by 16 writers (no new key after ${phases.fillMaxMs / 1000} s; they wait while s3cache has over 256 writes ` +
      "pending, so none is dropped), timed until stored in Redis. Redis B/entry: " +
      "sum of MEMORY USAGE over all keys, delta over the fill, per stored entry (s3cache: metadata only, its " +
      "payloads are in memory).",
    `Took ${((performance.now() - started) / 1000).toFixed(0)} s; load average ${
      loadAfter.map((l) => l.toFixed(1)).join(" ")
    } at the end.`
  )
  console.log(lines.join("\n"))
})

main.pipe(Effect.scoped, Effect.runPromise).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
