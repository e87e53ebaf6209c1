/**
 * `pnpm exec tsx packages/arrow/bench/arrow.bench.ts`: one 1,000,000-row × 10-column table of mixed types (see
 * `test/utils/mixedTable.ts`), stored through the serializer of `@s3cache/core` (the cache's exact encode and decode
 * path: codec, zstd level 3, sha256) as:
 *
 * - `arrow`: the apache-arrow `Table` itself, format `auto` → Arrow IPC stream;
 * - `v8` and `json`: the same data as 1,000,000 plain row objects (int64 as number, timestamps as epoch-µs numbers,
 *   dates as day numbers, decimals as strings: what a row-oriented client hands back);
 * - `v8` on column arrays: the same data as one typed array (or JS array, for nullable and string columns) per column.
 *
 * Throughput is in MB/s **of Arrow data** for every format (the Arrow IPC size divided by the time), so the numbers
 * compare work done on the same data. Each format runs in a fresh child process (`--expose-gc`), because a process
 * that has already held one format's buffers keeps part of that memory and would hide the next one's peak. The parent
 * builds the table once and writes it as an IPC file; a child opens it without copying (`tableFromIPC` over the file's
 * bytes) and builds its shape straight from the columns, so that little garbage is left whose freed-but-kept memory
 * the measured step could reuse unseen; before each baseline the child collects garbage and waits for freed buffers
 * to be returned. Peak RSS is
 * sampled every 10 ms by a worker thread (the main thread is blocked while it encodes) and cross-checked against the
 * kernel's exact high-water mark (`VmHWM`, reset through `/proc/self/clear_refs`); both are reported above a baseline
 * taken after building the data and a full GC.
 */
import { ArrowCodec } from "@s3cache/arrow"
import * as Serializer from "@s3cache/core/Serializer"
import { type Table, tableFromIPC, tableToIPC } from "apache-arrow"
import * as Effect from "effect/Effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import { Worker } from "node:worker_threads"
import { mixedTable, regions } from "../test/utils/mixedTable.js"

const rows = 1_000_000
const timedRuns = 5
const formats = ["arrow", "v8-rows", "v8-columns", "json-rows"] as const
type Kind = typeof formats[number]

// --- the data in each shape ---------------------------------------------------------------------------------------

/** decimal(18, 2) as text, from its two low words (the values fit in 64 bits) */
const amountsOf = (table: Table): Array<string> => {
  const words = table.getChild("amount")!.data[0]!.values as Uint32Array
  return Array.from({ length: table.numRows }, (_, i) => {
    const cents = BigInt.asIntN(64, (BigInt(words[i * 4 + 1]!) << 32n) | BigInt(words[i * 4]!))
    const abs = cents < 0n ? -cents : cents
    return `${cents < 0n ? "-" : ""}${abs / 100n}.${String(abs % 100n).padStart(2, "0")}`
  })
}

const rowsOf = (table: Table): Array<Record<string, unknown>> => {
  const column = (name: string) => table.getChild(name)!
  const [id, customer, price, discount, inStock, sku, region, orderedAt, shipDate] = [
    "id",
    "customer_id",
    "price",
    "discount",
    "in_stock",
    "sku",
    "region",
    "ordered_at",
    "ship_date"
  ].map(column)
  const orderedRaw = orderedAt!.data[0]!.values as BigInt64Array
  const amounts = amountsOf(table)
  const out = new Array<Record<string, unknown>>(table.numRows)
  for (let i = 0; i < table.numRows; i++) {
    out[i] = {
      id: Number(id!.get(i)),
      customer_id: customer!.get(i),
      price: price!.get(i),
      discount: discount!.get(i),
      in_stock: inStock!.get(i),
      sku: sku!.get(i),
      region: region!.get(i),
      ordered_at: Number(orderedRaw[i]),
      ship_date: shipDate!.data[0]!.values[i],
      amount: amounts[i]
    }
  }
  return out
}

const columnsOf = (table: Table): Record<string, unknown> => {
  const values = (name: string) => table.getChild(name)!.data[0]!.values
  const nullable = (name: string) => Array.from(table.getChild(name)!, (v) => v as number | null)
  return {
    id: Float64Array.from(values("id") as BigInt64Array, Number),
    customer_id: nullable("customer_id"),
    price: Float64Array.from(values("price") as Float64Array),
    discount: nullable("discount"),
    in_stock: Uint8Array.from(table.getChild("in_stock")!, Number),
    sku: Array.from(table.getChild("sku")!, String),
    region: Int8Array.from(values("region") as Int8Array),
    regions,
    ordered_at: Float64Array.from(values("ordered_at") as BigInt64Array, Number),
    ship_date: Int32Array.from(values("ship_date") as Int32Array),
    amount: amountsOf(table)
  }
}

// --- memory -------------------------------------------------------------------------------------------------------

const mb = (bytes: number) => bytes / 1e6
const gc = () => (globalThis as { gc?: () => void }).gc?.()

const highWaterMark = (): number =>
  Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync("/proc/self/status", "utf8"))?.[1] ?? NaN) * 1024

const resetHighWaterMark = (): boolean => {
  try {
    fs.writeFileSync("/proc/self/clear_refs", "5")
    return true
  } catch {
    return false
  }
}

/** A worker thread that keeps the highest RSS it sees, every 10 ms, in shared memory. */
const startSampler = () => {
  const peak = new BigInt64Array(new SharedArrayBuffer(8))
  const worker = new Worker(
    `const { workerData } = require("node:worker_threads")
     const peak = workerData
     setInterval(() => {
       const rss = BigInt(process.memoryUsage.rss())
       for (let seen = Atomics.load(peak, 0); rss > seen; seen = Atomics.load(peak, 0)) {
         if (Atomics.compareExchange(peak, 0, seen, rss) === seen) break
       }
     }, 10)`,
    { eval: true, workerData: peak }
  )
  worker.unref()
  return {
    reset: () => Atomics.store(peak, 0, BigInt(process.memoryUsage.rss())),
    read: () => Math.max(Number(Atomics.load(peak, 0)), process.memoryUsage.rss())
  }
}

interface Phase {
  readonly ms: number
  /** sampled peak RSS above the baseline */
  readonly sampled: number
  /** kernel high-water mark above the baseline */
  readonly hwm: number
}

const settle = async () => {
  gc()
  // ArrayBuffers freed by a collection are released by a background thread: give it time, then collect again
  await new Promise((resolve) => setTimeout(resolve, 200))
  gc()
}

const measure = async <A>(sampler: ReturnType<typeof startSampler>, run: () => Promise<A>) => {
  await settle()
  const baseline = process.memoryUsage.rss()
  const hwmOk = resetHighWaterMark()
  sampler.reset()
  const start = performance.now()
  const result = await run()
  const ms = performance.now() - start
  const phase: Phase = { ms, sampled: sampler.read() - baseline, hwm: hwmOk ? highWaterMark() - baseline : NaN }
  return { result, phase }
}

// --- one format, in a child process -------------------------------------------------------------------------------

const child = async (kind: Kind, file: string) => {
  const sampler = startSampler()
  const table: Table = tableFromIPC(fs.readFileSync(file))
  const arrowBytes = fs.statSync(file).size
  const value: unknown = kind === "arrow" ? table : kind === "v8-columns" ? columnsOf(table) : rowsOf(table)
  const format = kind === "arrow" ? "auto" : kind === "json-rows" ? "json" : "v8"
  const serializer = Serializer.make({ codecs: [ArrowCodec.codec] })
  const encode = () => Effect.runPromise(serializer.encode(value, { format, compression: "zstd" }))
  const first = await measure(sampler, encode)
  const encoded = first.result
  const decode = () => Effect.runPromise(serializer.decode(encoded.bytes, encoded))
  const firstDecode = await measure(sampler, decode)
  const decoded = firstDecode.result as { numRows?: number; length?: number; id?: ArrayLike<unknown> }
  const count = decoded.numRows ?? decoded.length ?? decoded.id?.length
  if (count !== rows) throw new Error(`${kind}: decoded ${count} rows, expected ${rows}`)
  // the anatomy of the Arrow path: the IPC step alone, without compression
  const ipcOnly = kind === "arrow" ? (await measure(sampler, async () => tableToIPC(table, "stream"))).phase : undefined
  const encodeTimes: Array<number> = []
  const decodeTimes: Array<number> = []
  for (let i = 0; i < timedRuns; i++) {
    encodeTimes.push((await measure(sampler, encode)).phase.ms)
    decodeTimes.push((await measure(sampler, decode)).phase.ms)
  }
  const median = (xs: Array<number>) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  process.stdout.write(JSON.stringify({
    kind,
    format: encoded.format,
    arrowBytes,
    rawSize: encoded.rawSize,
    storedSize: encoded.bytes.byteLength,
    encodeMs: median(encodeTimes),
    decodeMs: median(decodeTimes),
    encodePeak: first.phase,
    decodePeak: firstDecode.phase,
    ipcOnly
  }))
}

// --- the parent: one child per format, one table ------------------------------------------------------------------

type Result = {
  kind: Kind
  format: string
  arrowBytes: number
  rawSize: number
  storedSize: number
  encodeMs: number
  decodeMs: number
  encodePeak: Phase
  decodePeak: Phase
  ipcOnly?: Phase
}

const parent = () => {
  const self = fileURLToPath(import.meta.url)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "s3cache-arrow-bench-"))
  const file = path.join(dir, "table.arrow")
  fs.writeFileSync(file, tableToIPC(mixedTable(rows), "stream"))
  const results = formats.map((kind) =>
    JSON.parse(
      execFileSync(process.execPath, [...process.execArgv, "--expose-gc", self, "--child", kind, file], {
        encoding: "utf8",
        maxBuffer: 1 << 20,
        stdio: ["ignore", "pipe", "inherit"]
      })
    ) as Result
  )
  fs.rmSync(dir, { recursive: true, force: true })
  const d = results[0]!.arrowBytes
  const f1 = (n: number) => n.toFixed(1)
  const ratio = (bytes: number) => `${f1(mb(bytes))} (${(bytes / d).toFixed(2)}×)`
  const label: Record<Kind, string> = {
    "arrow": "arrow (Table)",
    "v8-rows": "v8 (row objects)",
    "v8-columns": "v8 (column arrays)",
    "json-rows": "json (row objects)"
  }
  const lines = [
    `${rows.toLocaleString("en-US")} rows × 10 columns; Arrow IPC size D = ${f1(mb(d))} MB; zstd level 3; ` +
    `Node ${process.version}; median of ${timedRuns} runs; MB/s = D / time; peak RSS above baseline, first run, ` +
    `sampled every 10 ms / kernel VmHWM, MB (× D)`,
    "",
    "| format | encode+compress | MB/s | decompress+decode | MB/s | encoded size | stored size | stored / D | peak RSS encode (sampled / VmHWM) | peak RSS decode (sampled / VmHWM) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...results.map((r) =>
      `| ${label[r.kind]} | ${f1(r.encodeMs)} ms | ${f1(mb(d) / (r.encodeMs / 1000))} | ${f1(r.decodeMs)} ms | ${
        f1(mb(d) / (r.decodeMs / 1000))
      } | ${f1(mb(r.rawSize))} MB | ${f1(mb(r.storedSize))} MB | ${(r.storedSize / d).toFixed(2)} | ${
        ratio(r.encodePeak.sampled)
      } / ${ratio(r.encodePeak.hwm)} | ${ratio(r.decodePeak.sampled)} / ${ratio(r.decodePeak.hwm)} |`
    )
  ]
  const arrow = results.find((r) => r.kind === "arrow")!
  if (arrow.ipcOnly !== undefined) {
    lines.push(
      "",
      `Arrow, where the memory goes: tableToIPC alone ${ratio(arrow.ipcOnly.hwm)} (VmHWM), ${
        f1(arrow.ipcOnly.ms)
      } ms; the full encode adds the zstd output (${f1(mb(arrow.storedSize))} MB)`
    )
  }
  process.stdout.write(lines.join("\n") + "\n")
}

const at = process.argv.indexOf("--child")
if (at >= 0) {
  child(process.argv[at + 1] as Kind, process.argv[at + 2]!).catch((error) => {
    process.stderr.write(`${String(error?.stack ?? error)}\n`)
    process.exit(1)
  })
} else {
  parent()
}
