/**
 * A client of the user's own, of either major of ioredis. The package resolves one major (its `ioredis` peer; 5 in
 * this workspace, and 6 in the `vitest.ioredis6.config.ts` run of the other test files), but `Options.client` takes
 * a `Redis` or `Cluster` of ioredis 5 or 6, whatever its reply options: the store reads replies by value.
 */
import { assert, describe, expectTypeOf, it } from "@effect/vitest"
import { MetadataStore } from "@s3cache/core/MetadataStore"
import { metadataStoreSuite } from "@s3cache/core/test/MetadataStoreSuite"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import type * as Scope from "effect/Scope"
import type { Cluster as Cluster5 } from "ioredis"
import { Redis as Redis5 } from "ioredis"
import { Cluster as Cluster6, Redis as Redis6 } from "ioredis6"
import { RedisMetadataStore } from "../src/index.js"
import * as RedisServer from "./utils/RedisServer.js"
import { beforeAllScoped } from "./utils/shared.js"

const server = beforeAllScoped(RedisServer.make())
const cluster = beforeAllScoped(RedisServer.makeCluster())

describe("RedisMetadataStore.Client", () => {
  // checked when the tests are type-checked (`pnpm check`); at run time there is nothing left to check
  it("is a Redis or a Cluster of ioredis 5 or 6, with any reply mapping, and nothing else", () => {
    expectTypeOf<Redis5>().toExtend<RedisMetadataStore.Client>()
    expectTypeOf<Cluster5>().toExtend<RedisMetadataStore.Client>()
    expectTypeOf<Redis6>().toExtend<RedisMetadataStore.Client>()
    expectTypeOf<Redis6<"resp3">>().toExtend<RedisMetadataStore.Client>()
    expectTypeOf<Cluster6>().toExtend<RedisMetadataStore.Client>()
    expectTypeOf<Cluster6<"resp3">>().toExtend<RedisMetadataStore.Client>()
    expectTypeOf<{ readonly status: "ready"; readonly isCluster: false }>().not.toExtend<RedisMetadataStore.Client>()
  })

  it.scopedLive("make takes a new Redis() of either major", () =>
    Effect.gen(function*() {
      // lazy: nothing connects, and the stores are built without waiting for Redis (which logs that it did not answer)
      const v5 = yield* Effect.acquireRelease(Effect.sync(() => new Redis5({ lazyConnect: true })), (c) =>
        Effect.sync(() => c.disconnect()))
      const v6 = yield* Effect.acquireRelease(
        Effect.sync(() =>
          new Redis6({ lazyConnect: true })
        ),
        (c) => Effect.sync(() => c.disconnect())
      )
      yield* RedisMetadataStore.make({ client: v5, awaitReady: "1 millis" })
      yield* RedisMetadataStore.make({ client: v6, awaitReady: "1 millis" })
    }).pipe(Effect.orDie, Logger.withMinimumLogLevel(LogLevel.None)))

  it("make does not take a client of another library", () => {
    // @ts-expect-error not an ioredis client
    const options: RedisMetadataStore.Options = { client: { status: "ready", isCluster: false } }
    expectTypeOf(options).toExtend<RedisMetadataStore.Options>()
  })
})

/** The bounded options the README asks of a client the user brings. */
const bounded = {
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  commandTimeout: 1000
} as const

interface Closeable {
  connect(): Promise<unknown>
  quit(): Promise<unknown>
  disconnect(): void
  on(event: "error", listener: () => void): unknown
}

/** A client of the user's: connected before the store is made, closed after it (the store leaves it open). */
const userClient = <C extends Closeable>(make: () => C): Effect.Effect<C, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = make()
      client.on("error", () => {})
      await client.connect()
      return client
    }),
    (client) =>
      Effect.promise(() => client.quit().catch(() => undefined)).pipe(
        Effect.timeout("1 second"),
        Effect.ignore,
        Effect.ensuring(Effect.sync(() => client.disconnect()))
      )
  )

const storeOn = (client: Effect.Effect<RedisMetadataStore.Client, never, Scope.Scope>) =>
  // exact LRU order: the suite checks eviction order access by access
  Layer.scoped(MetadataStore, Effect.flatMap(client, (client) => RedisMetadataStore.make({ client, lruResolution: 0 })))

describe("a user's client of the other major", () => {
  it.scopedLive("is told apart as a Redis or a Cluster: a failure names its server, a Cluster by its nodes", () =>
    Effect.gen(function*() {
      const ports = cluster().nodes.map((node) => node.port)
      const clients = [
        { client: new Redis6(server().url, bounded), names: [`127.0.0.1:${server().port}`] },
        {
          client: new Cluster6([...cluster().nodes], {
            lazyConnect: true,
            enableOfflineQueue: false,
            redisOptions: { maxRetriesPerRequest: 0, commandTimeout: 1000 }
          }),
          names: ports.map((port) => `127.0.0.1:${port}`)
        }
      ]
      for (const { client, names } of clients) {
        const store = yield* RedisMetadataStore.make({ client: yield* userClient(() => client) })
        assert.strictEqual(yield* store.size("majors"), 0)
        client.disconnect()
        const error = yield* Effect.flip(store.size("majors"))
        for (const name of names) assert.include(error.message, name)
      }
    }).pipe(Effect.orDie))
})

// RESP3 with its own shapes: maps as objects, doubles as numbers, sets as arrays
metadataStoreSuite(
  "RedisMetadataStore (standalone, a user's ioredis 6 client, RESP3 with replyMapping resp3)",
  storeOn(userClient(() => new Redis6(server().url, { ...bounded, replyMapping: "resp3" }))),
  { clock: "live" }
)

// every integer as a string: a reply read by its JavaScript type would be a wrong answer
metadataStoreSuite(
  "RedisMetadataStore (3-master cluster, a user's ioredis 6 Cluster, RESP3 with stringNumbers)",
  storeOn(userClient(() =>
    new Cluster6([...cluster().nodes], {
      lazyConnect: true,
      enableOfflineQueue: false,
      slotsRefreshTimeout: 1000,
      redisOptions: { maxRetriesPerRequest: 0, commandTimeout: 1000, stringNumbers: true }
    })
  )),
  { clock: "live" }
)
