/**
 * `pnpm exec tsx packages/s3/bench/s3.bench.ts`: the S3 store against raw SDK calls, in one run, on an s3rver
 * started here in a child process (loopback, its objects in a temporary folder).
 *
 * - GET / PUT latency, median and p99, for 1 KB, 1 MB and 100 MB payloads: `S3BlobStore` (budgets, SSE header,
 *   multipart from 16 MiB, body read into one preallocated array) vs a default `S3Client` (`PutObject` of the whole
 *   array, `GetObject` + `transformToByteArray`). Store and raw calls alternate, so drift hits both alike.
 * - Upload and download throughput of 100 MB (from the medians).
 * - Peak RSS of this process during a 500 MB round trip (put then get), sampled every 10 ms.
 * - The fixed cost of the store's GET: `store.get` vs a raw `GetObject` + `transformToByteArray` on an `S3Client`
 *   built exactly like the store's (same handler, timeouts, keep-alive pool, `responseChecksumValidation:
 *   "WHEN_REQUIRED"`), reading the same object, for 1 KB, 1 MB, 10 MB and 100 MB; alternated call by call. Also the
 *   longest event-loop stall (`monitorEventLoopDelay`) and GC pause during a 100 MB get. Only this section:
 *   `pnpm exec tsx packages/s3/bench/s3.bench.ts --get-overhead` (`--server moto` for moto_server instead of
 *   s3rver).
 * - The longest event-loop stall while `Cache.cached` computes, writes and hits a 100 MB value on S3, and a cached
 *   hit of 1 MB and 100 MB against a raw `GetObject` of the same bytes: only these sections, `--cache-stall`.
 *
 * s3rver is a JavaScript server writing to disk: absolute numbers say more about it than about S3. Compare the
 * store with the raw SDK within one run.
 */
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3"
import * as Cache from "@s3cache/core/Cache"
import * as MetadataStore from "@s3cache/core/MetadataStore"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as ChildProcess from "node:child_process"
import * as crypto from "node:crypto"
import * as os from "node:os"
import { monitorEventLoopDelay, performance, type PerformanceEntry, PerformanceObserver } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import * as clientModule from "../src/internal/client.js"
import * as optionsModule from "../src/internal/options.js"
import * as S3BlobStore from "../src/S3BlobStore.js"
import { type ChildServer, createBucket, motoServer, s3rver, storeOptions } from "../test/utils/servers.js"

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true"

// A full collection before each memory measurement, so garbage of earlier rounds does not count as its baseline.
v8.setFlagsFromString("--expose-gc")
const gc = vm.runInNewContext("gc") as () => void

const KB = 1024
const MB = 1024 * 1024
const bucket = "bench"

const sizes = [
  { name: "1 KB", bytes: KB, iterations: 200, warmup: 20 },
  { name: "1 MB", bytes: MB, iterations: 50, warmup: 5 },
  { name: "100 MB", bytes: 100 * MB, iterations: 8, warmup: 1 }
] as const

const quantile = (sorted: ReadonlyArray<number>, q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!

const summarize = (samples: Array<number>) => {
  const sorted = [...samples].sort((a, b) => a - b)
  return { median: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) }
}

const fmt = (ms: number) => (ms < 1 ? ms.toFixed(3) : ms < 100 ? ms.toFixed(2) : ms.toFixed(0))
const mbps = (bytes: number, ms: number) => ((bytes / MB) / (ms / 1000)).toFixed(0)
const mib = (bytes: number) => (bytes / MB).toFixed(0)

const time = async (f: () => Promise<unknown>) => {
  const started = performance.now()
  await f()
  return performance.now() - started
}

const line = (text: string) => Effect.sync(() => console.log(text))

/** Peak RSS while `f` runs, sampled every 10 ms. */
const peakRss = async (f: () => Promise<unknown>) => {
  let peak = process.memoryUsage().rss
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss)
  }, 10)
  try {
    await f()
  } finally {
    clearInterval(sampler)
  }
  return Math.max(peak, process.memoryUsage().rss)
}

const getOverheadSizes = [
  { name: "1 KB", bytes: KB, iterations: 1000, warmup: 50 },
  { name: "1 MB", bytes: MB, iterations: 300, warmup: 20 },
  { name: "10 MB", bytes: 10 * MB, iterations: 60, warmup: 5 },
  { name: "100 MB", bytes: 100 * MB, iterations: 10, warmup: 1 }
] as const

/**
 * `store.get` against a raw `GetObject` on a client configured like the store's, on the same object. Each call runs
 * on its own (`Effect.runPromise` for the store: its cost is counted against the store), the two alternate call by
 * call and swap who goes first every round. Also the event loop's longest stall during 100 MB gets.
 */
const getOverhead = (server: Pick<ChildServer, "endpoint" | "credentials">) =>
  Effect.gen(function*() {
    const options = storeOptions(server, bucket)
    const store = yield* S3BlobStore.make(options)
    const resolved = yield* optionsModule.resolve(options)
    const same = yield* Effect.acquireRelease(
      Effect.sync(() => clientModule.make(resolved, { warn: (message) => console.warn(message) })),
      (client) => Effect.sync(() => clientModule.destroy(client))
    )
    const rawGet = (key: string) => () =>
      same.s3.send(new GetObjectCommand({ Bucket: bucket, Key: optionsModule.s3Key(resolved, key) })).then((output) =>
        output.Body!.transformToByteArray()
      )
    const storeGet = (key: string) => () => Effect.runPromise(Effect.map(store.get(key), Option.getOrThrow))
    const rows = [
      "| payload | raw p50 | store p50 | store − raw (p50s) | paired Δ p50 | store / raw | raw p99 | store p99 |",
      "|---|---|---|---|---|---|---|---|"
    ]
    yield* line(`\n${rows.join("\n")}`)
    for (const size of getOverheadSizes) {
      const key = `bench/get-overhead/${size.name.replace(" ", "")}`
      yield* store.put(key, new Uint8Array(crypto.randomBytes(size.bytes)))
      const raw: Array<number> = []
      const mine: Array<number> = []
      const paired: Array<number> = []
      for (let i = -size.warmup; i < size.iterations; i++) {
        const contenders = [rawGet(key), storeGet(key)] as const
        const times = [0, 0]
        // No forced collection between calls: it would clear away the garbage a collect-then-concatenate reader
        // leaves behind (outside its timing) while a reader that preallocates pays for the collection its array
        // triggers (inside its timing); 10 MB then read 2× slower through the store on moto_server, 1.06× without.
        for (const which of i % 2 === 0 ? [0, 1] : [1, 0]) {
          times[which] = yield* Effect.promise(() => time(contenders[which]!))
        }
        if (i < 0) continue
        raw.push(times[0]!)
        mine.push(times[1]!)
        paired.push(times[1]! - times[0]!)
      }
      const r = summarize(raw)
      const st = summarize(mine)
      const delta = summarize(paired).median
      rows.push(
        `| ${size.name} | ${fmt(r.median)} | ${fmt(st.median)} | ${(st.median - r.median).toFixed(3)} | ` +
          `${delta.toFixed(3)} | ${(st.median / r.median).toFixed(3)} | ${fmt(r.p99)} | ${fmt(st.p99)} |`
      )
      yield* line(rows[rows.length - 1]!)
    }

    // The longest the event loop waited during a 100 MB get (resolution 1 ms: the histogram's finest), and the
    // longest garbage-collection pause in that time: V8 collects as the socket's chunks and the result pile up.
    const stallRows = [
      "",
      "| 100 MB get | max event-loop delay (ms), each of 3 gets | longest GC pause (ms) |",
      "|---|---|---|"
    ]
    const stallKey = "bench/get-overhead/100MB"
    const pauses: Array<PerformanceEntry> = []
    const observer = new PerformanceObserver((list) => pauses.push(...list.getEntries()))
    observer.observe({ entryTypes: ["gc"] })
    for (const [name, get] of [["raw", rawGet(stallKey)], ["store", storeGet(stallKey)]] as const) {
      const maxima: Array<string> = []
      const gcMaxima: Array<string> = []
      for (let i = 0; i < 3; i++) {
        gc()
        const histogram = monitorEventLoopDelay({ resolution: 1 })
        histogram.enable()
        const started = performance.now()
        yield* Effect.promise(get)
        const ended = performance.now()
        histogram.disable()
        // GC entries arrive after the fact
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10)))
        const during = pauses.splice(0).filter((entry) => entry.startTime >= started && entry.startTime <= ended)
        maxima.push((histogram.max / 1e6).toFixed(1))
        gcMaxima.push(Math.max(0, ...during.map((entry) => entry.duration)).toFixed(1))
      }
      stallRows.push(`| ${name} | ${maxima.join(", ")} | ${gcMaxima.join(", ")} |`)
    }
    observer.disconnect()
    yield* line(stallRows.join("\n"))
    return [...rows, ...stallRows]
  })

/**
 * The event loop's longest stall while `Cache.cached` handles a 100 MB value (half random bytes, half text) on S3:
 * the call that computes it (the value is snapshotted before the caller gets it: one copy), the background write
 * (compress, hash, upload), and a hit (download, hash, decompress). Metadata in memory. Also `--cache-stall` alone.
 */
const cacheStall = (server: Pick<ChildServer, "endpoint" | "credentials">) =>
  Effect.gen(function*() {
    const layer = Cache.layer({ name: "bench-stall" }).pipe(
      Layer.provide(MetadataStore.layerMemory),
      Layer.provide(S3BlobStore.layer(storeOptions(server, bucket)))
    )
    const runtime = yield* Effect.acquireRelease(
      Effect.sync(() => ManagedRuntime.make(layer)),
      (runtime) => Effect.promise(() => runtime.dispose())
    )
    const value = new Uint8Array(100 * MB)
    crypto.randomFillSync(value.subarray(0, 50 * MB))
    value.fill(97, 50 * MB)
    const pauses: Array<PerformanceEntry> = []
    const observer = new PerformanceObserver((list) => pauses.push(...list.getEntries()))
    observer.observe({ entryTypes: ["gc"] })
    yield* Effect.addFinalizer(() => Effect.sync(() => observer.disconnect()))
    const stall = async (f: () => Promise<unknown>) => {
      const histogram = monitorEventLoopDelay({ resolution: 1 })
      histogram.enable()
      // the histogram measures from its first timer on: let it start before the work does
      await new Promise((resolve) => setTimeout(resolve, 20))
      const started = performance.now()
      await f()
      const ended = performance.now()
      histogram.disable()
      // GC entries arrive after the fact
      await new Promise((resolve) => setTimeout(resolve, 10))
      const during = pauses.splice(0).filter((entry) => entry.startTime >= started && entry.startTime <= ended)
      const gcMax = Math.max(0, ...during.map((entry) => entry.duration))
      return `${(histogram.max / 1e6).toFixed(1)} (GC ${gcMax.toFixed(1)}; ${fmt(ended - started)} ms)`
    }
    const rows = [
      "",
      "| cached 100 MB on S3 | max event-loop delay, ms (longest GC pause; elapsed), each of 3 keys |",
      "|---|---|"
    ]
    const results = { write: [] as Array<string>, hit: [] as Array<string> }
    const hits = () => runtime.runPromise(Effect.map(Cache.stats, (stats) => stats.hits))
    for (let i = 0; i < 3; i++) {
      const key = `stall-${Date.now()}-${i}`
      const call = () => runtime.runPromise(Cache.cached(Effect.succeed(value), key))
      gc()
      // the miss and its background write in one window: the write starts as the caller gets its value
      results.write.push(yield* Effect.promise(() => stall(() => call().then(() => runtime.runPromise(Cache.flush)))))
      gc()
      const before = yield* Effect.promise(hits)
      results.hit.push(yield* Effect.promise(() => stall(call)))
      if ((yield* Effect.promise(hits)) !== before + 1) return yield* Effect.dieMessage("the 100 MB call was not a hit")
    }
    rows.push(
      `| miss and its write: snapshot (one copy), zstd, sha256, upload | ${results.write.join(", ")} |`
    )
    rows.push(`| hit: download, sha256, zstd | ${results.hit.join(", ")} |`)
    yield* line(rows.join("\n"))
    return rows
  })

/**
 * A `Cache.cached` hit on S3 against a raw `GetObject` (+ `transformToByteArray`) of the same value's bytes stored
 * as they are, on a default `S3Client`: 1 MB and 100 MB, half random bytes and half text (zstd halves it), calls
 * alternated, medians. Metadata in memory. Run with `--cache-stall`.
 */
const cacheHitVsRaw = (server: Pick<ChildServer, "endpoint" | "credentials">) =>
  Effect.gen(function*() {
    const runtime = yield* Effect.acquireRelease(
      Effect.sync(() =>
        ManagedRuntime.make(
          Cache.layer({ name: "bench-hit-vs-raw" }).pipe(
            Layer.provide(MetadataStore.layerMemory),
            Layer.provide(S3BlobStore.layer(storeOptions(server, bucket)))
          )
        )
      ),
      (runtime) => Effect.promise(() => runtime.dispose())
    )
    const raw = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new S3Client({
          region: "us-east-1",
          endpoint: server.endpoint,
          forcePathStyle: true,
          credentials: server.credentials
        })
      ),
      (client) => Effect.sync(() => client.destroy())
    )
    const rows = ["", "| cached hit on S3 vs raw GetObject | raw p50 | hit p50 | hit / raw |", "|---|---|---|---|"]
    for (
      const { bytes, iterations, name } of [
        { name: "1 MB", bytes: MB, iterations: 60 },
        { name: "100 MB", bytes: 100 * MB, iterations: 6 }
      ]
    ) {
      const value = new Uint8Array(bytes)
      crypto.randomFillSync(value.subarray(0, bytes / 2))
      value.fill(97, bytes / 2)
      const key = `hit-vs-raw-${name.replace(" ", "")}`
      yield* Effect.promise(() => runtime.runPromise(Cache.cached(Effect.succeed(value), key)))
      yield* Effect.promise(() => runtime.runPromise(Cache.flush))
      yield* Effect.promise(() => raw.send(new PutObjectCommand({ Bucket: bucket, Key: `raw/${key}`, Body: value })))
      const hit = () => runtime.runPromise(Cache.cached(Effect.succeed(value), key))
      const get = () =>
        raw.send(new GetObjectCommand({ Bucket: bucket, Key: `raw/${key}` })).then((output) =>
          output.Body!.transformToByteArray()
        )
      const hits: Array<number> = []
      const gets: Array<number> = []
      yield* Effect.promise(async () => {
        await hit()
        await get()
        for (let i = 0; i < iterations; i++) {
          // who goes first swaps every round
          for (
            const [f, into] of i % 2 === 0
              ? [[hit, hits], [get, gets]] as const
              : [[get, gets], [hit, hits]] as const
          ) {
            gc()
            into.push(await time(f))
          }
        }
      })
      const hitP50 = summarize(hits).median
      const rawP50 = summarize(gets).median
      rows.push(`| ${name} | ${fmt(rawP50)} ms | ${fmt(hitP50)} ms | ${(hitP50 / rawP50).toFixed(2)} |`)
      yield* line(rows[rows.length - 1]!)
    }
    return rows
  })

const main = Effect.gen(function*() {
  const server = yield* s3rver
  yield* createBucket(server, bucket)
  const store = yield* S3BlobStore.make(storeOptions(server, bucket))
  const raw = new S3Client({
    region: "us-east-1",
    endpoint: server.endpoint,
    forcePathStyle: true,
    credentials: server.credentials
  })
  yield* Effect.addFinalizer(() => Effect.sync(() => raw.destroy()))
  const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)
  const storePut = (key: string, bytes: Uint8Array) => () => run(store.put(key, bytes))
  const storeGet = (key: string) => () => run(Effect.map(store.get(key), Option.getOrThrow))
  const rawPut = (key: string, bytes: Uint8Array) => () =>
    raw.send(new PutObjectCommand({ Bucket: bucket, Key: `raw/${key}`, Body: bytes }))
  const rawGet = (key: string) => () =>
    raw.send(new GetObjectCommand({ Bucket: bucket, Key: `raw/${key}` })).then((output) =>
      output.Body!.transformToByteArray()
    )

  // The 100 MB PUT also through a store that sends it in one request, to tell the store's own cost from that of
  // multipart (s3rver concatenates the parts on disk when the upload completes; S3 does not).
  const single = yield* S3BlobStore.make({ ...storeOptions(server, bucket), multipartThreshold: 128 * MB })
  const singlePut = (key: string, bytes: Uint8Array) => () => run(single.put(`single/${key}`, bytes))

  const rows = [
    "| payload | op | store median | store p99 | raw SDK median | raw SDK p99 | store / raw |",
    "|---|---|---|---|---|---|---|"
  ]
  const medians = new Map<string, number>()
  for (const size of sizes) {
    const payload = new Uint8Array(crypto.randomBytes(size.bytes))
    const samples = new Map<string, Array<number>>()
    const record = (name: string, ms: number) => samples.set(name, [...(samples.get(name) ?? []), ms])
    for (let i = -size.warmup; i < size.iterations; i++) {
      const key = `bench/${size.name.replace(" ", "")}/${i < 0 ? "w" : ""}${Math.abs(i)}`
      const puts: Array<readonly [string, () => Promise<unknown>]> = [
        ["PUT store", storePut(key, payload)],
        ["PUT raw", rawPut(key, payload)]
      ]
      if (size.bytes >= 100 * MB) puts.push(["PUT single", singlePut(key, payload)])
      const gets: Array<readonly [string, () => Promise<unknown>]> = [["GET store", storeGet(key)], [
        "GET raw",
        rawGet(key)
      ]]
      for (const contenders of [puts, gets]) {
        // Rotate who goes first, and collect garbage outside the timings, so that no contender pays for
        // another's allocations (a 100 MB GET leaves hundreds of MB to collect).
        const shift = ((i % contenders.length) + contenders.length) % contenders.length
        for (const [name, op] of [...contenders.slice(shift), ...contenders.slice(0, shift)]) {
          if (size.bytes >= MB) gc()
          const ms = yield* Effect.promise(() => time(op))
          if (i >= 0) record(name, ms)
        }
      }
    }
    const ops: Array<readonly [string, string, string]> = [["PUT", "PUT store", "PUT raw"], [
      "GET",
      "GET store",
      "GET raw"
    ]]
    if (size.bytes >= 100 * MB) ops.splice(1, 0, ["PUT, one request", "PUT single", "PUT raw"])
    for (const [label, storeName, rawName] of ops) {
      const st = summarize(samples.get(storeName)!)
      const r = summarize(samples.get(rawName)!)
      medians.set(`${size.name} ${storeName}`, st.median)
      medians.set(`${size.name} ${rawName}`, r.median)
      rows.push(
        `| ${size.name} | ${label} | ${fmt(st.median)} | ${fmt(st.p99)} | ${fmt(r.median)} | ${fmt(r.p99)} | ` +
          `${(st.median / r.median).toFixed(2)} |`
      )
      yield* line(rows[rows.length - 1]!)
    }
  }

  const hundred = 100 * MB
  const throughput = [
    "",
    "| 100 MB | store MB/s | raw SDK MB/s |",
    "|---|---|---|",
    `| upload (store: multipart) | ${mbps(hundred, medians.get("100 MB PUT store")!)} | ${
      mbps(hundred, medians.get("100 MB PUT raw")!)
    } |`,
    `| upload (store: one request) | ${mbps(hundred, medians.get("100 MB PUT single")!)} | ${
      mbps(hundred, medians.get("100 MB PUT raw")!)
    } |`,
    `| download | ${mbps(hundred, medians.get("100 MB GET store")!)} | ${
      mbps(hundred, medians.get("100 MB GET raw")!)
    } |`
  ]

  // 500 MB round trips, each in a fresh process: RSS does not shrink when memory is freed, so a round trip measured
  // after another one would start from the other's high-water mark.
  const memory = [
    "",
    "| 500 MB round trip | RSS before (payload included) | peak RSS | peak - before | beyond the 500 MB copy | put + get |",
    "|---|---|---|---|---|---|"
  ]
  for (const client of ["store", "raw"] as const) {
    const result = yield* roundTripInChild(client, server.endpoint)
    memory.push(
      `| ${client === "store" ? "store" : "raw SDK"} | ${mib(result.before)} MB | ${mib(result.peak)} MB | ` +
        `${mib(result.peak - result.before)} MB | ${mib(result.peak - result.before - 500 * MB)} MB | ` +
        `${fmt(result.elapsed)} ms |`
    )
    yield* line(memory[memory.length - 1]!)
  }
  const overhead = yield* getOverhead(server)
  const stalls = yield* cacheStall(server)
  const hitVsRaw = yield* cacheHitVsRaw(server)
  return [...rows, ...throughput, ...memory, ...overhead, ...stalls, ...hitVsRaw]
})

const getOverheadOnly = Effect.gen(function*() {
  const server = yield* (process.argv.includes("moto") ? motoServer : s3rver)
  yield* createBucket(server, bucket)
  return process.argv.includes("--cache-stall")
    ? [...yield* cacheStall(server), ...yield* cacheHitVsRaw(server)]
    : yield* getOverhead(server)
})

interface RoundTrip {
  readonly before: number
  readonly peak: number
  readonly elapsed: number
}

const roundTripInChild = (client: "store" | "raw", endpoint: string) =>
  Effect.async<RoundTrip, Error>((resume) => {
    const child = ChildProcess.spawn(process.execPath, [
      ...process.execArgv,
      fileURLToPath(import.meta.url),
      "--round-trip",
      client,
      endpoint
    ], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    child.stdout.on("data", (chunk) => (out += chunk))
    child.once("exit", (code) =>
      resume(
        code === 0 ? Effect.succeed(JSON.parse(out) as RoundTrip) : Effect.fail(new Error(`round trip exited ${code}`))
      ))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/** The child: one 500 MB put and get through `client`, reporting RSS before and at its peak. */
const roundTrip = async (client: "store" | "raw", endpoint: string) => {
  const credentials = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" }
  const big = new Uint8Array(500 * MB)
  for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff
  let put: () => Promise<unknown>
  let get: () => Promise<Uint8Array>
  let close = () => {}
  if (client === "store") {
    const scope = Effect.runSync(Scope.make())
    const store = await Effect.runPromise(
      Scope.extend(S3BlobStore.make(storeOptions({ endpoint, credentials }, bucket)), scope)
    )
    put = () => Effect.runPromise(store.put("bench/500MB-store", big))
    get = () => Effect.runPromise(Effect.map(store.get("bench/500MB-store"), Option.getOrThrow))
    close = () => void Effect.runPromise(Scope.close(scope, Exit.void))
  } else {
    const raw = new S3Client({ region: "us-east-1", endpoint, forcePathStyle: true, credentials })
    put = () => raw.send(new PutObjectCommand({ Bucket: bucket, Key: "raw/bench/500MB", Body: big }))
    get = () =>
      raw.send(new GetObjectCommand({ Bucket: bucket, Key: "raw/bench/500MB" })).then((output) =>
        output.Body!.transformToByteArray()
      )
    close = () => raw.destroy()
  }
  gc()
  const before = process.memoryUsage().rss
  const started = performance.now()
  const peak = await peakRss(async () => {
    await put()
    const back = await get()
    if (back.byteLength !== big.byteLength) throw new Error(`${client}: got ${back.byteLength} bytes back`)
  })
  const elapsed = performance.now() - started
  close()
  process.stdout.write(JSON.stringify({ before, peak, elapsed }))
}

const roundTripAt = process.argv.indexOf("--round-trip")
if (roundTripAt >= 0) {
  roundTrip(process.argv[roundTripAt + 1] as "store" | "raw", process.argv[roundTripAt + 2]!).catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
} else {
  const only = process.argv.includes("--get-overhead") || process.argv.includes("--cache-stall")
  const server = only && process.argv.includes("moto") ? "moto_server" : "s3rver"
  console.log(
    `s3cache S3 bench: Node ${process.version}, ${os.cpus().length} cores, ${server} on loopback; times in ms`
  )
  Effect.scoped(only ? getOverheadOnly : main).pipe(
    Logger.withMinimumLogLevel(LogLevel.Warning),
    Effect.runPromise
  ).then((rows) => console.log(`\n${rows.join("\n")}`)).catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
}
