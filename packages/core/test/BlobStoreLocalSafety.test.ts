import * as NodeContext from "@effect/platform-node/NodeContext"
import * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as nodeFs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as BlobStore from "../src/BlobStore.js"
import type { BlobStoreError } from "../src/CacheError.js"

const modeOf = (file: string): number => nodeFs.statSync(file).mode & 0o777

// The umask may remove owner bits in theory, never add group or other bits; both halves are checked.
const assertOwnerOnly = (file: string, ownerBits: number) => {
  const mode = modeOf(file)
  assert.strictEqual(mode & 0o077, 0, `${file} is open to group or others: ${mode.toString(8)}`)
  assert.strictEqual(mode & ownerBits, ownerBits, `${file} lacks owner bits: ${mode.toString(8)}`)
}

// A fresh private temporary folder, removed with the scope.
const temporaryParent: Effect.Effect<string, never, Scope.Scope> = Effect.flatMap(
  FileSystem.FileSystem,
  (fs) => fs.makeTempDirectoryScoped({ prefix: "s3cache-blobstore-safety-" })
).pipe(Effect.orDie, Effect.provide(NodeContext.layer))

// Both ways to open a file-system store must apply the same checks: the constructor, and the layer that
// `Cache.layerEmbedded` uses.
const openers: ReadonlyArray<
  readonly [string, (directory: string) => Effect.Effect<BlobStore.BlobStore["Type"], BlobStoreError, Scope.Scope>]
> = [
  ["BlobStore.makeFileSystem", (directory) => BlobStore.makeFileSystem({ directory })],
  [
    "BlobStore.layerLocal",
    (directory) =>
      Effect.map(
        Layer.build(BlobStore.layerLocal({ directory })),
        (context) => Context.get(context, BlobStore.BlobStore)
      )
  ]
]

describe("BlobStore.defaultLocalPath", () => {
  it("is a per-user folder in the OS temporary folder, not the shared <tmp>/query_cache", () => {
    const user = process.getuid?.()
    assert.isDefined(user, "these tests run on POSIX")
    assert.strictEqual(BlobStore.defaultLocalPath, path.join(os.tmpdir(), `query_cache-${user}`))
    assert.notStrictEqual(BlobStore.defaultLocalPath, path.join(os.tmpdir(), "query_cache"))
  })
})

for (const [name, open] of openers) {
  describe(`${name}: the folder is private to the process's user`, () => {
    it.scoped("creates the root and its sub-folders 0700 and its files 0600", () =>
      Effect.gen(function*() {
        const parent = yield* temporaryParent
        const root = path.join(parent, "deep", "store")
        const store = yield* open(root)
        yield* store.put("ns/ab/abcdef-1", new Uint8Array([1, 2, 3]))
        for (const folder of [path.join(parent, "deep"), root, path.join(root, "ns"), path.join(root, "ns", "ab")]) {
          assertOwnerOnly(folder, 0o700)
        }
        assertOwnerOnly(path.join(root, "ns", "ab", "abcdef-1"), 0o600)
      }))

    it.scoped("tightens an existing root of ours that is open to group and others to 0700", () =>
      Effect.gen(function*() {
        const parent = yield* temporaryParent
        const root = path.join(parent, "store")
        // As an older version left it: mkdir's default mode under the usual umask.
        nodeFs.mkdirSync(root)
        nodeFs.chmodSync(root, 0o755)
        const store = yield* open(root)
        assert.strictEqual(modeOf(root), 0o700)
        yield* store.put("ns/ab/abcdef-1", new Uint8Array([1]))
        assertOwnerOnly(path.join(root, "ns", "ab", "abcdef-1"), 0o600)
      }))

    it.scoped("refuses a root that is a symbolic link to a folder, and writes nothing through it", () =>
      Effect.gen(function*() {
        const parent = yield* temporaryParent
        const target = path.join(parent, "planted")
        nodeFs.mkdirSync(target)
        nodeFs.chmodSync(target, 0o755)
        const root = path.join(parent, "store")
        nodeFs.symlinkSync(target, root)
        const error = yield* Effect.flip(open(root))
        assert.strictEqual(error._tag, "BlobStoreError")
        assert.strictEqual(error.reason, "InvalidArgument")
        assert.strictEqual(error.method, "make")
        assert.include(error.message, root)
        assert.include(error.message, "symbolic link")
        assert.deepStrictEqual(nodeFs.readdirSync(target), [])
        // Not even the mode: chmod would have followed the link.
        assert.strictEqual(modeOf(target), 0o755)
      }))

    it.scoped("refuses a root that is a dangling symbolic link, and creates nothing at its target", () =>
      Effect.gen(function*() {
        const parent = yield* temporaryParent
        const target = path.join(parent, "planted")
        const root = path.join(parent, "store")
        nodeFs.symlinkSync(target, root)
        const error = yield* Effect.flip(open(root))
        assert.strictEqual(error.reason, "InvalidArgument")
        assert.include(error.message, root)
        assert.include(error.message, "symbolic link")
        assert.isFalse(nodeFs.existsSync(target))
      }))

    it.scoped("accepts a root whose ancestor, not the root itself, is a symbolic link", () =>
      Effect.gen(function*() {
        const parent = yield* temporaryParent
        nodeFs.mkdirSync(path.join(parent, "real"))
        nodeFs.symlinkSync(path.join(parent, "real"), path.join(parent, "alias"))
        const store = yield* open(path.join(parent, "alias", "store"))
        yield* store.put("ns/ab/abcdef-1", new Uint8Array([1]))
        assertOwnerOnly(path.join(parent, "real", "store", "ns", "ab", "abcdef-1"), 0o600)
      }))

    // Only root can give a folder to another user, so the test runs where the suite runs as root (CI may not).
    it.scoped.skipIf(process.getuid?.() !== 0)(
      "refuses a root that belongs to another user, naming the owner",
      () =>
        Effect.gen(function*() {
          const parent = yield* temporaryParent
          const root = path.join(parent, "store")
          nodeFs.mkdirSync(root)
          nodeFs.chmodSync(root, 0o755)
          nodeFs.chownSync(root, 65534, 65534)
          const error = yield* Effect.flip(open(root))
          assert.strictEqual(error.reason, "InvalidArgument")
          assert.strictEqual(error.method, "make")
          assert.include(error.message, root)
          assert.include(error.message, "uid 65534")
          assert.deepStrictEqual(nodeFs.readdirSync(root), [])
          // Refused before anything was changed, the mode included.
          assert.strictEqual(modeOf(root), 0o755)
        })
    )
  })
}
