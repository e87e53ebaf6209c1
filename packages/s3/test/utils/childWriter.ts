/**
 * "Process A" of the cross-process test, run as a real child process (`node --import tsx childWriter.ts`): a cache
 * on the memory metadata store and an S3 store configured only from `S3CACHE_*` variables, which misses, persists,
 * and prints the value and its metadata record as JSON on stdout. The parent stands in for the shared Redis by
 * committing that record into its own metadata store, then reads the object this process wrote.
 */
import { Cache, MetadataStore } from "@s3cache/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as S3BlobStore from "../../src/S3BlobStore.js"

const key = process.argv[2] ?? "cross-process"
const namespace = "e2e"

const program = Effect.gen(function*() {
  const value = yield* Cache.cached(
    Effect.sync(() => ({ writer: "child", pid: process.pid, rows: Array.from({ length: 500 }, (_, i) => ({ i })) })),
    { key, namespace }
  )
  yield* Cache.flush
  const metadata = yield* MetadataStore.MetadataStore
  const hash = yield* Cache.hashKey(key, namespace)
  const [record] = yield* metadata.getMany(namespace, [hash])
  const stats = yield* Cache.stats
  return { value, record: Option.getOrNull(record ?? Option.none()), stats }
})

const stores = Layer.merge(MetadataStore.layerMemory, S3BlobStore.layerConfig())

program.pipe(
  // the payload goes to S3, where the parent reads it (inline, it would stay in this process's memory store)
  Effect.provide(Cache.layer({ name: "child-writer", inlineThreshold: 0 }).pipe(Layer.provideMerge(stores))),
  Effect.runPromise
).then(
  (result) => {
    process.stdout.write(JSON.stringify(result))
  },
  (error) => {
    process.stderr.write(String(error))
    process.exitCode = 1
  }
)
