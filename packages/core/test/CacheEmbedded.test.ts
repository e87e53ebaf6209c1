import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Cache from "../src/Cache.js"
import { uniqueName } from "./utils/harness.js"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "s3cache-embedded-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

const listFiles = (dir: string): Array<string> =>
  fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name)

describe("Cache.layerEmbedded", () => {
  it.scoped("memory metadata and payloads in a local folder, through the accessors", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      let runs = 0
      const query = Effect.sync(() => ({ run: ++runs, rows: Array.from({ length: 1000 }, (_, i) => i) }))
      const program = Effect.gen(function*() {
        const cold = yield* query.pipe(Cache.cached({ key: "SELECT * FROM big", namespace: "reports" }))
        yield* Cache.flush
        const warm = yield* query.pipe(Cache.cached({ key: "SELECT * FROM big", namespace: "reports" }))
        return { cold, warm, stats: yield* Cache.stats }
      })
      const { cold, stats, warm } = yield* program.pipe(
        Effect.provide(Cache.layerEmbedded({ localPath: dir, name: uniqueName() }))
      )
      assert.strictEqual(runs, 1)
      assert.deepStrictEqual(warm, cold)
      assert.strictEqual(stats.hits, 1)
      const files = listFiles(path.join(dir, "reports"))
      assert.strictEqual(files.length, 1)
      assert.notInclude(files[0]!, ".tmp-")
    }))

  it.scoped("storageBackend memory keeps payloads in the process", () =>
    Effect.gen(function*() {
      const layer = Cache.layerEmbedded({ storageBackend: "memory", name: uniqueName() })
      const values = yield* Effect.gen(function*() {
        const a = yield* Effect.succeed([1, 2]).pipe(Cache.cached("k"))
        yield* Cache.flush
        const b = yield* Effect.die("must hit").pipe(Cache.cached("k"))
        return [a, b]
      }).pipe(Effect.provide(layer))
      assert.deepStrictEqual(values, [[1, 2], [1, 2]])
    }))

  it.scoped("layerEmbeddedConfig reads S3CACHE_* variables", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const env = new Map([
        ["S3CACHE_LOCAL_PATH", dir],
        ["S3CACHE_NAMESPACE", "fromenv"],
        ["S3CACHE_NAME", uniqueName()],
        ["S3CACHE_COMPRESSION", "gzip"]
      ])
      const layer = Cache.layerEmbeddedConfig().pipe(
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(env, { pathDelim: "_" })))
      )
      const config = yield* Effect.gen(function*() {
        yield* Effect.succeed("v").pipe(Cache.cached("k"))
        yield* Cache.flush
        return (yield* Cache.Cache).config
      }).pipe(Effect.provide(layer))
      assert.strictEqual(config.namespace, "fromenv")
      assert.strictEqual(config.compression, "gzip")
      assert.strictEqual(listFiles(path.join(dir, "fromenv")).length, 1)
    }))
})
