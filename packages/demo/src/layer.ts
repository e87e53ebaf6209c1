/**
 * The demo's cache from `S3CACHE_*` variables: Redis metadata when `S3CACHE_REDIS_URL` or
 * `S3CACHE_REDIS_CLUSTER_NODES` is set, else in memory; payloads in S3 when `S3CACHE_S3_BUCKET` is set, else in a
 * local folder (or memory, with `S3CACHE_STORAGE_BACKEND=memory`).
 */
import * as BlobStore from "@s3cache/core/BlobStore"
import * as Cache from "@s3cache/core/Cache"
import * as MetadataStore from "@s3cache/core/MetadataStore"
import { RedisMetadataStore } from "@s3cache/redis"
import { S3BlobStore } from "@s3cache/s3"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"

const backends = Config.all({
  redisUrl: Config.option(Config.string("S3CACHE_REDIS_URL")),
  redisNodes: Config.option(Config.string("S3CACHE_REDIS_CLUSTER_NODES")),
  s3Bucket: Config.option(Config.string("S3CACHE_S3_BUCKET")),
  s3Endpoint: Config.option(Config.string("S3CACHE_S3_ENDPOINT")),
  embedded: Cache.embeddedConfig
})

/** Where metadata and payloads live, for the demo to print (a password in a URL is masked). */
export const describe = Effect.map(backends, ({ embedded, redisNodes, redisUrl, s3Bucket, s3Endpoint }) => ({
  metadata: Option.match(redisUrl, {
    onSome: (url) => `Redis at ${url.replace(/\/\/[^@/]*@/, "//***@")}`,
    onNone: () => Option.match(redisNodes, { onSome: (nodes) => `Redis Cluster ${nodes}`, onNone: () => "memory" })
  }),
  payloads: Option.isSome(s3Bucket)
    ? `S3 bucket ${s3Bucket.value}${Option.match(s3Endpoint, { onSome: (e) => ` at ${e}`, onNone: () => "" })}`
    : embedded.storageBackend === "memory"
    ? "memory"
    : `local folder ${embedded.localPath ?? BlobStore.defaultLocalPath}`
}))

export const layer = Layer.unwrapEffect(Effect.map(backends, ({ embedded, redisNodes, redisUrl, s3Bucket }) => {
  const metadata = Option.isSome(redisUrl) || Option.isSome(redisNodes)
    ? RedisMetadataStore.layerConfig()
    : MetadataStore.layerMemory
  const blobs = Option.isSome(s3Bucket)
    ? S3BlobStore.layerConfig()
    : embedded.storageBackend === "memory"
    ? BlobStore.layerMemory
    : BlobStore.layerLocal({ directory: embedded.localPath })
  return Cache.layer(embedded).pipe(Layer.provide(Layer.merge(metadata, blobs)))
}))
