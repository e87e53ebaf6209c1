/**
 * One contender of `compare.bench.ts`, measured in a process of its own (so that its heap and GC weigh on nobody
 * else). Started by the bench with `node --expose-gc --import tsx compareWorker.ts '<WorkerConfig as JSON>'`; it
 * flushes the Redis database, measures, and prints one line `RESULT <WorkerResult as JSON>` on stdout.
 */
import * as BlobStore from "@s3cache/core/BlobStore"
import * as Cache from "@s3cache/core/Cache"
import type * as CacheConfig from "@s3cache/core/CacheConfig"
import { RedisMetadataStore } from "@s3cache/redis"
import { BentoCache, bentostore } from "bentocache"
import { memoryDriver } from "bentocache/drivers/memory"
import { redisDriver } from "bentocache/drivers/redis"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { Redis } from "ioredis"
import { performance } from "node:perf_hooks"

export type ContenderKind = "raw" | "bento-redis" | "bento-mem" | "s3cache"

export interface WorkerConfig {
  readonly name: string
  readonly kind: ContenderKind
  readonly redisUrl: string
  /** s3cache only: merged into the options of `Cache.layer` and `RedisMetadataStore.layer` */
  readonly cacheOptions?: Record<string, unknown> | undefined
  readonly redisOptions?: Record<string, unknown> | undefined
  /**
   * s3cache only: the timed hit phases (c=1 and c=64) run as Effect code in one runtime, as in an Effect program,
   * rather than one `runPromise` per call, as a Promise-based caller would
   */
  readonly fromEffect?: boolean | undefined
  readonly hotKeys: number
  /** sequential hits timed at c=1 (the phase stops early after `hitMaxMs`, with at least 1000 samples) */
  readonly hitCalls: number
  readonly hitMaxMs: number
  readonly concurrency: number
  readonly throughputMs: number
  readonly missKeys: number
  readonly fillEntries: number
  /** writers take no new key past this time (then the pending writes are waited for), to bound a slow contender */
  readonly fillMaxMs: number
  readonly fillWriters: number
  /**
   * writers wait while more writes than this are pending in the background (s3cache), so that the fill measures the
   * rate at which entries are stored, not `maxPendingWrites` dropping values
   */
  readonly maxBacklog: number
}

export interface WorkerResult {
  readonly hitP50Us: number
  readonly hitP99Us: number
  readonly hitSamples: number
  readonly opsPerSec: number
  readonly cpuPerHitUs: number
  readonly missP50Us: number
  readonly fillPerSec: number
  /** entries the fill left in Redis (DBSIZE delta) */
  readonly fillStored: number
  /** sum of `MEMORY USAGE` over every key, delta over the fill, per stored entry */
  readonly bytesPerEntry: number
  /** `INFO memory` used_memory delta over the fill, per stored entry (includes allocator and buffer noise) */
  readonly usedMemoryPerEntry: number
  /** times the value was computed during the hit phases: not 0 means some "hits" were misses or bypasses */
  readonly hitPhaseComputes: number
  /** wall time of the worker's phases, ms */
  readonly phaseMs: Record<string, number>
  /** s3cache's `Cache.stats` counters over the whole run, and over the c=64 phase */
  readonly s3cache?: {
    readonly errors: number
    readonly bypassed: number
    readonly writesDropped: number
    readonly writeFailures: number
    readonly writes: number
    readonly throughputErrors: number
    readonly throughputBypassed: number
  } | undefined
}

interface Value {
  readonly id: number
  readonly name: string
  readonly tags: ReadonlyArray<string>
}

/** about 1 KB of JSON */
const makeValue = (id: number): Value => ({
  id,
  name: "x".repeat(900),
  tags: ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda"]
})

/** what each contender offers: read-through with a compute function, and a wait for its pending writes */
interface Contender {
  readonly getOrSet: (key: string, compute: () => Value) => Promise<Value>
  readonly settle: () => Promise<void>
  /** background writes not done yet (0 for those that write before returning) */
  readonly backlog?: () => Promise<number>
  readonly stats?: () => Promise<Record<string, number>>
  readonly close: () => Promise<void>
  /** where the timed hit loops run as Effect code: the call, and a way to run such a loop */
  readonly effect?: {
    readonly getOrSet: (key: string, compute: () => Value) => Effect.Effect<Value, never, Cache.Cache>
    readonly run: <A>(effect: Effect.Effect<A, never, Cache.Cache>) => Promise<A>
  } | undefined
}

const connect = async (url: string) => {
  const client = new Redis(url, { lazyConnect: true })
  client.on("error", () => {})
  await client.connect()
  return client
}

const makeRaw = async (url: string): Promise<Contender> => {
  const client = await connect(url)
  return {
    getOrSet: async (key, compute) => {
      const cached = await client.get(key)
      if (cached !== null) return JSON.parse(cached) as Value
      const value = compute()
      await client.set(key, JSON.stringify(value), "EX", 3600)
      return value
    },
    settle: async () => {},
    close: async () => {
      await client.quit()
    }
  }
}

const makeBento = async (url: string, withMemory: boolean): Promise<Contender> => {
  const client = await connect(url)
  const store = withMemory
    ? bentostore().useL1Layer(memoryDriver({})).useL2Layer(redisDriver({ connection: client }))
    : bentostore().useL2Layer(redisDriver({ connection: client }))
  const bento = new BentoCache({ default: "cache", stores: { cache: store } })
  return {
    getOrSet: (key, compute) => bento.getOrSet({ key, factory: compute, ttl: "1h" }),
    settle: async () => {},
    close: async () => {
      await bento.disconnectAll()
      await client.quit().catch(() => undefined)
    }
  }
}

const makeS3cache = async (config: WorkerConfig): Promise<Contender> => {
  const layer = Cache.layer({ name: config.name, ...config.cacheOptions } as CacheConfig.Options).pipe(
    Layer.provide(RedisMetadataStore.layer({ url: config.redisUrl, ...config.redisOptions })),
    Layer.provide(BlobStore.layerMemory),
    // fail-open is counted by Cache.stats and reported; a log line per bypass would only add console noise
    Layer.provideMerge(Logger.minimumLogLevel(LogLevel.Error))
  )
  const runtime = ManagedRuntime.make(layer)
  await runtime.runtime()
  return {
    getOrSet: (key, compute) => runtime.runPromise(Cache.cached(Effect.sync(compute), key)),
    effect: config.fromEffect === true
      ? {
        getOrSet: (key, compute) => Cache.cached(Effect.sync(compute), key),
        run: (effect) => runtime.runPromise(effect)
      }
      : undefined,
    settle: () => runtime.runPromise(Cache.flush),
    backlog: () => runtime.runPromise(Effect.map(Cache.stats, (stats) => stats.pendingWrites)),
    stats: () => runtime.runPromise(Cache.stats) as unknown as Promise<Record<string, number>>,
    close: () => runtime.dispose()
  }
}

const percentile = (sorted: ReadonlyArray<number>, q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!

const gc = () => (globalThis as { gc?: () => void }).gc?.()

/** every key's `MEMORY USAGE` (nested values counted in full), the key count, and `used_memory` */
const redisMemory = async (admin: Redis) => {
  let cursor = "0"
  let bytes = 0
  do {
    const [next, keys] = await admin.scan(cursor, "COUNT", 1000)
    cursor = next
    if (keys.length > 0) {
      const pipeline = admin.pipeline()
      for (const key of keys) pipeline.call("MEMORY", "USAGE", key, "SAMPLES", "0")
      for (const [error, usage] of (await pipeline.exec()) ?? []) {
        if (error === null && typeof usage === "number") bytes += usage
      }
    }
  } while (cursor !== "0")
  const info = await admin.info("memory")
  const used = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0)
  return { bytes, keys: await admin.dbsize(), used }
}

const run = async (config: WorkerConfig): Promise<WorkerResult> => {
  const admin = await connect(config.redisUrl)
  await admin.flushall()
  const contender = config.kind === "raw"
    ? await makeRaw(config.redisUrl)
    : config.kind === "bento-redis"
    ? await makeBento(config.redisUrl, false)
    : config.kind === "bento-mem"
    ? await makeBento(config.redisUrl, true)
    : await makeS3cache(config)

  const hot = Array.from({ length: config.hotKeys }, (_, i) => ({ key: `hot:${i}`, value: makeValue(i) }))
  let computes = 0
  const hit = (i: number) => {
    const { key, value } = hot[i % hot.length]!
    return contender.getOrSet(key, () => {
      computes++
      return value
    })
  }
  const stats = async () => contender.stats === undefined ? undefined : await contender.stats()
  const statsAtStart = await stats()
  const phaseMs: Record<string, number> = {}
  let phaseStart = performance.now()
  const phase = (name: string) => {
    const now = performance.now()
    phaseMs[name] = now - phaseStart
    phaseStart = now
  }
  // the writers' gate: at most one backlog query at a time, and at most one every 10 ms
  let backlogCheck: Promise<void> | undefined
  let backlogCheckedAt = 0
  const gate = async () => {
    if (contender.backlog === undefined) return
    while (backlogCheck !== undefined || performance.now() - backlogCheckedAt > 10) {
      if (backlogCheck === undefined) {
        backlogCheck = (async () => {
          while ((await contender.backlog!()) > config.maxBacklog) await new Promise((r) => setTimeout(r, 5))
          backlogCheckedAt = performance.now()
        })().finally(() => (backlogCheck = undefined))
      }
      await backlogCheck
    }
  }

  // pre-fill the hot keys, 16 at a time, and wait until every write is in Redis
  for (let i = 0; i < hot.length; i += 16) {
    await gate()
    await Promise.all(hot.slice(i, i + 16).map((_, j) => hit(i + j)))
  }
  await contender.settle()
  phase("prefill")

  // hit latency, c=1 (a warm-up pass over every hot key first, storing any key the pre-fill failed to)
  for (let i = 0; i < hot.length; i++) await hit(i)
  await contender.settle()
  computes = 0
  gc()
  const samples: Array<number> = []
  const hitDeadline = performance.now() + config.hitMaxMs
  const { effect } = contender
  if (effect === undefined) {
    for (let i = 0; i < config.hitCalls; i++) {
      const start = performance.now()
      await hit(i)
      samples.push((performance.now() - start) * 1000)
      if (samples.length >= 1000 && start > hitDeadline) break
    }
  } else {
    // the same loop, as Effect code
    await effect.run(Effect.gen(function*() {
      for (let i = 0; i < config.hitCalls; i++) {
        const { key, value } = hot[i % hot.length]!
        const start = performance.now()
        yield* effect.getOrSet(key, () => {
          computes++
          return value
        })
        samples.push((performance.now() - start) * 1000)
        if (samples.length >= 1000 && start > hitDeadline) break
      }
    }))
  }
  samples.sort((a, b) => a - b)
  phase("hit")

  // throughput and client CPU at c=64, every loop on its own stretch of the hot keys
  gc()
  const statsBeforeThroughput = await stats()
  let ops = 0
  const cpuStart = process.cpuUsage()
  const throughputStart = performance.now()
  const throughputEnd = throughputStart + config.throughputMs
  const firstKey = (loop: number) => Math.floor(loop * hot.length / config.concurrency)
  if (effect === undefined) {
    await Promise.all(Array.from({ length: config.concurrency }, async (_, loop) => {
      let i = firstKey(loop)
      while (performance.now() < throughputEnd) {
        await hit(i++)
        ops++
      }
    }))
  } else {
    await effect.run(Effect.forEach(
      Array.from({ length: config.concurrency }, (_, loop) => loop),
      (loop) =>
        Effect.gen(function*() {
          let i = firstKey(loop)
          while (performance.now() < throughputEnd) {
            const { key, value } = hot[i++ % hot.length]!
            yield* effect.getOrSet(key, () => {
              computes++
              return value
            })
            ops++
          }
        }),
      { concurrency: "unbounded", discard: true }
    ))
  }
  const throughputElapsed = performance.now() - throughputStart
  const cpu = process.cpuUsage(cpuStart)
  const statsAfterThroughput = await stats()
  const hitPhaseComputes = computes
  phase("throughput")

  // miss latency, c=1: fresh keys whose value is computed at once; as many untimed misses first, so that the timed
  // ones measure the miss path once compiled (the hit phases warmed only the hit path), for every contender alike
  for (let i = 0; i < config.missKeys; i++) await contender.getOrSet(`miss-warm:${i}`, () => makeValue(i))
  await contender.settle()
  gc()
  const missSamples: Array<number> = []
  for (let i = 0; i < config.missKeys; i++) {
    const start = performance.now()
    await contender.getOrSet(`miss:${i}`, () => makeValue(i))
    missSamples.push((performance.now() - start) * 1000)
  }
  missSamples.sort((a, b) => a - b)
  await contender.settle()
  phase("miss")

  // fill: writers on fresh keys, timed until the entries are in Redis
  gc()
  const before = await redisMemory(admin)
  let next = 0
  const fillStart = performance.now()
  await Promise.all(Array.from({ length: config.fillWriters }, async () => {
    while (next < config.fillEntries && performance.now() - fillStart < config.fillMaxMs) {
      await gate()
      if (next >= config.fillEntries) break
      const i = next++
      await contender.getOrSet(`fill:${i}`, () => makeValue(i))
    }
  }))
  await contender.settle()
  const fillElapsed = performance.now() - fillStart
  const after = await redisMemory(admin)
  const fillStored = after.keys - before.keys
  phase("fill")

  const statsAtEnd = await stats()
  await contender.close()
  await admin.quit()

  const delta = (to: Record<string, number> | undefined, from: Record<string, number> | undefined, name: string) =>
    (to?.[name] ?? 0) - (from?.[name] ?? 0)
  return {
    hitP50Us: percentile(samples, 0.5),
    hitP99Us: percentile(samples, 0.99),
    hitSamples: samples.length,
    opsPerSec: ops / (throughputElapsed / 1000),
    cpuPerHitUs: (cpu.user + cpu.system) / ops,
    missP50Us: percentile(missSamples, 0.5),
    fillPerSec: fillStored / (fillElapsed / 1000),
    fillStored,
    bytesPerEntry: fillStored > 0 ? (after.bytes - before.bytes) / fillStored : Number.NaN,
    usedMemoryPerEntry: fillStored > 0 ? (after.used - before.used) / fillStored : Number.NaN,
    hitPhaseComputes,
    phaseMs,
    s3cache: statsAtEnd === undefined ? undefined : {
      errors: delta(statsAtEnd, statsAtStart, "errors"),
      bypassed: delta(statsAtEnd, statsAtStart, "bypassed"),
      writesDropped: delta(statsAtEnd, statsAtStart, "writesDropped"),
      writeFailures: delta(statsAtEnd, statsAtStart, "writeFailures"),
      writes: delta(statsAtEnd, statsAtStart, "writes"),
      throughputErrors: delta(statsAfterThroughput, statsBeforeThroughput, "errors"),
      throughputBypassed: delta(statsAfterThroughput, statsBeforeThroughput, "bypassed")
    }
  }
}

run(JSON.parse(process.argv[2]!) as WorkerConfig)
  .then((result) => {
    console.log(`RESULT ${JSON.stringify(result)}`)
    // a driver's lingering timer must not keep the process alive
    process.exit(0)
  })
  .catch((error) => {
    console.error(error)
    process.exit(1)
  })
