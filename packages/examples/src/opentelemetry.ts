/**
 * Recipe: export the cache's `s3cache_*` metrics and its spans with OpenTelemetry.
 *
 * Run it with `pnpm --filter @s3cache/examples exec tsx src/opentelemetry.ts`: a miss, then a hit, through the
 * embedded cache; the spans and the metrics are printed by the console exporters when the program ends.
 *
 * `@effect/opentelemetry` must be the Effect 3 line: `@effect/opentelemetry@^0.64` with `@opentelemetry/api@~1.9`
 * (a bare `npm install @effect/opentelemetry` installs 4.x, which needs Effect 4).
 *
 * @since 0.1.0
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import type * as Resource from "@effect/opentelemetry/Resource"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { ConsoleMetricExporter, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import type { PushMetricExporter } from "@opentelemetry/sdk-metrics"
import { BatchSpanProcessor, ConsoleSpanExporter } from "@opentelemetry/sdk-trace-base"
import type { SpanExporter } from "@opentelemetry/sdk-trace-base"
import { Cache } from "@s3cache/core"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import { fileURLToPath } from "node:url"

/**
 * @since 0.1.0
 * @category models
 */
export interface TelemetryOptions {
  /** where finished spans go: `ConsoleSpanExporter` here, `OTLPTraceExporter` in production, in memory in tests */
  readonly spanExporter: SpanExporter
  /** where metrics go: `ConsoleMetricExporter` here, `OTLPMetricExporter` in production, in memory in tests */
  readonly metricExporter: PushMetricExporter
  /** the `service.name` resource attribute (it wins over `OTEL_SERVICE_NAME`); default `"s3cache-example"` */
  readonly serviceName?: string | undefined
  readonly serviceVersion?: string | undefined
  /** how often metrics are pushed; default 10 seconds. Closing the layer pushes them once more. */
  readonly metricInterval?: Duration.DurationInput | undefined
}

/**
 * The OpenTelemetry SDK as a layer: a tracer (so the cache makes its spans, batched to `spanExporter`) and a metric
 * reader that pushes every Effect `Metric`, the `s3cache_*` ones included, to `metricExporter`. Closing the layer
 * flushes both, so a short program loses neither its last spans nor its last metrics.
 *
 * Swapping in an OTLP collector: `npm install @opentelemetry/exporter-trace-otlp-http@~0.223
 * @opentelemetry/exporter-metrics-otlp-http@~0.223` (the release line of the 2.x SDK; their latest, 0.30x, is built on
 * SDK 3 and needs `@opentelemetry/api` 1.10). Without a `url`, they read `OTEL_EXPORTER_OTLP_ENDPOINT` (default
 * `http://localhost:4318`).
 *
 * ```ts
 * import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http"
 * import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
 *
 * const otlp = telemetryLayer({
 *   serviceName: "reports-api",
 *   spanExporter: new OTLPTraceExporter({ url: "http://otel-collector:4318/v1/traces" }),
 *   metricExporter: new OTLPMetricExporter({ url: "http://otel-collector:4318/v1/metrics" })
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const telemetryLayer = (options: TelemetryOptions): Layer.Layer<Resource.Resource> => {
  const intervalMillis = Duration.toMillis(options.metricInterval ?? "10 seconds")
  return NodeSdk.layer(() => ({
    resource: {
      serviceName: options.serviceName ?? "s3cache-example",
      ...(options.serviceVersion === undefined ? {} : { serviceVersion: options.serviceVersion })
    },
    spanProcessor: new BatchSpanProcessor(options.spanExporter),
    metricReader: new PeriodicExportingMetricReader({
      exporter: options.metricExporter,
      exportIntervalMillis: intervalMillis,
      // the reader refuses a timeout longer than the interval
      exportTimeoutMillis: Math.min(30_000, intervalMillis)
    })
  }))
}

/**
 * The cache with OpenTelemetry under it: the SDK is built first and closed last, so the spans of the background
 * writes that closing the cache waits for (`Cache.persist`) still reach the exporter.
 *
 * @since 0.1.0
 * @category layers
 */
export const cacheWithTelemetry = (
  options: TelemetryOptions & { readonly cache?: Cache.EmbeddedOptions | undefined }
) =>
  Cache.layerEmbedded({ name: "otel-example", ...options.cache }).pipe(
    Layer.provideMerge(telemetryLayer(options))
  )

/** Stands in for a query: 50 ms of "database time". */
const revenue = (year: number) =>
  Effect.sleep("50 millis").pipe(
    Effect.as({ year, total: 1_234_567 }),
    Cache.cached({ key: ["revenue", year], namespace: "reports", ttl: "10 minutes" })
  )

/**
 * A miss, then a hit, in a span of the caller's own (`example.reports`): the cache's spans are its children.
 *
 * @since 0.1.0
 */
export const program = Effect.gen(function*() {
  const miss = yield* Effect.timed(revenue(2026))
  // the miss returned before its value was stored (a background write): wait for it, or the next call misses too
  yield* Cache.flush
  const hit = yield* Effect.timed(revenue(2026))
  return { missMs: Duration.toMillis(miss[0]), hitMs: Duration.toMillis(hit[0]), stats: yield* Cache.stats }
}).pipe(Effect.withSpan("example.reports"))

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]

if (isMain) {
  program.pipe(
    Effect.tap(({ hitMs, missMs, stats }) =>
      Console.log(
        `miss ${missMs.toFixed(1)} ms, hit ${hitMs.toFixed(1)} ms; stats: ${stats.hits} hit, ${stats.misses} miss, ` +
          `${stats.writes} write. Spans and metrics follow, printed when the layer closes:\n`
      )
    ),
    Effect.provide(
      cacheWithTelemetry({ spanExporter: new ConsoleSpanExporter(), metricExporter: new ConsoleMetricExporter() })
    ),
    Logger.withMinimumLogLevel(LogLevel.Warning),
    NodeRuntime.runMain
  )
}
