import * as NodeContext from "@effect/platform-node/NodeContext"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as BlobStore from "../src/BlobStore.js"
import { assertSameBytes, blobStoreSuite, listAll, randomBytes } from "./utils/BlobStoreSuite.js"

const layerFileSystemInTempDirectory = Layer.unwrapScoped(
  Effect.map(
    Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped({ prefix: "s3cache-blobstore-" })),
    (directory) => BlobStore.layerFileSystem({ directory })
  )
).pipe(Layer.provide(NodeContext.layer))

blobStoreSuite("BlobStore.layerMemory", BlobStore.layerMemory)

blobStoreSuite("BlobStore.layerFileSystem", layerFileSystemInTempDirectory)

describe("BlobStore.layerMemory", () => {
  it.effect("lastModified comes from Effect's Clock and list is sorted by key", () =>
    Effect.gen(function*() {
      const store = yield* BlobStore.makeMemory
      // Times a store reading Date.now() could not produce.
      yield* TestClock.setTime(1_000)
      yield* store.put("b/2", new Uint8Array([1]))
      yield* store.put("a/1", new Uint8Array([1, 2]))
      yield* TestClock.adjust(500)
      yield* store.put("b/1", new Uint8Array(0))
      const infos = Chunk.toReadonlyArray(yield* Stream.runCollect(store.list("")))
      assert.deepStrictEqual(infos, [
        { key: "a/1", size: 2, lastModified: 1_000 },
        { key: "b/1", size: 0, lastModified: 1_500 },
        { key: "b/2", size: 1, lastModified: 1_000 }
      ])
    }))
})

describe("BlobStore.layerFileSystem", () => {
  // A fresh temporary folder per test, with the store's root one level below it so tests can watch it appear.
  const withStore = <A, E>(
    f: (
      store: BlobStore.BlobStore["Type"],
      root: string
    ) => Effect.Effect<A, E, FileSystem.FileSystem | Path.Path>
  ) =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const parent = yield* fs.makeTempDirectoryScoped({ prefix: "s3cache-blobstore-" })
      const root = path.join(parent, "deep", "store")
      const store = yield* BlobStore.makeFileSystem({ directory: root })
      return yield* f(store, root)
    }).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

  it.live("make creates the directory when it is missing", () =>
    withStore((_store, root) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const info = yield* fs.stat(root)
        assert.strictEqual(info.type, "Directory")
      })
    ))

  it.live("make fails with a BlobStoreError when the directory cannot be created", () =>
    withStore((_store, root) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const path = yield* Path.Path
        const file = path.join(root, "a-file")
        yield* fs.writeFileString(file, "x")
        const error = yield* Effect.flip(BlobStore.makeFileSystem({ directory: path.join(file, "sub") }))
        assert.strictEqual(error._tag, "BlobStoreError")
        assert.strictEqual(error.method, "make")
      })
    ))

  it.live("an object is the file <directory>/<key>", () =>
    withStore((store, root) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const path = yield* Path.Path
        const bytes = randomBytes(100)
        yield* store.put("ns/ab/abcdef-1", bytes)
        assertSameBytes(yield* fs.readFile(path.join(root, "ns", "ab", "abcdef-1")), bytes)
        // Nothing else is left beside it: the temporary file was renamed, not copied.
        assert.deepStrictEqual(yield* fs.readDirectory(path.join(root, "ns", "ab")), ["abcdef-1"])
      })
    ))

  it.live("a temporary file left by a crashed write is listed, under its own key", () =>
    withStore((store, root) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const path = yield* Path.Path
        yield* store.put("ns/ab/abcdef-1", new Uint8Array([1]))
        yield* fs.writeFile(path.join(root, "ns", "ab", "abcdef-2.tmp-0123456789abcdef"), new Uint8Array(7))
        const infos = yield* listAll("ns/").pipe(Effect.provideService(BlobStore.BlobStore, store))
        assert.deepStrictEqual(infos.map((info) => [info.key, info.size]).sort(), [
          ["ns/ab/abcdef-1", 1],
          ["ns/ab/abcdef-2.tmp-0123456789abcdef", 7]
        ])
        // It is debris, not the object it was meant to become.
        assert.isTrue(Option.isNone(yield* store.get("ns/ab/abcdef-2")))
        assert.deepStrictEqual(yield* store.delete(["ns/ab/abcdef-2.tmp-0123456789abcdef"]), { deleted: 1, failed: [] })
        assert.deepStrictEqual(yield* fs.readDirectory(path.join(root, "ns", "ab")), ["abcdef-1"])
      })
    ))

  it.live("folders are walked, not listed, and empty folders left by delete do not show up", () =>
    withStore((store, root) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const path = yield* Path.Path
        yield* store.put("a/b/c", new Uint8Array([1]))
        yield* store.put("a/d", new Uint8Array([1]))
        yield* store.delete(["a/b/c"])
        yield* fs.makeDirectory(path.join(root, "a", "empty", "deeper"), { recursive: true })
        const keys = (yield* Stream.runCollect(store.list(""))).pipe(Chunk.map((info) => info.key))
        assert.deepStrictEqual(Chunk.toReadonlyArray(keys), ["a/d"])
        // A key that names a folder is no object.
        assert.isTrue(Option.isNone(yield* store.get("a/b")))
        assert.deepStrictEqual(yield* store.delete(["a/b", "a/d/x"]), { deleted: 2, failed: [] })
      })
    ))

  it.live("a key whose path is taken by a folder or a file fails with InvalidArgument and leaves no debris", () =>
    withStore((store, root) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const path = yield* Path.Path
        yield* store.put("c/d/e", new Uint8Array([1]))
        // The rename onto the folder "c/d" fails after the temporary file was written.
        const ontoFolder = yield* Effect.flip(store.put("c/d", randomBytes(1000)))
        assert.strictEqual(ontoFolder.reason, "InvalidArgument")
        assert.strictEqual(ontoFolder.key, "c/d")
        const underFile = yield* Effect.flip(store.put("c/d/e/f", new Uint8Array([1])))
        assert.strictEqual(underFile.reason, "InvalidArgument")
        assert.deepStrictEqual(yield* fs.readDirectory(path.join(root, "c")), ["d"])
        assert.deepStrictEqual(yield* fs.readDirectory(path.join(root, "c", "d")), ["e"])
      })
    ))

  it.live("an interrupted put leaves no temporary file", () =>
    withStore((store, root) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const path = yield* Path.Path
        const big = randomBytes(64 * 1024 * 1024)
        for (let i = 0; i < 5; i++) {
          const fiber = yield* Effect.fork(store.put(`i/${i}`, big))
          yield* Effect.sleep(i)
          yield* Fiber.interrupt(fiber)
        }
        const names = yield* fs.readDirectory(path.join(root, "i")).pipe(Effect.orElseSucceed(() => []))
        assert.isFalse(names.some((name) => name.includes(".tmp-")), `debris: ${names.join(", ")}`)
      })
    ), 60_000)

  it.live(
    "put is atomic: concurrent readers see a whole payload, never a mix or a truncation",
    () =>
      withStore((store) =>
        Effect.gen(function*() {
          const size = 4 * 1024 * 1024
          // Payload i is the byte i + 1 repeated, so a reader can tell which write it saw and whether it is whole.
          const payloads = Array.from({ length: 6 }, (_, i) => new Uint8Array(size).fill(i + 1))
          const key = "atomic/object"
          yield* store.put(key, payloads[0]!)
          const done = yield* Ref.make(false)
          const reads = yield* Ref.make(0)
          const reader = Effect.gen(function*() {
            while (!(yield* Ref.get(done))) {
              const got = yield* store.get(key)
              assert.isTrue(Option.isSome(got), "the object vanished during a replace")
              const bytes = Option.getOrThrow(got)
              assert.strictEqual(bytes.byteLength, size, "a reader saw a truncated object")
              const first = bytes[0]!
              assert.isTrue(first >= 1 && first <= payloads.length, `unexpected first byte ${first}`)
              assert.isTrue(bytes.every((byte) => byte === first), "a reader saw a mix of two payloads")
              yield* Ref.update(reads, (n) => n + 1)
            }
          })
          const writers = Effect.forEach(
            Array.from({ length: 60 }, (_, i) => payloads[i % payloads.length]!),
            (bytes) => store.put(key, bytes),
            { concurrency: 6, discard: true }
          ).pipe(Effect.ensuring(Ref.set(done, true)))
          yield* Effect.all([writers, reader, reader, reader], { concurrency: "unbounded", discard: true })
          assert.isAbove(yield* Ref.get(reads), 10)
        })
      ),
    60_000
  )

  it.live("list pages through one large folder", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const keys = Array.from({ length: 700 }, (_, i) => `flat/${i.toString().padStart(4, "0")}`)
        yield* Effect.forEach(keys, (key) => store.put(key, new Uint8Array([1])), { concurrency: 32, discard: true })
        const chunks = yield* Stream.runCollect(Stream.mapChunks(store.list("flat/"), (chunk) => Chunk.of(chunk)))
        const sizes = Chunk.toReadonlyArray(chunks).map(Chunk.size).filter((n) => n > 0)
        assert.isAbove(sizes.length, 1, "the listing came out in one chunk")
        assert.deepStrictEqual(Chunk.toReadonlyArray(Chunk.flatten(chunks)).map((info) => info.key), keys)
      })
    ))
})
