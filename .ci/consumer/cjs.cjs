// Pack test (2): CommonJS. The packages are ESM only; `require()` of them works on the Node versions whose
// require(esm) is on by default (20.19+, 22.12+), which is what `engines` says. `effect` itself is required as
// CommonJS here, as a CommonJS program would: the values cross between effect's two builds.
const { Cache } = require("@s3cache/core")
const Effect = require("effect/Effect")

let runs = 0
const query = Effect.sync(() => {
  runs++
  return { rows: [{ id: 2, total: 7 }] }
})

const program = Effect.gen(function*() {
  const key = ["pack-test", "cjs", process.pid]
  yield* query.pipe(Cache.cached({ key, namespace: "pack-test" }))
  yield* Cache.flush
  const second = yield* query.pipe(Cache.cached({ key, namespace: "pack-test" }))
  const stats = yield* Cache.stats
  if (runs !== 1 || stats.hits !== 1 || second.rows[0].total !== 7) {
    throw new Error(`expected one run and one hit, got runs=${runs} hits=${stats.hits}`)
  }
  console.log(`cjs: hit (the effect ran ${runs} time, ${stats.hits} hit) on Node ${process.version}`)
})

Effect.runPromise(program.pipe(Effect.provide(Cache.layerEmbedded()))).catch((error) => {
  console.error(error)
  process.exit(1)
})
