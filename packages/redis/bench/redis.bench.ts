/**
 * `pnpm bench` (Redis part): starts its own redis-server on a free loopback port and measures, in one run:
 * - lookup (hit) latency of the store against a raw GET of the same record on the same connection (within
 *   `lruResolution` of its LRU score, a hit is that GET; the first one, the lookup script);
 * - Redis round trips of a hit, counted by the server (INFO commandstats);
 * - commits per second (each takes the lock, then commits under it, as the cache does), one at a time and 32 at once;
 * - a `Cache.cached` hit on Redis metadata + memory payloads;
 * - what a miss, a hit answered by `GET` and a hit answered by the lookup script cost the server (commands sent, server
 *   time from INFO commandstats): the figures of "Scaling" in the README.
 */
import * as BlobStore from "@s3cache/core/BlobStore"
import * as Cache from "@s3cache/core/Cache"
import * as MetadataStore from "@s3cache/core/MetadataStore"
import { RedisMetadataStore } from "@s3cache/redis"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import { Redis } from "ioredis"
import * as crypto from "node:crypto"
import { performance } from "node:perf_hooks"
import * as RedisServer from "../test/utils/RedisServer.js"

const n = 5000
const hashOf = (label: string) => crypto.createHash("sha256").update(label).digest("hex")
const record = (namespace: string, hash: string, i: number): MetadataStore.EntryRecord => ({
  hash,
  namespace,
  objectKey: `${namespace}/${hash.slice(0, 2)}/${hash}-w${i}`,
  format: "v8",
  compression: "zstd",
  rawSize: 1000,
  storedSize: 400,
  checksum: `sha256:${hashOf(`payload-${i}`)}`,
  createdAt: Date.now(),
  ttlMs: 3_600_000,
  codecVersion: 1,
  keyPreview: "SELECT * FROM bench"
})

const stats = (samples: Array<number>) => {
  const sorted = samples.sort((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
  return { median: at(0.5), p99: at(0.99) }
}

const timeEach = (count: number, effect: (i: number) => Effect.Effect<unknown, unknown>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 200; i++) yield* effect(i) // warm-up
    const samples: Array<number> = []
    for (let i = 0; i < count; i++) {
      const start = performance.now()
      yield* effect(i)
      samples.push(performance.now() - start)
    }
    return stats(samples)
  })

const fmt = (ms: number) => ms.toFixed(3)

const main = Effect.gen(function*() {
  const server = yield* RedisServer.make()
  const client = yield* Effect.acquireRelease(
    Effect.promise(async () => {
      const c = new Redis(server.url, {
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        commandTimeout: 1000
      })
      c.on("error", () => {})
      await c.connect()
      return c
    }),
    (c) => Effect.promise(() => c.quit())
  )
  const store = yield* RedisMetadataStore.make({ client })
  // a commit happens only under the lock of its hash, as the cache writes: take it, then commit under its token
  let tokens = 0
  const commitHeld = (entry: MetadataStore.EntryRecord) =>
    Effect.gen(function*() {
      const token = `bench-${++tokens}`
      const held = yield* store.acquireLock(entry.namespace, entry.hash, { token, lockTtlMs: 30_000 })
      if (!held) return yield* Effect.dieMessage(`the lock of ${entry.hash} is held by another token`)
      const result = yield* store.commit(entry, { token, maxEntries: 100_000 })
      if (result._tag !== "Committed") return yield* Effect.dieMessage(`lost the lock of ${entry.hash}`)
    })
  const hot = record("bench", hashOf("hot"), 0)
  yield* commitHeld(hot)

  const lookup = yield* timeEach(n, () => store.lookup("bench", hot.hash, { token: "t", lockTtlMs: 5000 }))
  const rawGet = yield* timeEach(n, () => Effect.promise(() => client.getBuffer(`qc:{bench}:r:${hot.hash}`)))

  // round trips are what the client sends; the server also counts the commands the script runs inside
  let sent = 0
  const send = client.sendCommand.bind(client)
  client.sendCommand = (command, stream) => {
    sent++
    return send(command, stream)
  }
  yield* Effect.promise(() => client.config("RESETSTAT"))
  sent = 0
  for (let i = 0; i < 1000; i++) yield* store.lookup("bench", hot.hash, { token: "t", lockTtlMs: 5000 })
  const roundTrips = sent / 1000
  const info = yield* Effect.promise(() => client.info("commandstats"))
  client.sendCommand = send
  const commands = Array.from(info.matchAll(/cmdstat_(\S+?):calls=(\d+)/g))
    .filter((m) => !m[1]!.startsWith("config") && !m[1]!.startsWith("info"))
    .reduce((sum, m) => sum + Number(m[2]), 0)

  let i = 0
  const sequentialStart = performance.now()
  for (let k = 0; k < n; k++) yield* commitHeld(record("commits", hashOf(`c${++i}`), i))
  const sequential = n / ((performance.now() - sequentialStart) / 1000)
  const concurrentStart = performance.now()
  yield* Effect.forEach(
    Array.from({ length: n }, () => ++i),
    (j) => commitHeld(record("commits", hashOf(`c${j}`), j)),
    { concurrency: 32, discard: true }
  )
  const concurrent = n / ((performance.now() - concurrentStart) / 1000)

  const blobs = yield* BlobStore.makeMemory
  const cache = yield* Cache.make({ name: "bench-redis" }).pipe(
    Effect.provideService(MetadataStore.MetadataStore, store),
    Effect.provideService(BlobStore.BlobStore, blobs)
  )
  const value = { id: 1, name: "x".repeat(900) }
  yield* cache.cached(Effect.succeed(value), { key: "cache-hot" })
  yield* cache.flush
  const cacheHit = yield* timeEach(n, () => cache.cached(Effect.succeed(value), { key: "cache-hot" }))

  // What a miss and a hit cost the server (the "Scaling" section of the README): the commands this client sends and
  // the server time they took, from INFO commandstats (a script's own figure includes the commands it runs inside).
  const serverStats = Effect.promise(async () => {
    const stats = new Map<string, { calls: number; usec: number }>()
    for (const m of (await client.info("commandstats")).matchAll(/cmdstat_(\S+?):calls=(\d+),usec=(\d+)/g)) {
      stats.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) })
    }
    return stats
  })
  const serverCost = <A, E>(label: string, count: number, work: Effect.Effect<A, E>) =>
    Effect.gen(function*() {
      const before = yield* serverStats
      const names = new Map<string, number>()
      client.sendCommand = (command, stream) => {
        names.set(command.name, (names.get(command.name) ?? 0) + 1)
        return send(command, stream)
      }
      yield* work
      client.sendCommand = send
      const after = yield* serverStats
      const delta = (name: string) => ({
        calls: (after.get(name)?.calls ?? 0) - (before.get(name)?.calls ?? 0),
        usec: (after.get(name)?.usec ?? 0) - (before.get(name)?.usec ?? 0)
      })
      // the server counts the commands a script runs inside it too (its GETs): a command's time is its average
      // over every call of that name, times the calls this client sent
      let usec = 0
      const perCommand = Array.from(names, ([name, calls]) => {
        const server = delta(name)
        const each = server.calls > 0 ? server.usec / server.calls : 0
        usec += each * calls
        return `${name} ${(calls / count).toFixed(2)} × ${each.toFixed(1)} µs`
      })
      const sentTotal = Array.from(names.values()).reduce((sum, calls) => sum + calls, 0)
      return `| ${label} | ${(sentTotal / count).toFixed(2)} | ${perCommand.join(", ")} | ${
        (usec / count).toFixed(1)
      } µs |`
    })
  const fresh = Array.from({ length: 1000 }, (_, k) => `scaling-${k}`)
  const costs = [
    "| per operation (1 KB inline values; no bus here: `RedisMetadataStore.layer` adds one PUBLISH per commit) | " +
    "commands sent | server time of each (a script's includes the commands inside it) | Redis time per operation |",
    "|---|---|---|---|",
    yield* serverCost(
      "miss: the lookup (takes the lock), then the commit with the registration",
      fresh.length,
      Effect.zipRight(
        Effect.forEach(fresh, (key) => cache.cached(Effect.succeed(value), { key }), { discard: true }),
        cache.flush
      )
    ),
    yield* serverCost(
      "hit, reread within lruResolution (5 passes over 200 keys)",
      1000,
      Effect.forEach(
        Array.from({ length: 1000 }, (_, k) => fresh[k % 200]!),
        (key) => cache.cached(Effect.succeed(value), { key }),
        { discard: true }
      )
    )
  ]
  const exact = yield* Cache.make({ name: "bench-redis-exact" }).pipe(
    Effect.provideService(MetadataStore.MetadataStore, yield* RedisMetadataStore.make({ client, lruResolution: 0 })),
    Effect.provideService(BlobStore.BlobStore, blobs)
  )
  costs.push(
    yield* serverCost(
      "hit by the lookup script (lruResolution 0)",
      1000,
      Effect.forEach(
        Array.from({ length: 1000 }, (_, k) => fresh[k % 200]!),
        (key) => exact.cached(Effect.succeed(value), { key }),
        { discard: true }
      )
    )
  )

  return [
    ...costs,
    "",
    "| measure | median ms | p99 ms |",
    "|---|---|---|",
    `| raw GET of the record, same connection | ${fmt(rawGet.median)} | ${fmt(rawGet.p99)} |`,
    `| MetadataStore.lookup (hit) | ${fmt(lookup.median)} | ${fmt(lookup.p99)} |`,
    `| Cache.cached hit (Redis + memory payloads, 1 KB) | ${fmt(cacheHit.median)} | ${fmt(cacheHit.p99)} |`,
    "",
    `lookup / GET median: ${(lookup.median / rawGet.median).toFixed(2)}x`,
    `round trips per hit (sent by the client over 1000 hits): ${roundTrips.toFixed(2)}; commands the server ran ` +
    `per hit: ${
      (commands / 1000).toFixed(2)
    } (a GET within lruResolution of the score; else EVALSHA and the commands inside it)`,
    `commits per second (acquireLock + commit): ${sequential.toFixed(0)} one at a time, ${
      concurrent.toFixed(0)
    } with 32 at once`
  ]
})

main.pipe(
  Effect.scoped,
  Logger.withMinimumLogLevel(LogLevel.Warning),
  Effect.runPromise
).then((lines) => console.log(`s3cache Redis bench (n = ${n}, Node ${process.version})\n\n${lines.join("\n")}`))
  .catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
