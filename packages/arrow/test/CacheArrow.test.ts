/**
 * Arrow tables through `Cache.cached` with the Arrow layer, payloads in a local folder, in memory and in S3
 * (s3rver): every type round-trips; the second call is served from the cache (its effect is `Effect.die`).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cache from "@s3cache/core/Cache"
import * as MetadataStore from "@s3cache/core/MetadataStore"
import { uniqueName } from "@s3cache/core/test/harness"
import { S3BlobStore } from "@s3cache/s3"
import { createBucket, s3rver as startS3rver, storeOptions } from "@s3cache/s3/test/servers"
import { freshBucket, shared } from "@s3cache/s3/test/shared"
import * as Arrow from "apache-arrow"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { ArrowCodec } from "../src/index.js"
import { catalogue, emptyTable, multiBatchTable, type TableCase, zeroColumnTables } from "./utils/arrowTables.js"
import { mixedTable } from "./utils/mixedTable.js"
import { importSecondCopy } from "./utils/secondArrow.js"
import { assertTablesEqual } from "./utils/tableEquality.js"

const s3rver = shared(startS3rver)

const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "s3cache-arrow-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

const listFiles = (dir: string): Array<string> =>
  fs.existsSync(dir)
    ? fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name)
    : []

interface Backend {
  readonly name: string
  /** the cache with the Arrow layer, and the folder its payloads go to (if any) */
  readonly layer: Effect.Effect<{ layer: Layer.Layer<Cache.Cache, unknown>; dir?: string }, never, any>
}

const backends: ReadonlyArray<Backend> = [
  {
    name: "local folder",
    layer: Effect.map(tempDir, (dir) => ({
      dir,
      // payloads to the folder even when small (the memory backend below keeps small ones inline)
      layer: Cache.layerEmbedded({
        storageBackend: "local",
        localPath: dir,
        name: uniqueName("arrow"),
        inlineThreshold: 0
      })
        .pipe(
          Layer.provide(ArrowCodec.layer)
        )
    }))
  },
  {
    name: "S3 (s3rver)",
    // one s3rver for the file, a bucket per test; metadata in memory
    layer: Effect.gen(function*() {
      const server = yield* s3rver
      const bucket = freshBucket("arrow")
      yield* Effect.orDie(createBucket(server, bucket))
      return {
        layer: Cache.layer({ name: uniqueName("arrow"), inlineThreshold: 0 }).pipe(
          Layer.provide(ArrowCodec.layer),
          Layer.provide(Layer.merge(MetadataStore.layerMemory, S3BlobStore.layer(storeOptions(server, bucket))))
        )
      }
    })
  },
  {
    name: "memory",
    // a unique name per test: metrics are global and tagged by cache name
    layer: Effect.sync(() => ({
      layer: Cache.layerEmbedded({ storageBackend: "memory", name: uniqueName("arrow") }).pipe(
        Layer.provide(ArrowCodec.layer)
      )
    }))
  }
]

const mustHit = Effect.die("the second call must be served from the cache") as Effect.Effect<Arrow.Table>

/** A cold call (the table itself comes back), a flush, then a call that can only be answered by the cache. */
const cachedTwice = (table: Arrow.Table, key: string, format?: string, dir?: string) =>
  Effect.gen(function*() {
    const cold = yield* Effect.succeed(table).pipe(Cache.cached({ key, namespace: "tables", format }))
    yield* Cache.flush
    const warm = yield* mustHit.pipe(Cache.cached({ key, namespace: "tables", format }))
    // objects live under <dir>/<store id>/<namespace>/; the embedded layer deletes them when it closes
    const files = dir === undefined
      ? undefined
      : fs.readdirSync(dir).flatMap((id) => listFiles(path.join(dir, id, "tables")))
    return { cold, warm, stats: yield* Cache.stats, files }
  })

/** The sizes of the files of namespace `tables` under `dir`, while the layer is open. */
const storedSizes = (dir: string) =>
  Effect.sync(() =>
    fs.readdirSync(dir).flatMap((id) =>
      fs.readdirSync(path.join(dir, id, "tables"), { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => fs.statSync(path.join(e.parentPath, e.name)).size)
    )
  )

const cases: ReadonlyArray<TableCase> = [
  ...catalogue(),
  { name: "three record batches of sliced columns", table: multiBatchTable() },
  { name: "empty table: every type, no rows", table: emptyTable() },
  ...zeroColumnTables().map(({ name, table }) => ({ name: `zero columns: ${name}`, table }))
]

for (const backend of backends) {
  describe(`Arrow tables through Cache.cached, payloads in ${backend.name}`, () => {
    for (const { name, table } of cases) {
      it.scoped(name, () =>
        Effect.gen(function*() {
          const { dir, layer } = yield* backend.layer
          const { cold, files, stats, warm } = yield* cachedTwice(table, `SELECT ${name}`, undefined, dir).pipe(
            Effect.provide(layer)
          )
          assert.strictEqual(cold, table, "a miss returns the computed value itself")
          assertTablesEqual(warm, table)
          assert.strictEqual(stats.hits, 1)
          assert.strictEqual(stats.misses, 1)
          assert.strictEqual(stats.errors, 0)
          assert.strictEqual(stats.writes, 1)
          if (dir !== undefined) {
            assert.strictEqual(files?.length, 1)
            assert.deepStrictEqual(listFiles(dir), [], "closing the embedded layer deleted its objects")
          }
        }))
    }
  })
}

describe("large tables through Cache.cached", () => {
  it.scoped("1,000,000 rows × 10 columns of mixed types, payloads in a local folder", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const table = mixedTable(1_000_000)
      const layer = Cache.layerEmbedded({ localPath: dir, name: uniqueName("arrow-1m") }).pipe(
        Layer.provide(ArrowCodec.layer)
      )
      const { sizes, stats, warm } = yield* Effect.all({
        run: cachedTwice(table, "SELECT * FROM orders"),
        sizes: storedSizes(dir)
      }).pipe(Effect.map(({ run, sizes }) => ({ ...run, sizes })), Effect.provide(layer))
      const sample = Array.from({ length: Math.ceil(1_000_000 / 10_007) }, (_, i) => i * 10_007).concat(999_999)
      assertTablesEqual(warm, table, { rows: sample })
      assert.strictEqual(stats.hits, 1)
      assert.strictEqual(stats.errors, 0)
      // the stored object is the compressed IPC stream: smaller than the Arrow data it holds
      assert.strictEqual(sizes.length, 1)
      assert.isBelow(sizes[0]!, table.batches[0]!.data.children.reduce((n, c) => n + c.byteLength, 0))
    }), 60_000)
})

describe("large tables through the S3 store", () => {
  it.scoped("1,000,000 rows × 10 columns, uploaded in parts", () =>
    Effect.gen(function*() {
      const server = yield* s3rver
      const bucket = freshBucket("arrow-1m")
      yield* Effect.orDie(createBucket(server, bucket))
      const table = mixedTable(1_000_000)
      const layer = Cache.layer({ name: uniqueName("arrow-1m-s3") }).pipe(
        Layer.provide(ArrowCodec.layer),
        Layer.provide(Layer.merge(
          MetadataStore.layerMemory,
          // a low threshold, so this payload (tens of MB compressed) goes through a multipart upload
          S3BlobStore.layer({ ...storeOptions(server, bucket), multipartThreshold: 5 * 1024 * 1024 })
        ))
      )
      const { stats, warm } = yield* cachedTwice(table, "SELECT * FROM orders").pipe(Effect.provide(layer))
      const sample = Array.from({ length: Math.ceil(1_000_000 / 10_007) }, (_, i) => i * 10_007).concat(999_999)
      assertTablesEqual(warm, table, { rows: sample })
      assert.strictEqual(stats.hits, 1)
      assert.strictEqual(stats.errors, 0)
      assert.isAbove(stats.bytesWritten, 5 * 1024 * 1024)
    }), 90_000)
})

describe("a table of another copy of apache-arrow through Cache.cached", () => {
  it.scoped("is stored as arrow and read back equal", () =>
    Effect.gen(function*() {
      const other = yield* importSecondCopy
      const dir = yield* tempDir
      const table = catalogue().at(-1)!.table
      const foreign = other.tableFromIPC(Arrow.tableToIPC(table, "stream"))
      const layer = Cache.layerEmbedded({ localPath: dir, name: uniqueName("arrow-foreign") }).pipe(
        Layer.provide(ArrowCodec.layer)
      )
      const { stats, warm } = yield* cachedTwice(foreign as unknown as Arrow.Table, "foreign").pipe(
        Effect.provide(layer)
      )
      assertTablesEqual(warm, table)
      assert.strictEqual(stats.errors, 0)
    }))
})
