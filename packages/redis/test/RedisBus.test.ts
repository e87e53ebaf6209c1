/**
 * The bus on Redis pub/sub, as `RedisMetadataStore.layer` provides it: two cache instances (each with its own
 * connections) keep their in-process tiers coherent, and a subscription that is cut is reported and restored.
 */
import { assert, describe, it } from "@effect/vitest"
import * as BlobStore from "@s3cache/core/BlobStore"
import * as Cache from "@s3cache/core/Cache"
import type * as CacheBus from "@s3cache/core/CacheBus"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { RedisMetadataStore } from "../src/index.js"
import * as RedisServer from "./utils/RedisServer.js"

let counter = 0

/** One "process": its own Redis connections (store and bus), its own tier; payloads in a shared memory store. */
const instance = (url: string, blobs: BlobStore.BlobStore["Type"]) =>
  Layer.build(
    Cache.layer({ name: `bus-${process.pid}-${++counter}`, l1MaxEntries: 100, l1DisconnectedTtl: "1 hour" }).pipe(
      Layer.provide(RedisMetadataStore.layer({ url, awaitReady: "2 seconds" })),
      Layer.provide(Layer.succeed(BlobStore.BlobStore, blobs))
    )
  ).pipe(Effect.map((context) => Context.get(context, Cache.Cache)))

/** Poll `effect` (live clock) until it returns `expected`, for at most ~5 s. */
const eventually = <A>(effect: Effect.Effect<A>, expected: A) =>
  Effect.gen(function*() {
    for (let i = 0; i < 500; i++) {
      const value = yield* effect
      if (JSON.stringify(value) === JSON.stringify(expected)) return
      yield* Effect.sleep("10 millis")
    }
    assert.fail(`never got ${JSON.stringify(expected)}`)
  })

describe("the bus on Redis pub/sub", () => {
  it.scopedLive(
    "an invalidation or a write in one instance reaches the other's in-process tier",
    () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.make()
        const blobs = yield* BlobStore.makeMemory
        const a = yield* instance(server.url, blobs)
        const b = yield* instance(server.url, blobs)
        let version = 1
        const query = Effect.sync(() => ({ version }))
        yield* a.cached(query, { key: "k" })
        yield* a.flush
        yield* b.cached(query, { key: "k" })
        // both tiers hold version 1 now; with l1DisconnectedTtl at an hour, only an event can make them let go
        assert.strictEqual((yield* a.cached(query, { key: "k" })).version, 1)
        assert.isAbove((yield* a.stats).l1Hits, 0)

        assert.isTrue(yield* b.invalidateKey("k"))
        version = 2
        yield* eventually(a.cached(query, { key: "k" }), { version: 2 })
        yield* a.flush

        // a wrote version 2; b's tier held version 1 and must drop it when a's commit is announced
        yield* eventually(b.cached(Effect.die("must hit") as Effect.Effect<{ version: number }>, { key: "k" }), {
          version: 2
        })
      }),
    30_000
  )

  it.scopedLive(
    "a subscription cut by the server is reported, and reported back when ioredis restores it",
    () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.make()
        const { bus } = yield* RedisMetadataStore.makeWithBus({ url: server.url, awaitReady: "2 seconds" })
        const states: Array<boolean> = []
        const events: Array<CacheBus.Event> = []
        yield* bus.listen({
          onEvent: (event) => events.push(event),
          onConnected: (connected) => states.push(connected)
        })
        yield* eventually(Effect.sync(() => states.at(-1)), true)
        yield* bus.publish({ _tag: "Removed", origin: "test", namespace: "ns", hashes: ["a"] })
        yield* eventually(Effect.sync(() => events.length), 1)

        const raw = yield* RedisServer.rawClient(server.url)
        const before = states.length
        yield* Effect.promise(() => raw.client("KILL", "TYPE", "pubsub"))
        yield* eventually(Effect.sync(() => states.slice(before)), [false, true])
        yield* bus.publish({ _tag: "Cleared", origin: "test", namespace: undefined })
        yield* eventually(Effect.sync(() => events.at(-1)?._tag), "Cleared")
      }),
    30_000
  )
})
