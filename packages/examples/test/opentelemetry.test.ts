import { assert, describe, it } from "@effect/vitest"
import { AggregationTemporality, DataPointType, InMemoryMetricExporter } from "@opentelemetry/sdk-metrics"
import type { DataPoint, Histogram, MetricData } from "@opentelemetry/sdk-metrics"
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base"
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { CacheTracing } from "@s3cache/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { cacheWithTelemetry, program } from "../src/opentelemetry.js"

/**
 * `InMemorySpanExporter` forgets its spans when it is shut down, which is what closing the SDK does after the last
 * flush: this one keeps them, so the test reads what the layer exported on its way out.
 */
class KeptSpanExporter extends InMemorySpanExporter {
  override shutdown(): Promise<void> {
    return this.forceFlush()
  }
}

/** Runs the example's program on the example's layer, with in-memory exporters; returns what they received. */
const runExample = (cacheName: string, extra: Layer.Layer<never> = Layer.empty) =>
  Effect.gen(function*() {
    const spanExporter = new KeptSpanExporter()
    const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
    const result = yield* program.pipe(
      Effect.provide(Layer.merge(
        cacheWithTelemetry({
          spanExporter,
          metricExporter,
          serviceName: "otel-test",
          // no periodic push during the test: whatever arrives was pushed when the layer closed
          metricInterval: "1 hour",
          cache: { name: cacheName }
        }),
        extra
      ))
    )
    // Effect.provide has closed the layer: the cache drained its writes, then the SDK flushed and shut down
    return { result, spans: spanExporter.getFinishedSpans(), exports: metricExporter.getMetrics() }
  })

const named = (spans: ReadonlyArray<ReadableSpan>, name: string) => spans.filter((span) => span.name === name)

const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId

/** The data point of `name` tagged with this cache's name, from the last export (the numbers are cumulative). */
const point = (
  exports: ReturnType<InMemoryMetricExporter["getMetrics"]>,
  name: string,
  cacheName: string
): { readonly metric: MetricData; readonly point: DataPoint<unknown> } => {
  const last = exports.at(-1)
  assert.isDefined(last, "no metrics were exported")
  const metric = last.scopeMetrics.flatMap((scope) => scope.metrics).find((m) => m.descriptor.name === name)
  assert.isDefined(metric, `${name} was not exported`)
  const found = (metric.dataPoints as ReadonlyArray<DataPoint<unknown>>).filter((p) => p.attributes.cache === cacheName)
  assert.strictEqual(found.length, 1, `${name}: one data point tagged cache=${cacheName}`)
  return { metric, point: found[0]! }
}

const counter = (exports: ReturnType<InMemoryMetricExporter["getMetrics"]>, name: string, cacheName: string) => {
  const { metric, point: p } = point(exports, name, cacheName)
  assert.strictEqual(metric.dataPointType, DataPointType.SUM, `${name} is a sum`)
  // a monotonic sum is a counter to a backend (Prometheus `_total`); a non-monotonic one would read as a gauge
  assert.isTrue(metric.dataPointType === DataPointType.SUM && metric.isMonotonic, `${name} is monotonic`)
  return p.value as number
}

const histogram = (exports: ReturnType<InMemoryMetricExporter["getMetrics"]>, name: string, cacheName: string) => {
  const { metric, point: p } = point(exports, name, cacheName)
  assert.strictEqual(metric.dataPointType, DataPointType.HISTOGRAM, `${name} is a histogram`)
  return p.value as Histogram
}

describe("OpenTelemetry recipe", () => {
  it.live("exports the cache's spans: Cache.cached (miss, then hit) and Cache.persist, in the caller's trace", () =>
    Effect.gen(function*() {
      const { result, spans } = yield* runExample("otel-spans")
      assert.strictEqual(result.stats.misses, 1)
      assert.strictEqual(result.stats.hits, 1)

      const [root, ...otherRoots] = named(spans, "example.reports")
      assert.isDefined(root)
      assert.strictEqual(otherRoots.length, 0)
      assert.strictEqual(root.resource.attributes["service.name"], "otel-test")
      const inTrace = spans.filter((span) => span.spanContext().traceId === root.spanContext().traceId)
      assert.deepStrictEqual(
        inTrace.map((span) => span.name).sort(),
        ["Cache.cached", "Cache.cached", "Cache.persist", "example.reports"]
      )

      // in the order they started: the miss, then the hit; both children of the caller's span
      const cached = named(spans, "Cache.cached").sort((a, b) =>
        a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]
      )
      assert.deepStrictEqual(cached.map((span) => span.attributes["s3cache.result"]), ["miss", "hit"])
      for (const span of cached) {
        assert.strictEqual(parentOf(span), root.spanContext().spanId)
        assert.strictEqual(span.attributes["s3cache.namespace"], "reports")
      }
      const [miss, hit] = cached as [ReadableSpan, ReadableSpan]
      assert.match(String(miss.attributes["s3cache.hash"]), /^[0-9a-f]{64}$/)
      assert.strictEqual(hit.attributes["s3cache.hash"], miss.attributes["s3cache.hash"])

      // the background write of the miss's value: a child of the miss, ended before the SDK flushed
      const [persist, ...otherPersists] = named(spans, "Cache.persist")
      assert.isDefined(persist)
      assert.strictEqual(otherPersists.length, 0)
      assert.strictEqual(parentOf(persist), miss.spanContext().spanId)
      assert.strictEqual(persist.attributes["s3cache.hash"], miss.attributes["s3cache.hash"])
    }))

  it.live("exports the s3cache_* metrics, tagged with the cache's name, once more when the layer closes", () =>
    Effect.gen(function*() {
      const { exports } = yield* runExample("otel-metrics")
      // the interval is an hour: the one export is the one the SDK made while shutting down
      assert.strictEqual(exports.length, 1)
      assert.strictEqual(exports[0]!.resource.attributes["service.name"], "otel-test")

      assert.strictEqual(counter(exports, "s3cache_misses_total", "otel-metrics"), 1)
      assert.strictEqual(counter(exports, "s3cache_hits_total", "otel-metrics"), 1)
      assert.strictEqual(counter(exports, "s3cache_writes_total", "otel-metrics"), 1)
      assert.strictEqual(counter(exports, "s3cache_l1_hits_total", "otel-metrics"), 0)
      assert.strictEqual(counter(exports, "s3cache_errors_total", "otel-metrics"), 0)
      assert.strictEqual(counter(exports, "s3cache_bypassed_total", "otel-metrics"), 0)
      assert.isAbove(counter(exports, "s3cache_bytes_written_total", "otel-metrics"), 0)

      const missLatency = histogram(exports, "s3cache_miss_latency_ms", "otel-metrics")
      assert.strictEqual(missLatency.count, 1)
      // the miss ran the effect, which sleeps 50 ms (a timer may fire a little early)
      assert.isAtLeast(missLatency.sum!, 45)
      const hitLatency = histogram(exports, "s3cache_hit_latency_ms", "otel-metrics")
      assert.strictEqual(hitLatency.count, 1)
      assert.isBelow(hitLatency.sum!, missLatency.sum!)
    }))

  it.live("with CacheTracing.layerInnerSpans, the steps inside a call get spans of their own", () =>
    Effect.gen(function*() {
      const plain = yield* runExample("otel-plain")
      const inner = yield* runExample("otel-inner", CacheTracing.layerInnerSpans)
      assert.deepStrictEqual(plain.spans.filter((span) => span.name.startsWith("Serializer.")), [])

      // the value is small enough to be stored inline in its record (no BlobStore.put), and the embedded metadata
      // store makes no spans: what is left are the serializer's steps
      const [persist] = named(inner.spans, "Cache.persist")
      assert.isDefined(persist)
      const [seal] = named(inner.spans, "Serializer.seal")
      assert.isDefined(seal)
      assert.strictEqual(parentOf(seal), persist.spanContext().spanId)
      assert.strictEqual(seal.attributes["s3cache.format"], "v8")
      const hit = named(inner.spans, "Cache.cached").find((span) => span.attributes["s3cache.result"] === "hit")
      assert.isDefined(hit)
      const [unseal] = named(inner.spans, "Serializer.unseal")
      assert.isDefined(unseal)
      assert.strictEqual(parentOf(unseal), hit.spanContext().spanId)
    }))
})
