/**
 * The conformance suite of the `BlobStore` port, written once and run against every implementation (memory, file
 * system, S3).
 *
 * The layer is built once per suite and shared; every test works under a key prefix of its own, because a real
 * bucket keeps its objects between tests and between runs. Tests run with the live clock: `lastModified` comes from
 * the backend, and a store with timeouts or retries must not wait on a `TestClock` nobody moves.
 *
 * @since 0.1.0
 */
// first: on Effect 4, our error that says what to do rather than one from @effect/vitest
import "../../src/internal/effectVersion.js"
import { afterAll, assert, beforeAll, describe, it as vitest } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as crypto from "node:crypto"
import { type BlobInfo, BlobStore } from "../../src/BlobStore.js"
import type { BlobStoreError } from "../../src/CacheError.js"

/**
 * @since 0.1.0
 */
export interface BlobStoreSuiteOptions {
  /** every test writes under `<root>/<random>/`; default `"s3cache-suite"` */
  readonly root?: string | undefined
  /** how long building the layer may take, and each test; default 60 seconds */
  readonly timeout?: Duration.DurationInput | undefined
}

const runId = crypto.randomBytes(4).toString("hex")
let prefixCounter = 0

/**
 * A key prefix, ending in `/`, that no other test, suite or earlier run has used.
 *
 * @since 0.1.0
 */
export const freshPrefix = (root = "s3cache-suite"): Effect.Effect<string> =>
  Effect.sync(() => `${root}/${runId}-${++prefixCounter}-${crypto.randomBytes(4).toString("hex")}/`)

/**
 * Random bytes as a plain `Uint8Array` (not a pooled `Buffer`).
 *
 * @since 0.1.0
 */
export const randomBytes = (size: number): Uint8Array => new Uint8Array(crypto.randomBytes(size))

/**
 * Byte equality that ignores the prototype (`Buffer` vs `Uint8Array`), with a short message on a mismatch.
 *
 * @since 0.1.0
 */
export const assertSameBytes = (actual: Uint8Array, expected: Uint8Array, label = "bytes"): void => {
  assert.instanceOf(actual, Uint8Array, `${label}: not a Uint8Array`)
  assert.strictEqual(actual.byteLength, expected.byteLength, `${label}: length`)
  assert.isTrue(
    Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength)
      .equals(Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength)),
    `${label}: content differs`
  )
}

/**
 * @since 0.1.0
 */
export const listAll = (prefix: string): Effect.Effect<ReadonlyArray<BlobInfo>, BlobStoreError, BlobStore> =>
  Effect.flatMap(BlobStore, (store) => Stream.runCollect(store.list(prefix))).pipe(Effect.map(Chunk.toReadonlyArray))

const listKeys = (prefix: string) => Effect.map(listAll(prefix), (infos) => infos.map((info) => info.key).sort())

const assertInvalidArgument = (error: BlobStoreError, method: string, key: string) => {
  assert.strictEqual(error._tag, "BlobStoreError")
  assert.strictEqual(error.reason, "InvalidArgument", `${method}(${JSON.stringify(key)}): reason`)
  assert.strictEqual(error.method, method)
  assert.strictEqual(error.key, key)
  // The message must tell the user what a valid key looks like, not just that this one is wrong.
  assert.include(error.message, "A-Z a-z 0-9 . _ = -")
}

const invalidKeys = ["../x", "/abs", "a//b", "a/../b", "a b", "", "a/", "./a", "a\\b", "ü", "a/b?c", "x".repeat(1025)]

/**
 * Registers `describe(name)` with the conformance tests of `BlobStore`, run against `layer`.
 *
 * @example
 * blobStoreSuite("S3BlobStore (s3rver)", S3BlobStore.layer({ bucket, client }))
 *
 * @since 0.1.0
 */
export const blobStoreSuite = (
  name: string,
  storeLayer: Layer.Layer<BlobStore, unknown>,
  options: BlobStoreSuiteOptions = {}
): void => {
  const timeout = Duration.decode(options.timeout ?? Duration.seconds(60))
  const testTimeout = Duration.toMillis(timeout)
  // Removes what the test wrote, so a real bucket does not fill up run after run.
  const fresh = Effect.acquireRelease(
    freshPrefix(options.root),
    (prefix) =>
      Effect.flatMap(BlobStore, (store) =>
        store.list(prefix).pipe(
          Stream.map((info) => info.key),
          Stream.grouped(1000),
          Stream.mapEffect((keys) => store.delete(Chunk.toReadonlyArray(keys))),
          Stream.runDrain
        )).pipe(Effect.ignore)
  )

  describe(name, () => {
    // Built once for the whole suite and closed after it. Not `layer()` from @effect/vitest: that one replaces the
    // methods of the global `it` for the rest of the file, which would leak into the caller's own tests.
    const scope = Effect.runSync(Scope.make())
    const context = Effect.runSync(Effect.cached(Effect.orDie(Layer.buildWithScope(storeLayer, scope))))
    beforeAll(() => Effect.runPromise(context), testTimeout)
    afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)), testTimeout)
    const it = {
      scoped: <A, E>(
        testName: string,
        self: () => Effect.Effect<A, E, BlobStore | Scope.Scope>,
        timeoutMs: number
      ) => vitest.scopedLive(testName, () => Effect.flatMap(context, (ctx) => Effect.provide(self(), ctx)), timeoutMs)
    }

    describe("put and get", () => {
      it.scoped("put then get returns equal bytes: empty, one byte, 3 MB", () =>
        Effect.gen(function*() {
          const store = yield* BlobStore
          const prefix = yield* fresh
          const payloads = [new Uint8Array(0), new Uint8Array([0xab]), randomBytes(3 * 1024 * 1024)]
          for (const [i, bytes] of payloads.entries()) {
            yield* store.put(`${prefix}obj-${i}`, bytes)
          }
          for (const [i, bytes] of payloads.entries()) {
            const got = yield* store.get(`${prefix}obj-${i}`)
            assert.isTrue(Option.isSome(got), `obj-${i} is missing`)
            assertSameBytes(Option.getOrThrow(got), bytes, `obj-${i}`)
          }
        }), testTimeout)

      it.scoped("get of an absent key is none, not an error", () =>
        Effect.gen(function*() {
          const store = yield* BlobStore
          const prefix = yield* fresh
          assert.isTrue(Option.isNone(yield* store.get(`${prefix}absent`)))
          assert.isTrue(Option.isNone(yield* store.get(`${prefix}no/such/folder/absent`)))
          yield* store.put(`${prefix}present`, new Uint8Array([1]))
          // A neighbour or a key prefix of an existing object is not that object.
          assert.isTrue(Option.isNone(yield* store.get(`${prefix}presen`)))
          assert.isTrue(Option.isNone(yield* store.get(`${prefix}present-2`)))
        }), testTimeout)

      it.scoped("put replaces the object", () =>
        Effect.gen(function*() {
          const store = yield* BlobStore
          const prefix = yield* fresh
          const key = `${prefix}replaced`
          yield* store.put(key, randomBytes(1000))
          const second = randomBytes(10)
          yield* store.put(key, second)
          assertSameBytes(Option.getOrThrow(yield* store.get(key)), second)
          const infos = yield* listAll(prefix)
          assert.deepStrictEqual(infos.map((info) => [info.key, info.size]), [[key, 10]])
        }), testTimeout)

      it.scoped(
        "callers cannot change stored bytes through the arrays they pass in or get back",
        () =>
          Effect.gen(function*() {
            const store = yield* BlobStore
            const prefix = yield* fresh
            const key = `${prefix}copied`
            const original = new Uint8Array([1, 2, 3, 4])
            const input = original.slice()
            yield* store.put(key, input)
            input.fill(9)
            const first = Option.getOrThrow(yield* store.get(key))
            assertSameBytes(first, original, "after mutating the input")
            first.fill(7)
            assertSameBytes(Option.getOrThrow(yield* store.get(key)), original, "after mutating a result")
          }),
        testTimeout
      )

      it.scoped("keys may use every allowed character and be 1024 characters long", () =>
        Effect.gen(function*() {
          const store = yield* BlobStore
          const prefix = yield* fresh
          const odd = `${prefix}A-z_0.9=x/.hidden/..dots/-`
          yield* store.put(odd, new Uint8Array([1]))
          assertSameBytes(Option.getOrThrow(yield* store.get(odd)), new Uint8Array([1]))
          // Segments of 100 characters, so a file system's 255-byte name limit is not what is tested here.
          let long = prefix
          while (long.length < 1024) {
            const room = 1024 - long.length
            long += room > 101 ? `${"k".repeat(100)}/` : "k".repeat(room)
          }
          assert.strictEqual(long.length, 1024)
          yield* store.put(long, new Uint8Array([2]))
          assertSameBytes(Option.getOrThrow(yield* store.get(long)), new Uint8Array([2]))
          assert.include(yield* listKeys(prefix), long)
        }), testTimeout)

      it.scoped("invalid keys fail with InvalidArgument on put and get", () =>
        Effect.gen(function*() {
          const store = yield* BlobStore
          for (const key of invalidKeys) {
            assertInvalidArgument(yield* Effect.flip(store.put(key, new Uint8Array([1]))), "put", key)
            assertInvalidArgument(yield* Effect.flip(store.get(key)), "get", key)
          }
        }), testTimeout)
    })

    describe("delete", () => {
      it.scoped("deletes, counts absent keys as deleted and reports no failure", () =>
        Effect.gen(function*() {
          const store = yield* BlobStore
          const prefix = yield* fresh
          yield* store.put(`${prefix}a`, new Uint8Array([1]))
          yield* store.put(`${prefix}b/c`, new Uint8Array([2]))
          yield* store.put(`${prefix}kept`, new Uint8Array([3]))
          const result = yield* store.delete([`${prefix}a`, `${prefix}b/c`, `${prefix}never-written`])
          assert.deepStrictEqual(result, { deleted: 3, failed: [] })
          assert.isTrue(Option.isNone(yield* store.get(`${prefix}a`)))
          assert.isTrue(Option.isNone(yield* store.get(`${prefix}b/c`)))
          assert.isTrue(Option.isSome(yield* store.get(`${prefix}kept`)))
          assert.deepStrictEqual(yield* listKeys(prefix), [`${prefix}kept`])
          assert.deepStrictEqual(yield* store.delete([]), { deleted: 0, failed: [] })
        }), testTimeout)

      it.scoped("an invalid key is reported in `failed` and does not stop the others", () =>
        Effect.gen(function*() {
          const store = yield* BlobStore
          const prefix = yield* fresh
          yield* store.put(`${prefix}a`, new Uint8Array([1]))
          const result = yield* store.delete(["../escape", `${prefix}a`])
          assert.strictEqual(result.deleted, 1)
          assert.strictEqual(result.failed.length, 1)
          assert.strictEqual(result.failed[0]!.key, "../escape")
          assertInvalidArgument(result.failed[0]!.error, "delete", "../escape")
          assert.isTrue(Option.isNone(yield* store.get(`${prefix}a`)))
        }), testTimeout)

      it.scoped("deletes 1,200 keys in one call (past S3's 1,000 per request)", () =>
        Effect.gen(function*() {
          const store = yield* BlobStore
          const prefix = yield* fresh
          const keys = Array.from({ length: 1200 }, (_, i) => `${prefix}${(i % 7).toString()}/${i}`)
          yield* Effect.forEach(keys, (key) => store.put(key, new Uint8Array([1])), { concurrency: 32, discard: true })
          assert.strictEqual((yield* listAll(prefix)).length, 1200)
          const absent = Array.from({ length: 10 }, (_, i) => `${prefix}absent-${i}`)
          const result = yield* store.delete([...keys, ...absent])
          assert.deepStrictEqual(result, { deleted: 1210, failed: [] })
          assert.deepStrictEqual(yield* listAll(prefix), [])
          assert.isTrue(Option.isNone(yield* store.get(keys[1199]!)))
        }), testTimeout)
    })

    describe("list", () => {
      it.scoped(
        "lists exactly the keys that start with the prefix, with size and lastModified",
        () =>
          Effect.gen(function*() {
            const store = yield* BlobStore
            const p = yield* fresh
            const objects: ReadonlyArray<readonly [string, number]> = [
              [`${p}ns1/a`, 3],
              [`${p}ns1/b/c`, 0],
              [`${p}ns1/b/d/e`, 1],
              [`${p}ns10/x`, 5],
              [`${p}ns1x`, 2],
              [`${p}ns2/y`, 4]
            ]
            const before = Date.now()
            for (const [key, size] of objects) yield* store.put(key, randomBytes(size))
            const after = Date.now()

            const all = yield* listAll(p)
            assert.deepStrictEqual(
              all.map((info) => [info.key, info.size] as const).sort(([a], [b]) => (a < b ? -1 : 1)),
              [...objects].sort(([a], [b]) => (a < b ? -1 : 1))
            )
            for (const info of all) {
              // Wide enough for clock skew between the test and a remote backend, narrow enough to catch seconds
              // used as milliseconds or a zero.
              assert.isTrue(
                info.lastModified >= before - 60_000 && info.lastModified <= after + 60_000,
                `${info.key}: lastModified ${info.lastModified} is not within a minute of ${before}..${after}`
              )
            }
            // "ns1/" must not reach the neighbour "ns10/".
            assert.deepStrictEqual(yield* listKeys(`${p}ns1/`), [`${p}ns1/a`, `${p}ns1/b/c`, `${p}ns1/b/d/e`])
            // Without the slash it is a plain string prefix, as in S3.
            assert.deepStrictEqual(yield* listKeys(`${p}ns1`), [
              `${p}ns1/a`,
              `${p}ns1/b/c`,
              `${p}ns1/b/d/e`,
              `${p}ns10/x`,
              `${p}ns1x`
            ])
            assert.deepStrictEqual(yield* listKeys(`${p}ns1/b`), [`${p}ns1/b/c`, `${p}ns1/b/d/e`])
            assert.deepStrictEqual(yield* listKeys(`${p}ns1/a`), [`${p}ns1/a`])
            assert.deepStrictEqual(yield* listKeys(`${p}ns2/`), [`${p}ns2/y`])
            assert.deepStrictEqual(yield* listKeys(`${p}ns3/`), [])
            assert.deepStrictEqual(yield* listKeys(`${p}ns1/a/`), [])
            const everything = yield* listKeys("")
            for (const [key] of objects) assert.include(everything, key)
          }),
        testTimeout
      )

      it.scoped("lists 1,500 objects, each exactly once", () =>
        Effect.gen(function*() {
          const store = yield* BlobStore
          const p = yield* fresh
          const keys = Array.from({ length: 1500 }, (_, i) => `${p}${(i % 16).toString(16)}/${i}`)
          yield* Effect.forEach(keys, (key, i) => store.put(key, new Uint8Array(i % 5)), {
            concurrency: 32,
            discard: true
          })
          const infos = yield* listAll(p)
          assert.strictEqual(infos.length, 1500)
          const seen = new Map(infos.map((info) => [info.key, info.size]))
          assert.strictEqual(seen.size, 1500, "a key was listed twice")
          keys.forEach((key, i) => assert.strictEqual(seen.get(key), i % 5, key))
        }), testTimeout)

      it.scoped("a listing can be run again and stopped early", () =>
        Effect.gen(function*() {
          const store = yield* BlobStore
          const p = yield* fresh
          for (let i = 0; i < 5; i++) yield* store.put(`${p}${i}`, new Uint8Array([i]))
          const listing = store.list(p)
          assert.strictEqual(Chunk.size(yield* Stream.runCollect(listing)), 5)
          assert.strictEqual(Chunk.size(yield* Stream.runCollect(listing)), 5)
          assert.strictEqual(Chunk.size(yield* Stream.runCollect(Stream.take(listing, 2))), 2)
        }), testTimeout)

      it.scoped("an invalid prefix fails with InvalidArgument", () =>
        Effect.gen(function*() {
          const store = yield* BlobStore
          for (const prefix of ["../", "/abs", "a//b", "a/../", "a b", "//", "/", "a\\"]) {
            assertInvalidArgument(yield* Effect.flip(Stream.runDrain(store.list(prefix))), "list", prefix)
          }
        }), testTimeout)
    })
  })
}
