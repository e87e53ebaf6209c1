/**
 * The hit in one promise step (`MetadataStore.tryHit`, `internal/hit.ts`) on a real Redis: what it sends, what each
 * caller gets, and what happens when the record it finds is bad or the read fails.
 */
import { assert, describe, it } from "@effect/vitest"
import * as BlobStore from "@s3cache/core/BlobStore"
import * as Cache from "@s3cache/core/Cache"
import * as MetadataStore from "@s3cache/core/MetadataStore"
import * as FaultProxy from "@s3cache/core/test/FaultProxy"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { Redis } from "ioredis"
import { RedisMetadataStore } from "../src/index.js"
import * as RedisServer from "./utils/RedisServer.js"

let counter = 0

/** A cache on `client` (its commands recorded by name in `sent`), with a resolution no test outlives. */
const makeCache = (client: Redis) =>
  Effect.gen(function*() {
    const sent: Array<string> = []
    const send = client.sendCommand.bind(client)
    client.sendCommand = (command, stream) => {
      sent.push(command.name)
      return send(command, stream)
    }
    const metadata = yield* RedisMetadataStore.make({ client, lruResolution: "1 minute" })
    const blobs = yield* BlobStore.makeMemory
    const cache = yield* Cache.make({ name: `hit-path-${process.pid}-${++counter}`, metadataTimeout: "300 millis" })
      .pipe(
        Effect.provideService(MetadataStore.MetadataStore, metadata),
        Effect.provideService(BlobStore.BlobStore, blobs)
      )
    return { cache, sent }
  })

/** A client with the bounded settings the store needs of a client of your own. */
const clientOf = (host: string, port: number) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new Redis({
        host,
        port,
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        commandTimeout: 200
      })
      client.on("error", () => {})
      await client.connect()
      return client
    }),
    (client) => Effect.sync(() => client.disconnect())
  )

/** The single record key of a server that holds one entry. */
const recordKey = (admin: Redis) =>
  Effect.promise(async () => {
    const keys = await admin.keys("qc:*:r:*")
    if (keys.length !== 1) throw new Error(`expected one record, found ${keys.length}`)
    return keys[0]!
  })

describe("A hit in one promise step, on Redis", () => {
  it.scopedLive("while the entry's LRU score is fresh, a hit is one GET; each caller gets a value of its own", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const { cache, sent } = yield* makeCache(yield* clientOf(server.host, server.port))
      let runs = 0
      const call = cache.cached(Effect.sync(() => ({ runs: ++runs, rows: [1, 2, 3] })), "report")
      yield* call
      yield* cache.flush
      yield* call // the lookup script, which says how old the score is
      sent.length = 0
      const first = yield* call
      const second = yield* call
      assert.deepStrictEqual(sent, ["get", "get"])
      assert.deepStrictEqual(first, { runs: 1, rows: [1, 2, 3] })
      assert.notStrictEqual(first, second)
      first.rows.push(4)
      assert.deepStrictEqual(yield* call, { runs: 1, rows: [1, 2, 3] })
      const stats = yield* cache.stats
      assert.strictEqual(runs, 1)
      assert.strictEqual(stats.hits, 4)
      assert.strictEqual(stats.errors, 0)
    }))

  it.scopedLive("a record it finds with a corrupt payload is judged once: dropped, reported, written again", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const admin = yield* RedisServer.rawClient(server.url)
      const { cache, sent } = yield* makeCache(yield* clientOf(server.host, server.port))
      let runs = 0
      const call = cache.cached(Effect.sync(() => ({ runs: ++runs })), "corrupt")
      yield* call
      yield* cache.flush
      yield* call
      const key = yield* recordKey(admin)
      const record = (yield* Effect.promise(() => admin.getBuffer(key)))!
      record[record.length - 1] = record[record.length - 1]! ^ 0x01
      yield* Effect.promise(() => admin.set(key, record, "KEEPTTL"))
      sent.length = 0
      // the GET found it and its checksum fails: that record is dropped at once (the removeIf script, not a second
      // GET of it), then looked up again, which takes the lock; the effect runs and its value is written
      assert.deepStrictEqual(yield* call, { runs: 2 })
      assert.deepStrictEqual(sent.slice(0, 3), ["get", "evalsha", "get"])
      assert.strictEqual((yield* cache.stats).errors, 1)
      yield* cache.flush
      assert.deepStrictEqual(yield* call, { runs: 2 })
      assert.strictEqual(runs, 2)
    }))

  it.scopedLive("a read that fails is the lookup's failure: reported once, the call runs uncached without asking again", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const proxy = yield* FaultProxy.make({ host: server.host, port: server.port })
      const { cache, sent } = yield* makeCache(yield* clientOf(proxy.host, proxy.port))
      let runs = 0
      const call = cache.cached(Effect.sync(() => ({ runs: ++runs })), "stalled")
      yield* call
      yield* cache.flush
      yield* call
      yield* proxy.setMode("blackhole")
      sent.length = 0
      assert.deepStrictEqual(yield* call, { runs: 2 })
      assert.deepStrictEqual(sent, ["get"])
      const stats = yield* cache.stats
      assert.strictEqual(stats.errors, 1)
      assert.strictEqual(stats.bypassed, 1)
      // a caller that leaves while the read is pending leaves nothing behind
      const left = yield* Effect.exit(call.pipe(Effect.timeout("20 millis")))
      assert.isTrue(Exit.isFailure(left))
      assert.strictEqual(yield* cache.inFlight, 0)
      yield* proxy.setMode("pass")
    }).pipe(FaultProxy.watchdog("30 seconds", "failed read test")))
})
