// Pack test (3): a TypeScript consumer of the installed tarballs under the strictest settings a user may have
// (tsconfig.json here). It must type-check with zero errors, none of them in our declaration files.
import { ArrowCodec } from "@s3cache/arrow"
import type { CacheError, CacheKey, CacheMetrics } from "@s3cache/core"
import { BlobStore, Cache, MetadataStore } from "@s3cache/core"
import * as CacheDirect from "@s3cache/core/Cache"
import { metadataStoreSuite } from "@s3cache/core/test/MetadataStoreSuite"
import { RedisMetadataStore } from "@s3cache/redis"
import { S3BlobStore } from "@s3cache/s3"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { Redis } from "ioredis"

interface Order {
  readonly id: number
  readonly total: number
}

const loadOrders = (year: number): Effect.Effect<ReadonlyArray<Order>, Error> =>
  Effect.succeed([{ id: year, total: 1 }])

// data-last with options, data-first with a string key
const orders2026: Effect.Effect<ReadonlyArray<Order>, Error, Cache.Cache> = loadOrders(2026).pipe(
  Cache.cached({ key: ["orders", 2026], namespace: "reports", ttl: "10 minutes" })
)
const ordersBySql = Cache.cached(loadOrders(2025), "SELECT * FROM orders WHERE year = 2025")

// a schema ties the stored value to the effect's type
const OrderSchema = Schema.Array(Schema.Struct({ id: Schema.Number, total: Schema.Number }))
const typed = loadOrders(2024).pipe(Cache.cached({ key: { table: "orders", year: 2024 }, schema: OrderSchema }))

// a cached function needs a name or a key function
const getOrders = Cache.wrap(loadOrders, { name: "getOrders", namespace: "reports" })
const byKey = CacheDirect.wrap((id: number) => Effect.succeed(id), { key: (id) => ["id", id] })

const program = Effect.gen(function*() {
  const a = yield* orders2026
  const b = yield* ordersBySql
  const c = yield* typed
  const d = yield* getOrders(2023)
  const e = yield* byKey(1)
  const stats: CacheMetrics.Stats = yield* Cache.stats
  const hash: string = yield* Cache.hashKey(["orders", 2026] satisfies CacheKey.CacheKey)
  const removed: number = yield* Cache.invalidateNamespace("reports")
  return { a, b, c, d, e, hits: stats.hits, hash, removed }
}).pipe(
  Effect.catchTag("CacheInputError", (error: CacheError.CacheInputError) => Effect.die(error))
)

// the production wiring: Redis metadata (standalone), S3 payloads, Arrow tables
const Live = Cache.layer({ namespace: "reports", maxCacheEntries: 10_000 }).pipe(
  Layer.provide(RedisMetadataStore.layer({ url: "redis://localhost:6379/0", commandTimeout: "250 millis" })),
  Layer.provide(
    S3BlobStore.layer({
      bucket: "my-bucket",
      region: "eu-west-1",
      credentials: { accessKeyId: Redacted.make("id"), secretAccessKey: Redacted.make("secret") },
      serverSideEncryption: "AES256"
    })
  ),
  Layer.provide(ArrowCodec.layer)
)
const FromEnv = Cache.layerConfig().pipe(
  Layer.provide(RedisMetadataStore.layerConfig()),
  Layer.provide(S3BlobStore.layerConfig())
)
// a client the user owns (ioredis 5 or 6: the pack test type-checks this file against each)
const OwnClient = RedisMetadataStore.layer({ client: new Redis({ lazyConnect: true }) })
const Embedded = Cache.layerEmbedded({ namespace: "reports" })
const Memory = Cache.layer().pipe(Layer.provide(Layer.merge(MetadataStore.layerMemory, BlobStore.layerMemory)))

export const runnable: ReadonlyArray<Effect.Effect<unknown, unknown>> = [
  Effect.provide(program, Live),
  Effect.provide(program, FromEnv),
  Effect.provide(program, Embedded),
  Effect.provide(program, Memory),
  Effect.provide(program, Cache.layer().pipe(Layer.provide(OwnClient), Layer.provide(BlobStore.layerMemory)))
]

// a third-party store runs the conformance suite (compiled, with @effect/vitest as an optional peer)
export const suite: typeof metadataStoreSuite = metadataStoreSuite
