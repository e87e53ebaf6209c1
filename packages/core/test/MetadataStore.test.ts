import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import * as MetadataStore from "../src/MetadataStore.js"
import { commitHeld, freshNamespace, hashOf, makeRecord, metadataStoreSuite } from "./utils/MetadataStoreSuite.js"

metadataStoreSuite("MetadataStore.layerMemory (TestClock)", MetadataStore.layerMemory, { clock: "test" })

// Runs the live-clock variant that the Redis stores use, so that its timing is known to pass on a correct store.
metadataStoreSuite("MetadataStore.layerMemory (live clock)", MetadataStore.layerMemory, { clock: "live" })

describe("MetadataStore.layerMemory", () => {
  const lock = { token: "A", lockTtlMs: 1_000 }

  it.effect("a record is live until exactly commit time + ttlMs", () =>
    Effect.gen(function*() {
      const store = yield* MetadataStore.MetadataStore
      const ns = yield* freshNamespace
      yield* TestClock.adjust(Duration.millis(5_000))
      const record = makeRecord(ns, hashOf("a"), { ttlMs: 1_000, createdAt: 0 })
      yield* commitHeld(store, record, 10)
      yield* TestClock.adjust(Duration.millis(999))
      assert.deepStrictEqual(yield* store.getMany(ns, [record.hash]), [Option.some(record)])
      assert.strictEqual(yield* store.size(ns), 1)
      yield* TestClock.adjust(Duration.millis(1))
      assert.deepStrictEqual(yield* store.getMany(ns, [record.hash]), [Option.none()])
      assert.strictEqual(yield* store.size(ns), 0)
      assert.deepStrictEqual(yield* store.lookup(ns, record.hash, lock), { _tag: "Acquired" })
    }).pipe(Effect.provide(MetadataStore.layerMemory)))

  it.effect("a lock lives until exactly acquisition time + lockTtlMs", () =>
    Effect.gen(function*() {
      const store = yield* MetadataStore.MetadataStore
      const ns = yield* freshNamespace
      const hash = hashOf("a")
      assert.deepStrictEqual(yield* store.lookup(ns, hash, lock), { _tag: "Acquired" })
      yield* TestClock.adjust(Duration.millis(999))
      assert.deepStrictEqual(yield* store.lookup(ns, hash, { token: "B", lockTtlMs: 1_000 }), { _tag: "Busy" })
      yield* TestClock.adjust(Duration.millis(1))
      assert.deepStrictEqual(yield* store.lookup(ns, hash, { token: "B", lockTtlMs: 1_000 }), { _tag: "Acquired" })
    }).pipe(Effect.provide(MetadataStore.layerMemory)))

  it.effect("accesses within the same millisecond keep their order", () =>
    Effect.gen(function*() {
      const store = yield* MetadataStore.MetadataStore
      const ns = yield* freshNamespace
      const [a, b, c, d, e] = ["a", "b", "c", "d", "e"].map((label) => makeRecord(ns, hashOf(label)))
      yield* commitHeld(store, a!, 3)
      yield* commitHeld(store, b!, 3)
      yield* commitHeld(store, c!, 3)
      assert.strictEqual((yield* store.lookup(ns, a!.hash, lock))._tag, "Hit")
      assert.deepStrictEqual(yield* commitHeld(store, d!, 3), {
        _tag: "Committed",
        obsolete: [b!.objectKey],
        evicted: 1
      })
      assert.deepStrictEqual(yield* commitHeld(store, e!, 3), {
        _tag: "Committed",
        obsolete: [c!.objectKey],
        evicted: 1
      })
      assert.deepStrictEqual(yield* store.getMany(ns, [a!.hash, d!.hash, e!.hash]), [
        Option.some(a!),
        Option.some(d!),
        Option.some(e!)
      ])
    }).pipe(Effect.provide(MetadataStore.layerMemory)))

  it.effect("a commit reports the object keys of the expired entries it drops", () =>
    Effect.gen(function*() {
      const store = yield* MetadataStore.MetadataStore
      const ns = yield* freshNamespace
      const a = makeRecord(ns, hashOf("a"), { ttlMs: 1_000 })
      const b = makeRecord(ns, hashOf("b"), { ttlMs: 2_000 })
      const c = makeRecord(ns, hashOf("c"), { ttlMs: 60_000 })
      yield* commitHeld(store, a, 10)
      yield* commitHeld(store, b, 10)
      yield* commitHeld(store, c, 10)
      yield* TestClock.adjust(Duration.millis(1_500))
      const d = makeRecord(ns, hashOf("d"))
      assert.deepStrictEqual(yield* commitHeld(store, d, 10), {
        _tag: "Committed",
        obsolete: [a.objectKey],
        evicted: 0
      })
      yield* TestClock.adjust(Duration.millis(1_000))
      const e = makeRecord(ns, hashOf("e"))
      assert.deepStrictEqual(yield* commitHeld(store, e, 2), {
        _tag: "Committed",
        obsolete: [b.objectKey, c.objectKey],
        evicted: 1
      })
      assert.strictEqual(yield* store.size(ns), 2)
    }).pipe(Effect.provide(MetadataStore.layerMemory)))

  it.effect("expired records still yield their object keys to remove and clearNamespace", () =>
    Effect.gen(function*() {
      const store = yield* MetadataStore.MetadataStore
      const ns = yield* freshNamespace
      const a = makeRecord(ns, hashOf("a"), { ttlMs: 1_000 })
      const b = makeRecord(ns, hashOf("b"), { ttlMs: 1_000 })
      yield* commitHeld(store, a, 10)
      yield* commitHeld(store, b, 10)
      yield* TestClock.adjust(Duration.millis(2_000))
      assert.deepStrictEqual(yield* store.remove(ns, [a.hash]), [a.objectKey])
      assert.deepStrictEqual(yield* store.clearNamespace(ns), { done: true, objectKeys: [b.objectKey] })
    }).pipe(Effect.provide(MetadataStore.layerMemory)))

  it.effect("each build of the layer is a separate store", () =>
    Effect.gen(function*() {
      const ns = yield* freshNamespace
      const record = makeRecord(ns, hashOf("a"))
      yield* MetadataStore.MetadataStore.pipe(
        Effect.flatMap((store) => commitHeld(store, record, 10)),
        Effect.provide(MetadataStore.layerMemory)
      )
      const found = yield* MetadataStore.MetadataStore.pipe(
        Effect.flatMap((store) => store.getMany(ns, [record.hash])),
        Effect.provide(MetadataStore.layerMemory)
      )
      assert.deepStrictEqual(found, [Option.none()])
      const ids = yield* Effect.all([
        Effect.flatMap(MetadataStore.MetadataStore, (store) => store.id).pipe(
          Effect.provide(MetadataStore.layerMemory)
        ),
        Effect.flatMap(MetadataStore.MetadataStore, (store) => store.id).pipe(Effect.provide(MetadataStore.layerMemory))
      ])
      assert.notStrictEqual(ids[0], ids[1], "a separate store has an id of its own")
    }))
})
