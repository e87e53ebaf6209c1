import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
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
  fs.existsSync(dir)
    ? fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name)
    : []

/** The files of one namespace: objects live under `<localPath>/<store id>/<namespace>/`. */
const namespaceFiles = (dir: string, namespace: string): Array<string> =>
  fs.readdirSync(dir).flatMap((storeId) => listFiles(path.join(dir, storeId, namespace)))

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
        return { cold, warm, stats: yield* Cache.stats, files: namespaceFiles(dir, "reports") }
      })
      const { cold, files, stats, warm } = yield* program.pipe(
        // payloads to the folder, not inline in the in-memory records
        Effect.provide(Cache.layerEmbedded({ localPath: dir, name: uniqueName(), inlineThreshold: 0 }))
      )
      assert.strictEqual(runs, 1)
      assert.deepStrictEqual(warm, cold)
      assert.strictEqual(stats.hits, 1)
      assert.strictEqual(files.length, 1)
      assert.notInclude(files[0]!, ".tmp-")
      // its records died with the layer: closing deleted the objects too, which nobody else could judge orphans
      assert.deepStrictEqual(listFiles(dir), [])
    }))

  it.scoped("two embedded caches in one folder keep to their own objects", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const scopeA = yield* Scope.make()
      const options = { localPath: dir, inlineThreshold: 0 }
      const a = yield* Layer.buildWithScope(Cache.layerEmbedded({ ...options, name: uniqueName() }), scopeA)
      const b = yield* Layer.build(Cache.layerEmbedded({ ...options, name: uniqueName() }))
      const cacheA = Context.get(a, Cache.Cache)
      const cacheB = Context.get(b, Cache.Cache)
      yield* cacheA.cached(Effect.succeed("a"), { key: "k", ttl: "1 day" })
      yield* cacheB.cached(Effect.succeed("b"), { key: "k", ttl: "1 day" })
      yield* cacheA.flush
      yield* cacheB.flush
      assert.strictEqual((yield* cacheA.cleanupOrphanedObjects({ olderThan: 0 })).deleted, 0)
      yield* Scope.close(scopeA, Exit.void)
      // A closed and removed its objects, and only its own: B still hits
      assert.strictEqual(yield* cacheB.cached(Effect.die("must hit"), { key: "k" }), "b")
      assert.strictEqual(listFiles(dir).length, 1)
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
        ["S3CACHE_COMPRESSION", "gzip"],
        ["S3CACHE_INLINE_THRESHOLD", "0"]
      ])
      const layer = Cache.layerEmbeddedConfig().pipe(
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(env, { pathDelim: "_" })))
      )
      const { config, files } = yield* Effect.gen(function*() {
        yield* Effect.succeed("v").pipe(Cache.cached("k"))
        yield* Cache.flush
        return { config: (yield* Cache.Cache).config, files: namespaceFiles(dir, "fromenv") }
      }).pipe(Effect.provide(layer))
      assert.strictEqual(config.namespace, "fromenv")
      assert.strictEqual(config.compression, "gzip")
      assert.strictEqual(config.inlineThreshold, 0)
      assert.strictEqual(files.length, 1)
    }))
})
