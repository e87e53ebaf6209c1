// Pack test (1b): every package on plain Node, from the installed tarballs: a value cached through Redis metadata
// (the ioredis the app installed: 5, then 6) and S3 payloads (s3rver), hit from a second cache instance, and an
// Arrow table through ArrowCodec on the embedded cache. `.ci/pack-test` starts redis-server and s3rver and passes
// their addresses in PACK_TEST_REDIS_URL and PACK_TEST_S3_ENDPOINT.
import { ArrowCodec } from "@s3cache/arrow"
import { Cache } from "@s3cache/core"
import { RedisMetadataStore } from "@s3cache/redis"
import { S3BlobStore } from "@s3cache/s3"
import { tableFromArrays } from "apache-arrow"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { createRequire } from "node:module"

const ioredis = createRequire(import.meta.url)("ioredis/package.json").version
const namespace = `pack-test-${process.pid}`

// two layers, as two processes would have: the second finds what the first stored
const shared = () =>
  Cache.layer({ namespace }).pipe(
    Layer.provide(RedisMetadataStore.layer({ url: process.env.PACK_TEST_REDIS_URL })),
    Layer.provide(S3BlobStore.layer({
      bucket: "pack-test",
      endpoint: process.env.PACK_TEST_S3_ENDPOINT,
      forcePathStyle: true,
      region: "us-east-1",
      credentials: { accessKeyId: Redacted.make("S3RVER"), secretAccessKey: Redacted.make("S3RVER") },
      serverSideEncryption: "none"
    }))
  )

let runs = 0
const query = Effect.sync(() => {
  runs++
  return { rows: Array.from({ length: 100 }, (_, id) => ({ id, total: id * 7 })) }
})
const cachedQuery = query.pipe(Cache.cached({ key: ["pack-test", "stores"] }))

const first = await Effect.runPromise(Effect.zipLeft(cachedQuery, Cache.flush).pipe(Effect.provide(shared())))
const [second, stats] = await Effect.runPromise(
  Effect.zip(cachedQuery, Cache.stats).pipe(Effect.provide(shared()))
)
if (runs !== 1 || stats.hits !== 1 || JSON.stringify(first) !== JSON.stringify(second)) {
  throw new Error(
    `Redis + S3: expected one run and a hit from the second instance, got runs=${runs} hits=${stats.hits}`
  )
}
console.log(`redis + s3: hit from a second instance (ioredis ${ioredis}, the effect ran ${runs} time)`)

// a cache of its own name: caches of one name share their stats
let builds = 0
const table = Effect.sync(() => {
  builds++
  return tableFromArrays({ id: Int32Array.from([1, 2, 3]), name: ["a", "b", "c"] })
})
const arrow = Effect.gen(function*() {
  yield* table.pipe(Cache.cached({ key: ["pack-test", "arrow", process.pid] }))
  yield* Cache.flush
  const again = yield* table.pipe(Cache.cached({ key: ["pack-test", "arrow", process.pid] }))
  const arrowStats = yield* Cache.stats
  const name = again.getChild("name")?.get(2)
  if (builds !== 1 || arrowStats.hits !== 1 || again.numRows !== 3 || name !== "c") {
    throw new Error(
      `Arrow: expected one build, one hit and the Table back, got builds=${builds} hits=${arrowStats.hits} ` +
        `rows=${again.numRows} name[2]=${name}`
    )
  }
})
await Effect.runPromise(
  arrow.pipe(Effect.provide(Cache.layerEmbedded({ name: "arrow" }).pipe(Layer.provide(ArrowCodec.layer))))
)
console.log("arrow: a Table stored as Arrow IPC and read back as a Table (1 build, 1 hit)")
