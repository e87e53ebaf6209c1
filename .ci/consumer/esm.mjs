// Pack test (1): plain JavaScript, ESM, on the installed tarballs: cache a value twice on the embedded default (no
// Redis, no S3) and print the second call's outcome. `.ci/pack-test` runs it on every Node version we support.
import { Cache, CacheClient } from "@s3cache/core"
import * as Effect from "effect/Effect"

let runs = 0
const query = Effect.sync(() => {
  runs++
  return { rows: [{ id: 1, total: 42 }], at: "2026-11-30" }
})

const program = Effect.gen(function*() {
  const key = ["pack-test", "esm", process.pid]
  const first = yield* query.pipe(Cache.cached({ key, namespace: "pack-test" }))
  yield* Cache.flush
  const second = yield* query.pipe(Cache.cached({ key, namespace: "pack-test" }))
  const stats = yield* Cache.stats
  if (runs !== 1 || stats.hits !== 1 || JSON.stringify(first) !== JSON.stringify(second)) {
    throw new Error(`expected one run and one hit, got runs=${runs} hits=${stats.hits}`)
  }
  console.log(
    `esm: hit (the effect ran ${runs} time, ${stats.hits} hit, ${stats.misses} miss) on Node ${process.version}`
  )
})

await Effect.runPromise(program.pipe(Effect.provide(Cache.layerEmbedded())))

// The Promise facade, as code outside Effect uses it: one client for the process, a wrapped async function, close
const client = CacheClient.make(Cache.layerEmbedded({ storageBackend: "memory", name: "pack-test-client" }))
let fetches = 0
const getUser = client.wrap(async (id) => {
  fetches++
  return { id, name: `user ${id}` }
}, { name: "users.get", namespace: "pack-test" })
const user = await getUser("42")
await client.flush()
const again = await getUser("42")
const clientStats = await client.stats()
await client.close()
if (fetches !== 1 || clientStats.hits !== 1 || again.name !== user.name) {
  throw new Error(`CacheClient: expected one run and one hit, got runs=${fetches} hits=${clientStats.hits}`)
}
console.log(
  `esm: CacheClient hit (the function ran ${fetches} time, ${clientStats.hits} hit) on Node ${process.version}`
)
