/**
 * `pnpm bench` (across processes): two processes on one redis-server this script starts, each with its own
 * `Cache.layer` on `RedisMetadataStore.layer` (so the bus too) and memory payloads (1 KB values, inline in Redis).
 *
 * - **Read after a miss**: this process computes a fresh key; the moment its caller has the value, it asks the peer
 *   (over IPC) to read the key. Measured: from the caller getting the value to the peer getting it, less the IPC's own
 *   latency (a ping just before), and whether the peer ran the effect (it must not). A read that fails stops the bench.
 * - **Waiting for another process's computation**: this process runs an effect of `effectMs` on a fresh key; 5 ms
 *   later the peer asks for the same key, finds the lock, and waits. Measured: when the peer got the value, from the
 *   start of the computation, as a multiple of `effectMs` (1.0 would be the effect's time exactly).
 *
 * Flags: `--rounds N` (default 200 reads, 30 waits per delay). The peer is this file run with `--peer <url>`.
 */
import * as BlobStore from "@s3cache/core/BlobStore"
import * as Cache from "@s3cache/core/Cache"
import { RedisMetadataStore } from "@s3cache/redis"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Scope from "effect/Scope"
import * as ChildProcess from "node:child_process"
import { createRequire } from "node:module"
import { performance } from "node:perf_hooks"
import { fileURLToPath, pathToFileURL } from "node:url"
import * as RedisServer from "../test/utils/RedisServer.js"

/** A clock both processes share (ms): the same machine, `timeOrigin` + `now`. */
const wall = () => performance.timeOrigin + performance.now()

type Request =
  | { readonly _tag: "ping"; readonly id: number }
  | { readonly _tag: "read"; readonly id: number; readonly key: string }
type Reply = { readonly id: number; readonly at: number; readonly computed: boolean; readonly failed?: string }

const makeRuntime = (url: string) =>
  ManagedRuntime.make(
    Cache.layer({ name: `bench-cross-${process.pid}` }).pipe(
      Layer.provide(RedisMetadataStore.layer({ url })),
      Layer.provide(BlobStore.layerMemory),
      Layer.provideMerge(Logger.minimumLogLevel(LogLevel.Error))
    )
  )

const value = (key: string) => ({ key, payload: "x".repeat(1000) })

// --- the peer ----------------------------------------------------------------------------------------------------

const peer = async (url: string) => {
  const runtime = makeRuntime(url)
  await runtime.runtime()
  process.on("message", (request: Request) => {
    if (request._tag === "ping") return process.send!({ id: request.id, at: wall(), computed: false } satisfies Reply)
    let computed = false
    runtime.runPromise(Cache.cached(Effect.sync(() => (computed = true, value(request.key))), request.key)).then(
      () => process.send!({ id: request.id, at: wall(), computed } satisfies Reply),
      (error) => process.send!({ id: request.id, at: wall(), computed, failed: String(error) } satisfies Reply)
    )
  })
  process.on("disconnect", () => runtime.dispose().then(() => process.exit(0)))
  process.send!({ id: 0, at: wall(), computed: false } satisfies Reply)
}

// --- the measuring process ---------------------------------------------------------------------------------------

const quantile = (values: Array<number>, q: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}

const main = async () => {
  const args = process.argv.slice(2)
  const roundsAt = args.indexOf("--rounds")
  const rounds = roundsAt >= 0 ? Number(args[roundsAt + 1]) : 200
  const scope = await Effect.runPromise(Scope.make())
  const server = await Effect.runPromise(Scope.extend(RedisServer.make(), scope))
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href
  const child = ChildProcess.fork(fileURLToPath(import.meta.url), ["--peer", server.url], {
    execArgv: ["--import", tsx],
    stdio: ["ignore", "inherit", "inherit", "ipc"]
  })
  const pending = new Map<number, (reply: Reply) => void>()
  let ready: () => void
  const started = new Promise<void>((resolve) => (ready = resolve))
  child.on("message", (reply: Reply) => {
    if (reply.id === 0) return ready()
    pending.get(reply.id)?.(reply)
    pending.delete(reply.id)
  })
  let ids = 0
  const ask = (
    request: { readonly _tag: "ping" } | { readonly _tag: "read"; readonly key: string }
  ) =>
    new Promise<Reply>((resolve) => {
      const id = ++ids
      pending.set(id, resolve)
      child.send({ ...request, id })
    })
  await started
  const runtime = makeRuntime(server.url)
  await runtime.runtime()
  // warm both processes' code paths and connections
  for (let i = 0; i < 50; i++) {
    await runtime.runPromise(Cache.cached(Effect.sync(() => value(`warm-${i}`)), `warm-${i}`))
    await ask({ _tag: "read", key: `warm-${i}` })
  }

  const readAfter: Array<number> = []
  const pings: Array<number> = []
  let peerComputed = 0
  for (let i = 0; i < rounds; i++) {
    const sent = wall()
    const pong = await ask({ _tag: "ping" })
    pings.push(pong.at - sent)
    const key = `read-after-${i}`
    await runtime.runPromise(Cache.cached(Effect.sync(() => value(key)), key))
    const gotAt = wall()
    const reply = await ask({ _tag: "read", key })
    if (reply.failed !== undefined) throw new Error(`the peer's read failed: ${reply.failed}`)
    if (reply.computed) peerComputed++
    // less the IPC's own latency to the peer, measured just before
    readAfter.push(reply.at - gotAt - pings[pings.length - 1]!)
  }
  const ping = quantile(pings, 0.5)

  const waits: Array<string> = []
  for (const effectMs of [20, 50, 200]) {
    const ratios: Array<number> = []
    let computed = 0
    for (let i = 0; i < Math.max(10, Math.round(rounds / 6)); i++) {
      const key = `wait-${effectMs}-${i}`
      const startedAt = wall()
      const own = runtime.runPromise(
        Cache.cached(Effect.as(Effect.sleep(`${effectMs} millis`), value(key)), key)
      )
      await new Promise((resolve) => setTimeout(resolve, 5))
      const reply = await ask({ _tag: "read", key })
      await own
      if (reply.failed !== undefined) throw new Error(`the peer's read failed: ${reply.failed}`)
      if (reply.computed) computed++
      ratios.push((reply.at - startedAt) / effectMs)
    }
    waits.push(
      `| ${effectMs} ms | ${quantile(ratios, 0.5).toFixed(3)} | ${quantile(ratios, 0.9).toFixed(3)} | ${computed} |`
    )
  }

  console.log(`s3cache across processes (Node ${process.version}, redis-server on ${server.url})\n`)
  console.log("| read after a miss, in another process | p50 ms | p90 ms | p99 ms | peer ran the effect |")
  console.log("|---|---|---|---|---|")
  console.log(
    `| from the caller getting the value to the peer getting it (each less the IPC latency measured before it, ` +
      `p50 ${ping.toFixed(2)} ms) | ${quantile(readAfter, 0.5).toFixed(2)} | ${
        quantile(readAfter, 0.9).toFixed(2)
      } | ` +
      `${quantile(readAfter, 0.99).toFixed(2)} | ${peerComputed} of ${rounds} |`
  )
  console.log("\n| waiter in another process, effect of | done at, × effect time, p50 | p90 | waiter ran the effect |")
  console.log("|---|---|---|---|")
  for (const line of waits) console.log(line)
  child.disconnect()
  await runtime.dispose()
  await Effect.runPromise(Scope.close(scope, Exit.void))
}

const peerAt = process.argv.indexOf("--peer")
;(peerAt >= 0 ? peer(process.argv[peerAt + 1]!) : main()).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
