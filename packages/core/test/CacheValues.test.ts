/**
 * The cached call never serves another call's value: not a value mutated after it was returned, not another
 * caller's copy, not a value of another type, not the entry of another key.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Cache from "../src/Cache.js"
import * as CacheKey from "../src/CacheKey.js"
import { counted, makeHarness, waitUntil } from "./utils/harness.js"

describe("what is stored is the value as it was when the effect completed", () => {
  it.scoped("a caller that mutates its value while the write waits changes neither the store nor later hits", () =>
    Effect.gen(function*() {
      const uploadGate = yield* Deferred.make<void>()
      const { cache } = yield* makeHarness({
        blobs: (store) => ({ put: (key, bytes) => Effect.zipRight(Deferred.await(uploadGate), store.put(key, bytes)) })
      })
      const rows = yield* cache.cached(Effect.sync(() => ({ rows: [1, 2, 3], total: 6 })), { key: "report" })
      const bytes = yield* cache.cached(Effect.sync(() => new Uint8Array([1, 2, 3])), { key: "bytes" })
      // the write queue is busy (the upload waits): the caller mutates what it got
      rows.rows.push(4)
      rows.total = 10
      bytes[0] = 99
      yield* Deferred.succeed(uploadGate, undefined)
      yield* cache.flush
      assert.deepStrictEqual(yield* cache.cached(Effect.die("must hit"), { key: "report" }), {
        rows: [1, 2, 3],
        total: 6
      })
      assert.deepStrictEqual(yield* cache.cached(Effect.die("must hit"), { key: "bytes" }), new Uint8Array([1, 2, 3]))
      assert.strictEqual((yield* cache.stats).hits, 2)
    }))

  it.scoped("callers that share a computation each get a value of their own", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness()
      for (const [key, value] of [["object", { list: [1, 2] }], ["bytes", new Uint8Array([7, 8])]] as const) {
        const gate = yield* Deferred.make<void>()
        const original = structuredClone(value)
        const effect = Effect.as(Deferred.await(gate), value)
        const first = yield* Effect.fork(cache.cached(effect, { key }))
        const second = yield* Effect.fork(cache.cached(effect, { key }))
        yield* waitUntil(Effect.map(cache.stats, (stats) => stats.coalesced >= (key === "object" ? 1 : 2)))
        yield* Deferred.succeed(gate, undefined)
        const a = yield* Fiber.join(first)
        const b = yield* Fiber.join(second)
        assert.deepStrictEqual(a, b)
        assert.notStrictEqual(a, b, `${key}: two callers, two values`)
        if (a instanceof Uint8Array) a[0] = 0
        else (a as unknown as { list: Array<number> }).list.push(3)
        assert.deepStrictEqual(b, original, `${key}: one caller's mutation does not reach the other`)
      }
    }))

  it.scoped("where no copy can be made (a value the format cannot encode), a joiner runs its own effect", () =>
    Effect.gen(function*() {
      class Account {
        constructor(public balance: number) {}
      }
      const { cache } = yield* makeHarness()
      for (
        const [key, format, make] of [
          ["class", "auto", () => new Account(100)],
          ["bigint", "json", () => ({ total: 10n })]
        ] as const
      ) {
        const gate = yield* Deferred.make<void>()
        let runs = 0
        const effect = Effect.zipRight(Deferred.await(gate), Effect.sync(() => (runs++, make())))
        const first = yield* Effect.fork(cache.cached(effect, { key, format }))
        const second = yield* Effect.fork(cache.cached(effect, { key, format }))
        yield* waitUntil(Effect.map(cache.inFlight, (n) => n === 1))
        yield* Effect.yieldNow()
        yield* Deferred.succeed(gate, undefined)
        const a = yield* Fiber.join(first)
        const b = yield* Fiber.join(second)
        assert.deepStrictEqual(a, b)
        assert.notStrictEqual(a, b, `${key}: never one object for two callers`)
        assert.strictEqual(runs, 2)
      }
    }))

  it.scoped("a joiner whose schema cannot read the shared value runs its own effect", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness()
      const gate = yield* Deferred.make<void>()
      const untyped = Effect.as(Deferred.await(gate), { at: "yesterday" as unknown })
      const typed = Effect.as(Deferred.await(gate), { at: new Date(0) })
      const first = yield* Effect.fork(cache.cached(untyped, { key: "k" }))
      yield* waitUntil(Effect.map(cache.inFlight, (n) => n === 1))
      const second = yield* Effect.fork(
        cache.cached(typed, { key: "k", schema: Schema.Struct({ at: Schema.Date }) })
      )
      yield* waitUntil(Effect.map(cache.stats, (stats) => stats.coalesced === 1))
      yield* Deferred.succeed(gate, undefined)
      assert.deepStrictEqual(yield* Fiber.join(first), { at: "yesterday" })
      const mine = yield* Fiber.join(second)
      assert.instanceOf(mine.at, Date, "never the other call's value, typed as the schema's")
    }))

  it.scoped("callers that share a hit each get a value of their own", () =>
    Effect.gen(function*() {
      const getGate = yield* Deferred.make<void>()
      let gated = false
      const { cache } = yield* makeHarness({
        blobs: (store) => ({
          get: (key) => gated ? Effect.zipRight(Deferred.await(getGate), store.get(key)) : store.get(key)
        })
      })
      yield* cache.cached(Effect.succeed({ list: [1] }), { key: "k" })
      yield* cache.flush
      gated = true
      const hit = Effect.die("must hit") as Effect.Effect<{ list: Array<number> }>
      const first = yield* Effect.fork(cache.cached(hit, { key: "k" }))
      const second = yield* Effect.fork(cache.cached(hit, { key: "k" }))
      yield* waitUntil(Effect.map(cache.stats, (stats) => stats.coalesced === 1))
      yield* Deferred.succeed(getGate, undefined)
      const a = yield* Fiber.join(first)
      const b = yield* Fiber.join(second)
      a.list.push(2)
      assert.deepStrictEqual(b, { list: [1] })
    }))
})

describe("auto never returns a value of another type", () => {
  class Point {
    constructor(readonly x: number, readonly y: number) {}
    norm() {
      return Math.hypot(this.x, this.y)
    }
  }

  it.scoped("a class instance is refused (the call returns it uncached); the warning points at a schema", () =>
    Effect.gen(function*() {
      const { cache, metadata } = yield* makeHarness()
      const query = counted({ origin: new Point(3, 4) })
      const first = yield* cache.cached(query.effect, { key: "p" })
      yield* cache.flush
      const second = yield* cache.cached(query.effect, { key: "p" })
      assert.strictEqual(second.origin.norm(), 5, "never a plain object typed as Point")
      assert.strictEqual(first.origin.norm(), 5)
      assert.strictEqual(query.runs, 2)
      assert.strictEqual(yield* metadata.size("default"), 0)
      assert.strictEqual((yield* cache.stats).writeFailures, 2)
    }))
})

describe("a record proves it belongs to its key", () => {
  it.scoped("a record whose object belongs to another entry is a miss; that entry's object is kept", () =>
    Effect.gen(function*() {
      const { blobs, cache, metadata } = yield* makeHarness()
      yield* cache.cached(Effect.succeed({ account: "alice", balance: 100 }), { key: "alice" })
      yield* cache.cached(Effect.succeed({ account: "bob", balance: 5 }), { key: "bob" })
      yield* cache.flush
      const alice = yield* cache.hashKey("alice")
      const bob = yield* cache.hashKey("bob")
      const aliceRecord = Option.getOrThrow((yield* metadata.getMany("default", [alice]))[0]!)
      // bob's record now names alice's object (a record copied from another key): checksum and all are alice's
      const token = "swap"
      assert.isTrue(yield* metadata.acquireLock("default", bob, { token, lockTtlMs: 1000 }))
      yield* metadata.commit({ ...aliceRecord, hash: bob }, { token, maxEntries: 100 })
      const query = counted({ account: "bob", balance: 5 })
      assert.deepStrictEqual(yield* cache.cached(query.effect, { key: "bob" }), { account: "bob", balance: 5 })
      assert.strictEqual(query.runs, 1, "bob's call ran instead of serving alice's value")
      yield* cache.flush
      assert.deepStrictEqual(yield* cache.cached(Effect.die("must hit"), { key: "bob" }), {
        account: "bob",
        balance: 5
      })
      assert.deepStrictEqual(yield* cache.cached(Effect.die("must hit"), { key: "alice" }), {
        account: "alice",
        balance: 100
      })
      const keys = Array.from(yield* Stream.runCollect(blobs.list("")), (info) => info.key)
      assert.include(keys, aliceRecord.objectKey, "alice's object was not deleted as bob's bad entry")
      assert.isTrue(keys.every((key) => CacheKey.parseObjectKey(key) !== undefined))
    }))
})

describe("Cache.wrap", () => {
  it.scoped("two inline functions wrapped in one namespace never share entries", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness()
      const provide = Effect.provideService(Cache.Cache, cache)
      const getUser = Cache.wrap((id: number) => Effect.succeed({ user: id }), { name: "getUser", namespace: "api" })
      const getOrder = Cache.wrap((id: number) => Effect.succeed({ order: id }), { name: "getOrder", namespace: "api" })
      assert.deepStrictEqual(yield* getUser(1).pipe(provide), { user: 1 })
      yield* cache.flush
      assert.deepStrictEqual(yield* getOrder(1).pipe(provide), { order: 1 })
      yield* cache.flush
      assert.deepStrictEqual(yield* getUser(1).pipe(provide), { user: 1 })
      assert.deepStrictEqual(yield* getOrder(1).pipe(provide), { order: 1 })
      assert.strictEqual((yield* cache.stats).hits, 2)
    }))

  it("a wrapped function without an identity is refused when it is defined", () => {
    const inline = (id: number) => Effect.succeed(id)
    assert.throws(() => Cache.wrap(inline, { namespace: "api" } as any), /identity: a `name`/)
    assert.throws(() => Cache.wrap(inline, { name: " " } as any), /identity/)
  })
})
