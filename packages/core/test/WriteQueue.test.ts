/**
 * The background write queue: at most `writeConcurrency` writes at once, started in the order they were queued, each
 * finished or its lock released, and a waiting write that is interrupted gives back nothing it did not take.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Permits from "../src/internal/permits.js"
import { makeHarness, waitUntil } from "./utils/harness.js"

describe("the write queue", () => {
  it.scoped("runs at most writeConcurrency writes at once, in the order they were queued, and finishes them all", () =>
    Effect.gen(function*() {
      let running = 0
      let most = 0
      const started: Array<string> = []
      const gate = yield* Deferred.make<void>()
      const { cache } = yield* makeHarness({
        cache: { writeConcurrency: 3 },
        blobs: (store) => ({
          put: (key, bytes) =>
            Effect.suspend(() => {
              running++
              most = Math.max(most, running)
              started.push(key)
              return Deferred.await(gate).pipe(
                Effect.zipRight(store.put(key, bytes)),
                Effect.ensuring(Effect.sync(() => running--))
              )
            })
        })
      })
      const keys = Array.from({ length: 40 }, (_, i) => `k${i}`)
      // one caller at a time: the writes are queued in the order of the keys
      for (const key of keys) yield* cache.cached(Effect.succeed(key), { key })
      yield* waitUntil(Effect.sync(() => running === 3))
      assert.strictEqual(started.length, 3, "the others wait for a permit")
      yield* Deferred.succeed(gate, void 0)
      yield* cache.flush
      assert.strictEqual(most, 3)
      assert.strictEqual(started.length, 40)
      const order = yield* Effect.forEach(keys, (key) => cache.hashKey(key))
      assert.deepStrictEqual(started.map((objectKey) => order.findIndex((hash) => objectKey.includes(hash))), [
        ...keys.keys()
      ])
      const stats = yield* cache.stats
      assert.strictEqual(stats.writes, 40)
      for (const key of keys) assert.strictEqual(yield* cache.cached(Effect.succeed("recomputed"), { key }), key)
    }))
})

describe("permits", () => {
  it.effect("a release wakes the oldest waiter only; interrupted waiters leave the line and take nothing", () =>
    Effect.gen(function*() {
      const permits = Permits.make(1)
      const holder = yield* Deferred.make<void>()
      const order: Array<number> = []
      const first = yield* Effect.fork(permits.withPermit(Deferred.await(holder)))
      yield* waitUntil(Effect.sync(() => permits.waiting() === 0))
      const waiters = yield* Effect.forEach(
        [1, 2, 3, 4],
        (n) => Effect.fork(permits.withPermit(Effect.sync(() => order.push(n)))),
        { concurrency: 1 }
      )
      yield* waitUntil(Effect.sync(() => permits.waiting() === 4))
      // the second in line leaves: the others keep their places
      yield* Fiber.interrupt(waiters[1]!)
      assert.strictEqual(permits.waiting(), 3)
      yield* Deferred.succeed(holder, void 0)
      yield* Fiber.join(first)
      yield* Effect.forEach([waiters[0]!, waiters[2]!, waiters[3]!], Fiber.join)
      assert.deepStrictEqual(order, [1, 3, 4])
      // nothing leaked: the one permit is free again
      assert.strictEqual(yield* permits.withPermit(Effect.succeed("free")), "free")
    }))

  it.effect("a permit handed to a waiter that is interrupted before it runs passes on", () =>
    Effect.gen(function*() {
      const permits = Permits.make(1)
      const holder = yield* Deferred.make<void>()
      // eslint-disable-next-line prefer-const -- assigned once the holder, which reads it, is running
      let second: Fiber.RuntimeFiber<number> | undefined
      // the holder releases its permit (handing it to `second`) and, before `second` can run, interrupts it
      const first = yield* Effect.fork(
        permits.withPermit(Deferred.await(holder)).pipe(
          Effect.zipRight(Effect.sync(() => second!.unsafeInterruptAsFork(FiberId.none)))
        )
      )
      yield* waitUntil(Effect.sync(() => permits.waiting() === 0))
      const ran: Array<string> = []
      second = yield* Effect.fork(permits.withPermit(Effect.sync(() => ran.push("second"))))
      const third = yield* Effect.fork(permits.withPermit(Effect.sync(() => ran.push("third"))))
      yield* waitUntil(Effect.sync(() => permits.waiting() === 2))
      yield* Deferred.succeed(holder, void 0)
      yield* Fiber.join(first)
      assert.isTrue((yield* Fiber.await(second))._tag === "Failure", "second was interrupted")
      yield* Fiber.join(third)
      assert.deepStrictEqual(ran, ["third"])
      assert.strictEqual(yield* permits.withPermit(Effect.succeed("free")), "free")
    }))
})
