import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import * as Tracer from "effect/Tracer"
import { MetadataStoreError } from "../src/CacheError.js"
import * as CacheTracing from "../src/CacheTracing.js"
import { BlobStore, Cache, CacheMetrics, MetadataStore } from "../src/index.js"
import { makeHarness, uniqueName, waitUntil } from "./utils/harness.js"

interface Captured {
  readonly level: string
  readonly message: string
}

const capturing = <A, E, R>(effect: (logs: Array<Captured>) => Effect.Effect<A, E, R>) => {
  const logs: Array<Captured> = []
  const logger = Logger.make(({ logLevel, message }) => {
    logs.push({ level: logLevel.label, message: String(Array.isArray(message) ? message[0] : message) })
  })
  return effect(logs).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
}

/** A tracer that keeps every span it starts, for looking at their attributes. */
const recordingTracer = Effect.map(Effect.tracer, (native) => {
  const spans: Array<Tracer.Span> = []
  const tracer = Tracer.make({
    span: (...args) => {
      const span = native.span(...args)
      spans.push(span)
      return span
    },
    context: (f, fiber) => native.context(f, fiber)
  })
  return { tracer, spans }
})

describe("observability", () => {
  it.scoped("each caller's span says what it got: hit, miss, coalesced or bypass", () =>
    Effect.gen(function*() {
      const { spans, tracer } = yield* recordingTracer
      yield* Effect.gen(function*() {
        let failLookup = false
        const { cache } = yield* makeHarness({
          metadata: (store) => ({
            lookup: (ns, hash, options) =>
              failLookup
                ? Effect.fail(new MetadataStoreError({ reason: "Unavailable", method: "lookup", description: "down" }))
                : store.lookup(ns, hash, options)
          })
        })
        const gate = yield* Deferred.make<void>()
        const slow = Effect.as(Deferred.await(gate), "v")
        const callers = yield* Effect.forkAll(Array.from({ length: 3 }, () => cache.cached(slow, { key: "k" })))
        yield* waitUntil(Effect.map(cache.stats, (stats) => stats.coalesced === 2))
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(callers)
        yield* cache.flush
        yield* cache.cached(slow, { key: "k" })
        failLookup = true
        yield* cache.cached(slow, { key: "other" })
      }).pipe(Effect.withTracer(tracer))
      const results = spans.filter((span) => span.name === "Cache.cached").map((span) =>
        span.attributes.get("s3cache.result")
      )
      assert.deepStrictEqual(results.slice(0, 3).sort(), ["coalesced", "coalesced", "miss"])
      assert.deepStrictEqual(results.slice(3), ["hit", "bypass"])
    }))

  it.scoped("a stale answer's span says stale; the breaker's state is a gauge tagged with its store", () =>
    Effect.gen(function*() {
      const { spans, tracer } = yield* recordingTracer
      const name = uniqueName("stale")
      let down = false
      const { cache } = yield* makeHarness({
        cache: { name, grace: "1 minute", circuitBreakerFailures: 1 },
        metadata: (store) => ({
          lookup: (ns, hash, options) =>
            down
              ? Effect.fail(new MetadataStoreError({ reason: "Unavailable", method: "lookup", description: "down" }))
              : store.lookup(ns, hash, options),
          releaseLock: (ns, hash, token) =>
            down
              ? Effect.fail(new MetadataStoreError({ reason: "Unavailable", method: "releaseLock" }))
              : store.releaseLock(ns, hash, token)
        })
      })
      const call = cache.cached(Effect.succeed("v"), { key: "k", ttl: "1 second" }).pipe(Effect.withTracer(tracer))
      yield* call
      yield* cache.flush
      yield* TestClock.adjust("2 seconds")
      yield* call
      yield* cache.flush
      assert.deepStrictEqual(
        spans.filter((span) => span.name === "Cache.cached").map((span) => span.attributes.get("s3cache.result")),
        ["miss", "stale"]
      )
      const gauge = (store: string) =>
        Metric.value(CacheMetrics.breakerState.pipe(Metric.tagged("cache", name), Metric.tagged("store", store)))
      assert.strictEqual((yield* gauge("metadata")).value, 0)
      down = true
      yield* cache.cached(Effect.succeed("v"), { key: "other" })
      assert.strictEqual((yield* gauge("metadata")).value, 2, "open")
      assert.strictEqual((yield* gauge("blob")).value, 0)
    }).pipe(Logger.withMinimumLogLevel(LogLevel.None)))

  it.scoped("inner spans only with CacheTracing.InnerSpans; no Cache.cached span under Effect's built-in tracer", () =>
    Effect.gen(function*() {
      const { spans, tracer } = yield* recordingTracer
      const { cache } = yield* makeHarness()
      yield* cache.cached(Effect.succeed(1), { key: "k" }).pipe(Effect.withTracer(tracer))
      yield* cache.flush
      assert.deepStrictEqual(spans.map((span) => span.name), ["Cache.cached", "Cache.persist"])
      spans.length = 0
      yield* cache.cached(Effect.succeed(1), { key: "k" }).pipe(
        Effect.withTracer(tracer),
        Effect.provideService(CacheTracing.InnerSpans, true)
      )
      const names = spans.map((span) => span.name)
      assert.includeMembers(names, ["Cache.cached", "Serializer.unseal", "Serializer.restore", "BlobStore.get"])
      // the built-in tracer: the effect runs in its caller's span, not in one of the cache's
      const seen = yield* cache.cached(
        Effect.map(Effect.option(Effect.currentSpan), (span) => span._tag === "Some" ? span.value.name : "none"),
        { key: "fresh" }
      ).pipe(Effect.withSpan("caller"))
      assert.strictEqual(seen, "caller")
      // and the cache annotates no span but its own: the caller's is left alone
      const annotated = yield* cache.cached(Effect.succeed(2), { key: "another" }).pipe(
        Effect.zipRight(Effect.currentSpan),
        Effect.map((span) => span.attributes.get("s3cache.result")),
        Effect.withSpan("caller")
      )
      assert.isUndefined(annotated)
    }))

  it.scoped("one warning per kind of bad input: an invalid TTL does not hide an invalid namespace", () =>
    capturing((logs) =>
      Effect.gen(function*() {
        const { cache } = yield* makeHarness()
        yield* cache.cached(Effect.succeed(1), { key: "k", ttl: 0 })
        yield* cache.cached(Effect.succeed(1), { key: "k", ttl: -1 })
        yield* cache.cached(Effect.succeed(1), { key: "k", namespace: "a:b" })
        const warnings = logs.filter((log) => log.level === "WARN").map((log) => log.message)
        assert.strictEqual(warnings.length, 2, warnings.join("\n"))
        assert.include(warnings[0]!, "ttl")
        assert.include(warnings[1]!, "InvalidNamespace")
      })
    ))

  it.scoped("every fail-open event is logged as a warning that says what happened and what the cache did", () =>
    capturing((logs) =>
      Effect.gen(function*() {
        let failLookup = true
        const { blobs, cache, metadata } = yield* makeHarness({
          metadata: (store) => ({
            lookup: (ns, hash, options) =>
              failLookup
                ? Effect.fail(new MetadataStoreError({ reason: "Unavailable", method: "lookup", description: "down" }))
                : store.lookup(ns, hash, options)
          })
        })
        yield* cache.cached(Effect.succeed(1), { key: "k" })
        failLookup = false
        yield* cache.cached(Effect.succeed(1), { key: "k", namespace: "not:valid" })
        yield* cache.cached(Effect.succeed(() => 1), { key: "f", format: "v8" })
        yield* cache.cached(Effect.succeed(1), { key: "k" })
        yield* cache.flush
        const hash = yield* cache.hashKey("k")
        const record = Option.getOrThrow((yield* metadata.getMany("default", [hash]))[0]!)
        yield* blobs.delete([record.objectKey])
        yield* cache.cached(Effect.succeed(1), { key: "k" })
        yield* cache.flush

        const warnings = logs.filter((log) => log.level === "WARN").map((log) => log.message)
        assert.strictEqual(warnings.length, 4, warnings.join("\n"))
        assert.match(warnings[0]!, /lookup failed; the effect runs uncached: Unavailable: MetadataStore.lookup: down/)
        assert.match(warnings[1]!, /cached failed; the effect runs uncached: InvalidNamespace .*letters, digits/)
        assert.match(warnings[2]!, /persist failed; the value was returned but not stored: Encode \(v8\)/)
        assert.match(warnings[3]!, /read failed; the entry is dropped and the effect runs: .*does not exist/)
        assert.strictEqual((yield* cache.stats).errors, 4)
      })
    ))

  it.scoped("a store that keeps failing gives one warning per window; the rest are debug logs, all counted", () =>
    capturing((logs) =>
      Effect.gen(function*() {
        const { cache } = yield* makeHarness({
          metadata: () => ({
            lookup: () =>
              Effect.fail(new MetadataStoreError({ reason: "Unavailable", method: "lookup", description: "down" }))
          })
        })
        for (let i = 0; i < 50; i++) yield* cache.cached(Effect.succeed(i), { key: `k${i}` })
        yield* TestClock.adjust("5 seconds")
        yield* cache.cached(Effect.succeed(0), { key: "after" })
        const warnings = logs.filter((log) => log.level === "WARN").map((log) => log.message)
        assert.strictEqual(warnings.length, 2)
        assert.include(warnings[1]!, "(and 49 more lookup failures before it)")
        const debug = logs.filter((log) => log.level === "DEBUG").map((log) => log.message)
        // 49 suppressed failures, plus the cause of each of the 2 warnings (a warning is one line; its cause goes to
        // the debug level)
        assert.strictEqual(debug.length, 49 + 2, debug.slice(0, 3).join("\n"))
        assert.isTrue(debug.every((message) => message.startsWith("s3cache: lookup failed")))
        assert.strictEqual((yield* cache.stats).errors, 51)
      }).pipe(Logger.withMinimumLogLevel(LogLevel.Debug))
    ))

  it.scoped("the accessors reach the cache in the context, and its metrics carry its name", () =>
    Effect.gen(function*() {
      const name = uniqueName("accessors")
      const layer = Cache.layer({ name }).pipe(
        Layer.provide(Layer.merge(MetadataStore.layerMemory, BlobStore.layerMemory))
      )
      const program = Effect.gen(function*() {
        yield* Effect.succeed("v").pipe(Cache.cached({ key: "a", namespace: "n1" }))
        yield* Effect.succeed("v").pipe(Cache.cached({ key: "b", namespace: "n1" }))
        yield* Effect.succeed("v").pipe(Cache.cached({ key: "c", namespace: "n2" }))
        yield* Cache.flush
        const hash = yield* Cache.hashKey("a", "n1")
        const invalidated = yield* Cache.invalidate(hash, { namespace: "n1" })
        const byKey = yield* Cache.invalidateKey("b", { namespace: "n1" })
        yield* Effect.succeed("v").pipe(Cache.cached({ key: "a", namespace: "n1" }))
        yield* Cache.flush
        const namespace = yield* Cache.invalidateNamespace("n1")
        const cleared = yield* Cache.clear
        const cleanup = yield* Cache.cleanupOrphanedObjects({ olderThan: 0 })
        const stats = yield* Cache.stats
        return { invalidated, byKey, namespace, cleared, cleanup, stats }
      })
      const result = yield* program.pipe(Effect.provide(layer))
      assert.isTrue(result.invalidated)
      assert.isTrue(result.byKey)
      assert.strictEqual(result.namespace, 1)
      assert.strictEqual(result.cleared, 1)
      assert.strictEqual(result.cleanup.listed, 0)
      assert.strictEqual(result.stats.writes, 4)
      const misses = yield* Metric.value(Metric.tagged(CacheMetrics.misses, "cache", name))
      assert.strictEqual(misses.count, 4)
      assert.strictEqual(result.stats.misses, 4)
    }))

  it.scoped("hits, their latency and the in-process tier's hits carry the caller's metric labels (Effect.labelMetrics)", () =>
    Effect.gen(function*() {
      const name = uniqueName("labels")
      // two instances of one cache on the same stores: one without the in-process tier, one with it
      const stores = Layer.merge(
        Layer.succeed(MetadataStore.MetadataStore, yield* MetadataStore.makeMemory),
        Layer.succeed(BlobStore.BlobStore, yield* BlobStore.makeMemory)
      )
      const plain = Cache.layer({ name }).pipe(Layer.provide(stores))
      const tiered = Cache.layer({ name, l1MaxEntries: 100 }).pipe(Layer.provide(stores))
      const labelled = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
        Effect.labelMetrics(effect, [MetricLabel.make("route", "/reports")])
      const call = Effect.succeed("v").pipe(Cache.cached({ key: "k" }))
      yield* Effect.zipRight(call, Cache.flush).pipe(Effect.provide(plain))
      // a hit from the shared tier
      yield* labelled(call).pipe(Effect.provide(plain))
      // from the shared tier (kept in the tier), then from the tier
      yield* labelled(Effect.zipRight(call, call)).pipe(Effect.provide(tiered))
      const tagged = <Type, In, Out>(metric: Metric.Metric<Type, In, Out>) =>
        metric.pipe(Metric.tagged("cache", name), Metric.tagged("route", "/reports"))
      assert.strictEqual((yield* Metric.value(tagged(CacheMetrics.hits))).count, 3)
      assert.strictEqual((yield* Metric.value(tagged(CacheMetrics.hitLatency))).count, 2)
      assert.strictEqual((yield* Metric.value(tagged(CacheMetrics.l1Hits))).count, 1)
      const unlabelled = yield* Metric.value(Metric.tagged(CacheMetrics.hits, "cache", name))
      assert.strictEqual(unlabelled.count, 0, "every hit was counted under the caller's labels")
    }))
})
