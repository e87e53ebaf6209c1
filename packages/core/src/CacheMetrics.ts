/**
 * The `s3cache_*` metrics. Core updates them; `Cache.stats` reads them; an OpenTelemetry exporter sees them like
 * any Effect `Metric`. Each cache tags its metrics with `cache: <name>`, so two caches of different names keep
 * separate numbers (two caches of the same name share them).
 *
 * @since 0.1.0
 */
import "./internal/effectVersion.js"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import { MetricBoundaries } from "./internal/effect3.js"

/**
 * Calls answered from a stored entry.
 *
 * @since 0.1.0
 * @category metrics
 */
export const hits = Metric.counter("s3cache_hits_total", {
  incremental: true,
  description: "calls answered from the cache"
})

/**
 * Hits answered by the in-process tier (also counted in `hits`).
 *
 * @since 0.2.0
 * @category metrics
 */
export const l1Hits = Metric.counter("s3cache_l1_hits_total", {
  incremental: true,
  description: "calls answered from the in-process tier"
})

/**
 * Calls that ran the effect because no entry was usable (including after a bad entry was dropped).
 *
 * @since 0.1.0
 * @category metrics
 */
export const misses = Metric.counter("s3cache_misses_total", {
  incremental: true,
  description: "calls that ran the effect"
})

/**
 * Calls that joined a computation already in flight in this process instead of starting one. Each gets a value of
 * its own, restored from the computation's snapshot, so no caller's mutation reaches another.
 *
 * @since 0.1.0
 * @category metrics
 */
export const coalesced = Metric.counter("s3cache_coalesced_total", {
  incremental: true,
  description: "calls that shared an in-flight computation"
})

/**
 * Cache failures of any kind (store errors and timeouts, corrupt or undecodable entries, failed writes, bad input).
 * Each is also logged as a warning with its cause.
 *
 * @since 0.1.0
 * @category metrics
 */
export const errors = Metric.counter("s3cache_errors_total", {
  incremental: true,
  description: "cache failures (all kinds)"
})

/**
 * Calls that ran the effect uncached because the cache itself failed (fail-open).
 *
 * @since 0.1.0
 * @category metrics
 */
export const bypassed = Metric.counter("s3cache_bypassed_total", {
  incremental: true,
  description: "calls served uncached because the cache failed"
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const writes = Metric.counter("s3cache_writes_total", { incremental: true, description: "entries persisted" })

/**
 * @since 0.1.0
 * @category metrics
 */
export const writeFailures = Metric.counter("s3cache_write_failures_total", {
  incremental: true,
  description: "background writes that failed"
})

/**
 * Values not stored because `maxPendingWrites` writes were already waiting.
 *
 * @since 0.1.0
 * @category metrics
 */
export const writesDropped = Metric.counter("s3cache_writes_dropped_total", {
  incremental: true,
  description: "values not stored because the write queue was full"
})

/**
 * Background writes still pending when closing the cache ran out of `shutdownTimeout`: interrupted, their values not
 * stored (their uploaded objects, if any, are orphans for `cleanupOrphanedObjects`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const writesAbandoned = Metric.counter("s3cache_writes_abandoned_total", {
  incremental: true,
  description: "background writes interrupted at shutdown"
})

/**
 * Background writes whose stampede lock was gone at commit time (an invalidation removed it, or it lapsed and another
 * process took it): nothing is written, so a value computed before an invalidation is never stored.
 *
 * @since 0.1.0
 * @category metrics
 */
export const writesSuperseded = Metric.counter("s3cache_writes_superseded_total", {
  incremental: true,
  description: "background writes refused because their lock was gone"
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const evictions = Metric.counter("s3cache_evictions_total", {
  incremental: true,
  description: "entries evicted by LRU"
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const bytesWritten = Metric.counter("s3cache_bytes_written_total", {
  incremental: true,
  description: "stored bytes uploaded"
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const bytesRead = Metric.counter("s3cache_bytes_read_total", {
  incremental: true,
  description: "stored bytes downloaded"
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const pendingWrites = Metric.gauge("s3cache_pending_writes", { description: "background writes not done" })

/**
 * Calls answered with a stale entry (past its TTL, within its `grace`): at once while it refreshes, or in place of an
 * effect that failed (`failSafe`) or was slow (`softTimeout`). Also counted in `hits`.
 *
 * @since 0.3.0
 * @category metrics
 */
export const staleServed = Metric.counter("s3cache_stale_served_total", {
  incremental: true,
  description: "calls answered with a stale entry"
})

/**
 * Runs of the effect that refresh an entry that is stale or past `refreshAhead`, in the background or in the
 * foreground.
 *
 * @since 0.3.0
 * @category metrics
 */
export const refreshes = Metric.counter("s3cache_refreshes_total", {
  incremental: true,
  description: "refreshes of stale entries"
})

/**
 * Refreshes whose effect failed. The entry is kept; when `failSafe` covers the failure, the key is not refreshed again
 * for `graceBackoff`.
 *
 * @since 0.3.0
 * @category metrics
 */
export const refreshFailures = Metric.counter("s3cache_refresh_failures_total", {
  incremental: true,
  description: "refreshes whose effect failed"
})

/**
 * Each store's circuit breaker, tagged `store: metadata | blob`: 0 closed (calls go to the store), 1 half-open (one
 * call probes it), 2 open (calls skip it).
 *
 * @since 0.3.0
 * @category metrics
 */
export const breakerState = Metric.gauge("s3cache_breaker_state", {
  description: "circuit breaker per store: 0 closed, 1 half-open, 2 open"
})

const latencyBoundaries = MetricBoundaries.exponential({ start: 0.5, factor: 2, count: 20 })

/**
 * Latency of calls answered from the cache, milliseconds.
 *
 * @since 0.1.0
 * @category metrics
 */
export const hitLatency = Metric.histogram("s3cache_hit_latency_ms", latencyBoundaries, "latency of cache hits, ms")

/**
 * Latency of calls that ran the effect (the effect included), milliseconds.
 *
 * @since 0.1.0
 * @category metrics
 */
export const missLatency = Metric.histogram("s3cache_miss_latency_ms", latencyBoundaries, "latency of misses, ms")

/**
 * The metrics of one cache, tagged with its name.
 *
 * @since 0.1.0
 * @category models
 */
export interface Instruments {
  readonly hits: typeof hits
  readonly l1Hits: typeof l1Hits
  readonly misses: typeof misses
  readonly coalesced: typeof coalesced
  readonly errors: typeof errors
  readonly bypassed: typeof bypassed
  readonly writes: typeof writes
  readonly writeFailures: typeof writeFailures
  readonly writesDropped: typeof writesDropped
  readonly writesAbandoned: typeof writesAbandoned
  readonly writesSuperseded: typeof writesSuperseded
  readonly evictions: typeof evictions
  readonly bytesWritten: typeof bytesWritten
  readonly bytesRead: typeof bytesRead
  readonly pendingWrites: typeof pendingWrites
  readonly hitLatency: typeof hitLatency
  readonly missLatency: typeof missLatency
  readonly staleServed: typeof staleServed
  readonly refreshes: typeof refreshes
  readonly refreshFailures: typeof refreshFailures
  readonly metadataBreaker: typeof breakerState
  readonly blobBreaker: typeof breakerState
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const instruments = (cacheName: string): Instruments => {
  const tag = <M extends Metric.Metric<any, any, any>>(metric: M): M => Metric.tagged(metric, "cache", cacheName) as M
  return {
    hits: tag(hits),
    l1Hits: tag(l1Hits),
    misses: tag(misses),
    coalesced: tag(coalesced),
    errors: tag(errors),
    bypassed: tag(bypassed),
    writes: tag(writes),
    writeFailures: tag(writeFailures),
    writesDropped: tag(writesDropped),
    writesAbandoned: tag(writesAbandoned),
    writesSuperseded: tag(writesSuperseded),
    evictions: tag(evictions),
    bytesWritten: tag(bytesWritten),
    bytesRead: tag(bytesRead),
    pendingWrites: tag(pendingWrites),
    hitLatency: tag(hitLatency),
    missLatency: tag(missLatency),
    staleServed: tag(staleServed),
    refreshes: tag(refreshes),
    refreshFailures: tag(refreshFailures),
    metadataBreaker: Metric.tagged(tag(breakerState), "store", "metadata"),
    blobBreaker: Metric.tagged(tag(breakerState), "store", "blob")
  }
}

/**
 * The seed's statistics (`hits`, `misses`, `errors`, `hitRate`, `avgHitLatencyMs`, `avgMissLatencyMs`) and more.
 * `hitRate` is `hits / (hits + misses)`; calls that joined an in-flight computation are counted in `coalesced` only.
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  readonly hits: number
  /** hits answered by the in-process tier (also in `hits`) */
  readonly l1Hits: number
  readonly misses: number
  readonly coalesced: number
  readonly errors: number
  readonly bypassed: number
  readonly hitRate: number
  readonly avgHitLatencyMs: number
  readonly avgMissLatencyMs: number
  readonly writes: number
  readonly writeFailures: number
  readonly writesDropped: number
  readonly writesAbandoned: number
  readonly writesSuperseded: number
  readonly evictions: number
  readonly bytesWritten: number
  readonly bytesRead: number
  readonly pendingWrites: number
  /** calls answered with a stale entry (also in `hits`) */
  readonly staleServed: number
  readonly refreshes: number
  readonly refreshFailures: number
  /** the metadata store's circuit breaker */
  readonly metadataBreaker: BreakerState
  /** the blob store's circuit breaker */
  readonly blobBreaker: BreakerState
}

/**
 * A circuit breaker's state: `closed` (calls go to the store), `half-open` (one call probes it), `open` (calls skip it).
 *
 * @since 0.3.0
 * @category models
 */
export type BreakerState = "closed" | "half-open" | "open"

const breakerStates: ReadonlyArray<BreakerState> = ["closed", "half-open", "open"]

/**
 * @since 0.1.0
 * @category accessors
 */
export const stats = (metrics: Instruments): Effect.Effect<Stats> =>
  Effect.all({
    hits: Metric.value(metrics.hits),
    l1Hits: Metric.value(metrics.l1Hits),
    misses: Metric.value(metrics.misses),
    coalesced: Metric.value(metrics.coalesced),
    errors: Metric.value(metrics.errors),
    bypassed: Metric.value(metrics.bypassed),
    writes: Metric.value(metrics.writes),
    writeFailures: Metric.value(metrics.writeFailures),
    writesDropped: Metric.value(metrics.writesDropped),
    writesAbandoned: Metric.value(metrics.writesAbandoned),
    writesSuperseded: Metric.value(metrics.writesSuperseded),
    evictions: Metric.value(metrics.evictions),
    bytesWritten: Metric.value(metrics.bytesWritten),
    bytesRead: Metric.value(metrics.bytesRead),
    pendingWrites: Metric.value(metrics.pendingWrites),
    hitLatency: Metric.value(metrics.hitLatency),
    missLatency: Metric.value(metrics.missLatency),
    staleServed: Metric.value(metrics.staleServed),
    refreshes: Metric.value(metrics.refreshes),
    refreshFailures: Metric.value(metrics.refreshFailures),
    metadataBreaker: Metric.value(metrics.metadataBreaker),
    blobBreaker: Metric.value(metrics.blobBreaker)
  }).pipe(Effect.map((s) => {
    const hitCount = s.hits.count
    const missCount = s.misses.count
    const lookups = hitCount + missCount
    return {
      hits: hitCount,
      l1Hits: s.l1Hits.count,
      misses: missCount,
      coalesced: s.coalesced.count,
      errors: s.errors.count,
      bypassed: s.bypassed.count,
      hitRate: lookups === 0 ? 0 : hitCount / lookups,
      avgHitLatencyMs: s.hitLatency.count === 0 ? 0 : s.hitLatency.sum / s.hitLatency.count,
      avgMissLatencyMs: s.missLatency.count === 0 ? 0 : s.missLatency.sum / s.missLatency.count,
      writes: s.writes.count,
      writeFailures: s.writeFailures.count,
      writesDropped: s.writesDropped.count,
      writesAbandoned: s.writesAbandoned.count,
      writesSuperseded: s.writesSuperseded.count,
      evictions: s.evictions.count,
      bytesWritten: s.bytesWritten.count,
      bytesRead: s.bytesRead.count,
      pendingWrites: s.pendingWrites.value,
      staleServed: s.staleServed.count,
      refreshes: s.refreshes.count,
      refreshFailures: s.refreshFailures.count,
      metadataBreaker: breakerStates[s.metadataBreaker.value] ?? "closed",
      blobBreaker: breakerStates[s.blobBreaker.value] ?? "closed"
    }
  }))
