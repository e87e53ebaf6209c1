/**
 * What a call does when its entry is old, or its effect fails or is slow: grace (stale entries), refresh in the
 * background or the foreground, fail-safe, graceBackoff, softTimeout, refreshAhead; and exact TTLs without grace.
 * Memory stores, on the TestClock.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import type { EntryRecord } from "../src/MetadataStore.js"
import { makeHarness, waitUntil } from "./utils/harness.js"
import { commitHeld } from "./utils/MetadataStoreSuite.js"

const quiet = Logger.withMinimumLogLevel(LogLevel.None)

/** An effect that returns `version <n>` on its n-th run, or fails while `failing` says so. */
const versions = () => {
  let runs = 0
  const state = { failing: false as false | "error" | "defect" }
  const effect = Effect.suspend(() => {
    runs++
    if (state.failing === "error") return Effect.fail(`source down (run ${runs})`)
    if (state.failing === "defect") return Effect.die(new Error(`source crashed (run ${runs})`))
    return Effect.succeed(`version ${runs}`)
  })
  return {
    effect,
    state,
    get runs() {
      return runs
    }
  }
}

describe("TTL without grace", () => {
  it.scoped("a record the store still hands out past its TTL (its clock behind ours) is not served", () =>
    Effect.gen(function*() {
      // a store that never expires what it hands out: every committed record is found by lookup for ever
      const kept = new Map<string, EntryRecord>()
      const { cache } = yield* makeHarness({
        metadata: (store) => ({
          commit: (record, options) =>
            Effect.tap(store.commit(record, options), (result) =>
              Effect.sync(() => {
                if (result._tag === "Committed") kept.set(record.hash, record)
              })),
          lookup: (namespace, hash, options) => {
            const record = kept.get(hash)
            return record === undefined
              ? store.lookup(namespace, hash, options)
              : Effect.succeed({ _tag: "Hit", record })
          }
        })
      })
      const source = versions()
      assert.strictEqual(yield* cache.cached(source.effect, { key: "k", ttl: "10 seconds" }), "version 1")
      yield* cache.flush
      yield* TestClock.adjust("9 seconds")
      assert.strictEqual(yield* cache.cached(source.effect, { key: "k", ttl: "10 seconds" }), "version 1")
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* cache.cached(source.effect, { key: "k", ttl: "10 seconds" }), "version 2")
      yield* cache.flush
      assert.strictEqual(yield* cache.cached(source.effect, { key: "k", ttl: "10 seconds" }), "version 2")
      assert.strictEqual((yield* cache.stats).staleServed, 0)
    }).pipe(quiet))
})

describe("grace: stale-while-revalidate in the background", () => {
  it.scoped("a stale entry is returned at once and refreshed once; the next call gets the new value", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness({ cache: { grace: "1 minute" } })
      const source = versions()
      const call = cache.cached(source.effect, { key: "k", ttl: "10 seconds" })
      assert.strictEqual(yield* call, "version 1")
      yield* cache.flush
      yield* TestClock.adjust("11 seconds")
      // ten callers find it stale: each gets it at once, one refresh runs
      const values = yield* Effect.all(Array.from({ length: 10 }, () => call), { concurrency: "unbounded" })
      assert.deepStrictEqual(new Set(values), new Set(["version 1"]))
      yield* cache.flush
      assert.strictEqual(source.runs, 2, "one refresh")
      assert.strictEqual(yield* call, "version 2")
      const stats = yield* cache.stats
      assert.strictEqual(stats.refreshes, 1)
      assert.strictEqual(stats.refreshFailures, 0)
      assert.isAtLeast(stats.staleServed, 1)
    }).pipe(quiet))

  it.scoped("past TTL + grace the entry is gone: the effect runs, and its error reaches the caller", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness({ cache: { grace: "1 minute" } })
      const source = versions()
      const call = cache.cached(source.effect, { key: "k", ttl: "10 seconds" })
      yield* call
      yield* cache.flush
      yield* TestClock.adjust("71 seconds")
      source.state.failing = "error"
      assert.deepStrictEqual(yield* Effect.either(call), Either.left("source down (run 2)"))
    }).pipe(quiet))

  it.scoped("a failed refresh keeps the entry; the key rests for graceBackoff, then is tried again", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness({ cache: { grace: "10 minutes", graceBackoff: "5 seconds" } })
      const source = versions()
      const call = cache.cached(source.effect, { key: "k", ttl: "10 seconds" })
      yield* call
      yield* cache.flush
      yield* TestClock.adjust("11 seconds")
      source.state.failing = "error"
      assert.strictEqual(yield* call, "version 1")
      yield* cache.flush
      assert.strictEqual(source.runs, 2)
      assert.strictEqual((yield* cache.stats).refreshFailures, 1)
      for (let i = 0; i < 5; i++) assert.strictEqual(yield* call, "version 1")
      yield* cache.flush
      assert.strictEqual(source.runs, 2, "not tried again within graceBackoff")
      yield* TestClock.adjust("5 seconds")
      source.state.failing = false
      assert.strictEqual(yield* call, "version 1")
      yield* cache.flush
      assert.strictEqual(source.runs, 3, "tried again after graceBackoff")
      assert.strictEqual(yield* call, "version 3")
    }).pipe(quiet))

  it.scoped("one refresh per key: in this process while one runs, and across processes through the lock", () =>
    Effect.gen(function*() {
      const a = yield* makeHarness({ cache: { grace: "1 minute" } })
      const b = yield* makeHarness({ cache: { grace: "1 minute" }, stores: a })
      const gate = yield* Deferred.make<void>()
      let runs = 0
      const effect = Effect.suspend(() => {
        runs++
        return runs === 1 ? Effect.succeed("version 1") : Effect.as(Deferred.await(gate), `version ${runs}`)
      })
      const options = { key: "k", ttl: "10 seconds" } as const
      yield* a.cache.cached(effect, options)
      yield* a.cache.flush
      yield* TestClock.adjust("11 seconds")
      // one caller after another (no shared flight): each finds the entry stale while the refresh runs
      for (let i = 0; i < 5; i++) {
        assert.strictEqual(yield* a.cache.cached(effect, options), "version 1")
        assert.strictEqual(yield* b.cache.cached(effect, options), "version 1")
      }
      yield* waitUntil(Effect.sync(() => runs === 2))
      yield* Deferred.succeed(gate, undefined)
      yield* a.cache.flush
      yield* b.cache.flush
      assert.strictEqual(runs, 2, "one refresh")
      assert.strictEqual(yield* b.cache.cached(effect, options), "version 2")
    }).pipe(quiet))

  it.scoped("an invalidation during a refresh wins: the refreshed value computed before it is not stored", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness({ cache: { grace: "1 minute" } })
      const gate = yield* Deferred.make<void>()
      let runs = 0
      const effect = Effect.suspend(() => {
        runs++
        return runs === 2 ? Effect.as(Deferred.await(gate), "computed before") : Effect.succeed(`version ${runs}`)
      })
      const call = cache.cached(effect, { key: "k", ttl: "10 seconds" })
      yield* call
      yield* cache.flush
      yield* TestClock.adjust("11 seconds")
      assert.strictEqual(yield* call, "version 1")
      yield* waitUntil(Effect.sync(() => runs === 2))
      yield* cache.invalidateKey("k")
      yield* Deferred.succeed(gate, undefined)
      yield* cache.flush
      assert.strictEqual(yield* call, "version 3", "a miss after the invalidation")
      assert.strictEqual((yield* cache.stats).writesSuperseded, 1)
    }).pipe(quiet))
})

describe("grace: refresh in the foreground", () => {
  it.scoped("the effect runs now: its value when it succeeds, the stale one when it fails (error or defect)", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness({
        cache: { grace: "10 minutes", refresh: "foreground", graceBackoff: 0 }
      })
      const source = versions()
      const call = cache.cached(source.effect, { key: "k", ttl: "10 seconds" })
      yield* call
      yield* cache.flush
      yield* TestClock.adjust("11 seconds")
      assert.strictEqual(yield* call, "version 2", "a fresh value from the foreground")
      yield* cache.flush
      yield* TestClock.adjust("11 seconds")
      source.state.failing = "error"
      assert.strictEqual(yield* call, "version 2", "fail-safe: the stale value stands in for the error")
      source.state.failing = "defect"
      assert.strictEqual(yield* call, "version 2", "and for a defect")
      const stats = yield* cache.stats
      assert.strictEqual(stats.refreshFailures, 2)
      assert.strictEqual(stats.staleServed, 2)
      assert.strictEqual(stats.refreshes, 3)
    }).pipe(quiet))

  it.scoped("a record another process writes between the lookup and the lock is read, not computed again", () =>
    Effect.gen(function*() {
      let raced = false
      const { cache } = yield* makeHarness({
        cache: { grace: "1 minute", refresh: "foreground" },
        metadata: (store) => ({
          // the first lock taken finds that another writer has just committed the entry anew and let its lock go
          acquireLock: (namespace, hash, options) =>
            Effect.gen(function*() {
              if (!raced) {
                raced = true
                const [found] = yield* store.getMany(namespace, [hash])
                const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
                yield* commitHeld(store, { ...Option.getOrThrow(found!), createdAt: now }, 100)
              }
              return yield* store.acquireLock(namespace, hash, options)
            })
        })
      })
      const source = versions()
      const options = { key: "k", ttl: "10 seconds" } as const
      yield* cache.cached(source.effect, options)
      yield* cache.flush
      yield* TestClock.adjust("11 seconds")
      assert.strictEqual(yield* cache.cached(source.effect, options), "version 1", "the other writer's record")
      assert.strictEqual(source.runs, 1, "not computed again")
      const stats = yield* cache.stats
      assert.strictEqual(stats.refreshes, 0)
      assert.strictEqual(stats.staleServed, 0, "a fresh record")
      yield* cache.flush
      // and the lock was let go: the next refresh can take it
      yield* TestClock.adjust("11 seconds")
      assert.strictEqual(yield* cache.cached(source.effect, options), "version 2")
    }).pipe(quiet))

  it.scoped("failSafe decides which failures qualify: a predicate, or false for none", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness({ cache: { grace: "10 minutes", refresh: "foreground" } })
      const source = versions()
      const options = { key: "k", ttl: "10 seconds" } as const
      yield* cache.cached(source.effect, options)
      yield* cache.flush
      yield* TestClock.adjust("11 seconds")
      source.state.failing = "error"
      const onlyTimeouts = (error: unknown) => String(error).includes("timeout")
      assert.deepStrictEqual(
        yield* Effect.either(cache.cached(source.effect, { ...options, failSafe: onlyTimeouts })),
        Either.left("source down (run 2)")
      )
      assert.deepStrictEqual(
        yield* Effect.either(cache.cached(source.effect, { ...options, failSafe: false })),
        Either.left("source down (run 3)")
      )
      // counted as failed refreshes, but a failure fail-safe does not cover does not rest the key: this call runs
      assert.strictEqual((yield* cache.stats).refreshFailures, 2)
      assert.strictEqual(yield* cache.cached(source.effect, options), "version 1")
      assert.strictEqual(source.runs, 4)
    }).pipe(quiet))

  it.scoped("softTimeout: a slow effect gets the stale value; it finishes in the background and is stored", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness({
        cache: { grace: "10 minutes", refresh: "foreground", softTimeout: "1 second" }
      })
      let runs = 0
      const slow = Effect.suspend(() => {
        runs++
        return runs === 1 ? Effect.succeed("version 1") : Effect.as(Effect.sleep("5 seconds"), `version ${runs}`)
      })
      const call = cache.cached(slow, { key: "k", ttl: "10 seconds" })
      yield* call
      yield* cache.flush
      yield* TestClock.adjust("11 seconds")
      const fiber = yield* Effect.fork(call)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Fiber.join(fiber), "version 1", "the stale value at the soft timeout")
      yield* TestClock.adjust("4 seconds")
      yield* cache.flush
      assert.strictEqual(yield* call, "version 2", "the slow effect's value, stored when it was done")
      assert.strictEqual(runs, 2)
      // an effect that answers within the soft timeout: its own value
      yield* TestClock.adjust("11 seconds")
      const quick = cache.cached(Effect.succeed("quick"), { key: "k", ttl: "10 seconds" })
      assert.strictEqual(yield* quick, "quick")
    }).pipe(quiet))
})

describe("grace: what a stale entry may not stand in for", () => {
  it.scoped("after an invalidation: a foreground refresh that then fails gives its error, not the invalidated value", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness({ cache: { grace: "1 minute", refresh: "foreground" } })
      const gate = yield* Deferred.make<void>()
      let runs = 0
      const effect = Effect.suspend(() => {
        runs++
        return runs === 1 ? Effect.succeed("version 1") : Effect.zipRight(Deferred.await(gate), Effect.fail("down"))
      })
      const options = { key: "k", ttl: "10 seconds" } as const
      yield* cache.cached(effect, options)
      yield* cache.flush
      yield* TestClock.adjust("11 seconds")
      const call = yield* Effect.fork(Effect.either(cache.cached(effect, options)))
      yield* waitUntil(Effect.sync(() => runs === 2))
      yield* cache.invalidateKey("k")
      yield* Deferred.succeed(gate, undefined)
      assert.deepStrictEqual(yield* Fiber.join(call), Either.left("down"))
      assert.strictEqual((yield* cache.stats).staleServed, 0)
    }).pipe(quiet))

  it.scoped("past its grace by the time the effect fails: the error, not a value older than the grace allows", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness({ cache: { grace: "1 minute", refresh: "foreground" } })
      let runs = 0
      const effect = Effect.suspend(() => {
        runs++
        return runs === 1
          ? Effect.succeed("version 1")
          : Effect.zipRight(Effect.sleep("5 seconds"), Effect.fail("down"))
      })
      const options = { key: "k", ttl: "10 seconds" } as const
      yield* cache.cached(effect, options)
      yield* cache.flush
      // 59 s past its TTL: stale, within grace; the effect then fails 5 s later, 4 s past the grace
      yield* TestClock.adjust("69 seconds")
      const call = yield* Effect.fork(Effect.either(cache.cached(effect, options)))
      yield* TestClock.adjust("5 seconds")
      assert.deepStrictEqual(yield* Fiber.join(call), Either.left("down"))
    }).pipe(quiet))

  it.scoped("softTimeout: an effect that fails after the soft timeout is counted, and the key rests", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness({
        cache: { grace: "10 minutes", refresh: "foreground", softTimeout: "1 second", graceBackoff: "1 minute" }
      })
      let runs = 0
      const effect = Effect.suspend(() => {
        runs++
        return runs === 1
          ? Effect.succeed("version 1")
          : Effect.zipRight(Effect.sleep("3 seconds"), Effect.fail("down"))
      })
      const options = { key: "k", ttl: "10 seconds" } as const
      yield* cache.cached(effect, options)
      yield* cache.flush
      yield* TestClock.adjust("11 seconds")
      const call = yield* Effect.fork(cache.cached(effect, options))
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Fiber.join(call), "version 1")
      yield* TestClock.adjust("2 seconds")
      yield* cache.flush
      assert.strictEqual((yield* cache.stats).refreshFailures, 1)
      assert.strictEqual(yield* cache.cached(effect, options), "version 1", "resting: no run")
      assert.strictEqual(runs, 2)
    }).pipe(quiet))
})

describe("refreshAhead", () => {
  it.scoped("a failed refresh-ahead rests the key for graceBackoff: hits are not each a refresh", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness({ cache: { graceBackoff: "5 seconds" } })
      const source = versions()
      const call = cache.cached(source.effect, { key: "k", ttl: "10 seconds", refreshAhead: 0.5 })
      yield* call
      yield* cache.flush
      yield* TestClock.adjust("6 seconds")
      source.state.failing = "error"
      for (let i = 0; i < 5; i++) {
        assert.strictEqual(yield* call, "version 1")
        yield* cache.flush
      }
      assert.strictEqual(source.runs, 2, "one refresh, then the key rests")
      yield* TestClock.adjust("3 seconds")
      source.state.failing = false
      assert.strictEqual(yield* call, "version 1")
      yield* cache.flush
      assert.strictEqual(source.runs, 2, "still resting")
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual(yield* call, "version 3", "past the TTL, no grace: the effect runs")
    }).pipe(quiet))

  it.scoped("a hit past that fraction of the TTL refreshes the entry in the background", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness({})
      const source = versions()
      const call = cache.cached(source.effect, { key: "k", ttl: "10 seconds", refreshAhead: 0.8 })
      yield* call
      yield* cache.flush
      yield* TestClock.adjust("7 seconds")
      assert.strictEqual(yield* call, "version 1")
      yield* cache.flush
      assert.strictEqual(source.runs, 1, "before 80 % of the TTL, a plain hit")
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* call, "version 1", "the hit is served")
      yield* cache.flush
      assert.strictEqual(source.runs, 2, "and refreshed")
      // the refreshed entry lives a whole TTL from its refresh: the key never went cold
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual(yield* call, "version 2")
      assert.strictEqual((yield* cache.stats).refreshes, 1)
      assert.strictEqual((yield* cache.stats).misses, 1)
    }).pipe(quiet))
})

describe("options", () => {
  it.scoped("grace per call: the writer's keeps the entry, each reader's decides whether it takes it stale", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness({})
      const source = versions()
      const lenient = { key: "k", ttl: "10 seconds", grace: "1 minute" } as const
      const strict = { key: "k", ttl: "10 seconds" } as const
      yield* cache.cached(source.effect, lenient)
      yield* cache.flush
      yield* TestClock.adjust("11 seconds")
      assert.strictEqual(yield* cache.cached(source.effect, lenient), "version 1", "a reader with grace: stale")
      yield* cache.flush
      assert.strictEqual(source.runs, 2, "refreshed in the background, with its writer's grace")
      yield* TestClock.adjust("11 seconds")
      assert.strictEqual(yield* cache.cached(source.effect, strict), "version 3", "a reader without: not served")
      yield* cache.flush
      yield* TestClock.adjust("11 seconds")
      // written without grace: gone at its TTL, even for a reader that would take it stale
      assert.strictEqual(yield* cache.cached(source.effect, lenient), "version 4")
    }).pipe(quiet))

  it.scoped("a bad option gets an error that says what to change; the call runs uncached", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness({})
      const bad = [
        { refresh: "sometimes" },
        { refreshAhead: 1.5 },
        { grace: "-1 minute" },
        { failSafe: "yes" }
      ]
      for (const options of bad) {
        assert.strictEqual(yield* cache.cached(Effect.succeed(1), { key: "k", ...options } as never), 1)
      }
      assert.strictEqual((yield* cache.stats).bypassed, 4)
      const stats = yield* cache.stats
      assert.strictEqual(stats.errors, 4)
      const layer = yield* Effect.either(makeHarness({ cache: { refresh: "sometimes" as never } }))
      assert.isTrue(Either.isLeft(layer))
      if (Either.isLeft(layer)) assert.include(layer.left.message, "refresh must be \"background\" or \"foreground\"")
    }).pipe(quiet))
})
