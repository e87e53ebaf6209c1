/**
 * Small payloads inline in the record: one round trip to read, nothing in the blob store, and the same guarantees as
 * payloads in objects (integrity, invalidation, no caller changing what another gets).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as CacheConfig from "../src/CacheConfig.js"
import { counted, makeHarness } from "./utils/harness.js"

const inline = { inlineThreshold: CacheConfig.defaults.inlineThreshold }

/** A blob store that fails the test if the cache calls it. */
const untouchable = () => ({
  get: () => Effect.dieMessage("an inline entry must not read the blob store"),
  put: () => Effect.dieMessage("an inline entry must not write the blob store")
})

describe("payloads inline in the record", () => {
  it.scoped("a small value lives in its record: writing and hitting it never call the blob store", () =>
    Effect.gen(function*() {
      const { cache, metadata } = yield* makeHarness({ cache: inline, blobs: untouchable })
      const query = counted({ id: 7, name: "x".repeat(900) })
      yield* cache.cached(query.effect, { key: "k" })
      yield* cache.flush
      const record = Option.getOrThrow((yield* metadata.getMany("default", [yield* cache.hashKey("k")]))[0]!)
      assert.strictEqual(record.objectKey, "")
      assert.strictEqual(record.payload?.length, record.storedSize)
      assert.deepStrictEqual(yield* cache.cached(query.effect, { key: "k" }), { id: 7, name: "x".repeat(900) })
      assert.strictEqual(query.runs, 1)
      const stats = yield* cache.stats
      assert.strictEqual(stats.hits, 1)
      assert.strictEqual(stats.errors, 0)
    }))

  it.scoped("a payload over inlineThreshold goes to the blob store", () =>
    Effect.gen(function*() {
      const { blobs, cache, metadata } = yield* makeHarness({ cache: { inlineThreshold: 500 } })
      yield* cache.cached(Effect.succeed("y".repeat(400)), { key: "small", format: "json" })
      yield* cache.cached(Effect.succeed("z".repeat(600)), { key: "large", format: "json" })
      yield* cache.flush
      const [small, large] = (yield* metadata.getMany("default", [
        yield* cache.hashKey("small"),
        yield* cache.hashKey("large")
      ])).map(Option.getOrThrow)
      assert.strictEqual(small!.objectKey, "")
      assert.isDefined(small!.payload)
      assert.notStrictEqual(large!.objectKey, "")
      assert.isUndefined(large!.payload)
      const objects = Array.from(yield* Stream.runCollect(blobs.list("")), (info) => info.key)
      assert.deepStrictEqual(objects, [large!.objectKey])
      assert.strictEqual(yield* cache.cached(Effect.die("must hit"), { key: "large", format: "json" }), "z".repeat(600))
    }))

  it.scoped("a corrupted inline payload is a miss, never a wrong value, and the entry is written again", () =>
    Effect.gen(function*() {
      const { cache, metadata } = yield* makeHarness({ cache: inline })
      const query = counted({ balance: 100 })
      yield* cache.cached(query.effect, { key: "k" })
      yield* cache.flush
      const hash = yield* cache.hashKey("k")
      // the memory store hands out the record it keeps: flipping a bit of its payload corrupts the stored entry
      const payload = Option.getOrThrow((yield* metadata.getMany("default", [hash]))[0]!).payload!
      payload[payload.length - 1] = payload[payload.length - 1]! ^ 0x01
      assert.deepStrictEqual(yield* cache.cached(query.effect, { key: "k" }), { balance: 100 })
      assert.strictEqual(query.runs, 2)
      assert.strictEqual((yield* cache.stats).errors, 1)
      yield* cache.flush
      assert.deepStrictEqual(yield* cache.cached(Effect.die("must hit"), { key: "k" }), { balance: 100 })
    }))

  it.scoped("a caller that changes the bytes it got changes nothing another caller gets", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness({ cache: inline })
      const bytes = new Uint8Array([1, 2, 3, 4])
      yield* cache.cached(Effect.succeed(bytes), { key: "b" })
      yield* cache.flush
      const first = yield* cache.cached(Effect.die("must hit") as Effect.Effect<Uint8Array>, { key: "b" })
      assert.instanceOf(first, Uint8Array)
      first.fill(0)
      assert.deepStrictEqual(yield* cache.cached(Effect.die("must hit"), { key: "b" }), new Uint8Array([1, 2, 3, 4]))
    }))

  it.scoped("invalidation removes inline entries and deletes no object", () =>
    Effect.gen(function*() {
      const deleted: Array<string> = []
      const { cache } = yield* makeHarness({
        cache: inline,
        blobs: (store) => ({
          delete: (keys) => Effect.sync(() => deleted.push(...keys)).pipe(Effect.zipRight(store.delete(keys)))
        })
      })
      for (const key of ["a", "b", "c"]) yield* cache.cached(Effect.succeed(key), { key })
      yield* cache.flush
      assert.isTrue(yield* cache.invalidateKey("a"))
      assert.isFalse(yield* cache.invalidateKey("a"))
      assert.strictEqual(yield* cache.invalidateNamespace("default"), 2)
      yield* cache.flush
      assert.deepStrictEqual(deleted, [])
      const query = counted("fresh")
      assert.strictEqual(yield* cache.cached(query.effect, { key: "b" }), "fresh")
      assert.strictEqual(query.runs, 1)
    }))

  it.scoped("callers that joined a hit on an inline entry each get a value of their own", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness({ cache: inline })
      yield* cache.cached(Effect.succeed({ rows: [1, 2] }), { key: "k" })
      yield* cache.flush
      const values = yield* Effect.all(
        Array.from(
          { length: 5 },
          () => cache.cached(Effect.die("must hit") as Effect.Effect<{ rows: Array<number> }>, { key: "k" })
        ),
        { concurrency: "unbounded" }
      )
      values[0]!.rows.push(3)
      for (const value of values.slice(1)) assert.deepStrictEqual(value, { rows: [1, 2] })
      assert.deepStrictEqual(yield* cache.cached(Effect.die("must hit"), { key: "k" }), { rows: [1, 2] })
    }))
})
