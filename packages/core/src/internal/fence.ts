/**
 * How cache steps fail safely: a deadline on every store call, and a fence that turns any failure or defect of a
 * cache step into a counted, logged fallback.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as CacheConfig from "../CacheConfig.js"
import { BlobStoreError, MetadataStoreError } from "../CacheError.js"
import type * as CacheMetrics from "../CacheMetrics.js"

/** @internal */
export interface Fence {
  readonly withMetadataDeadline: <A>(
    method: string,
    effect: Effect.Effect<A, MetadataStoreError>
  ) => Effect.Effect<A, MetadataStoreError>
  readonly withBlobDeadline: <A>(
    method: string,
    key: string | undefined,
    effect: Effect.Effect<A, BlobStoreError>
  ) => Effect.Effect<A, BlobStoreError>
  /** count and log a cache failure; `consequence` says what the cache does about it */
  readonly report: (operation: string, consequence: string, cause: Cause.Cause<unknown>) => Effect.Effect<void>
  /** run `effect`; on any failure or defect (not an interruption), report it and return `fallback()` */
  readonly fenced: <A, B, R>(
    operation: string,
    consequence: string,
    effect: Effect.Effect<A, unknown, R>,
    fallback: () => B
  ) => Effect.Effect<A | B, never, R>
}

/** @internal */
export const make = (config: CacheConfig.Resolved, metrics: CacheMetrics.Instruments): Fence => {
  // Deadlines are enforced here, whatever the store does: `disconnect` lets a store call that ignores interruption
  // finish in the background instead of holding the caller past its deadline.
  const withDeadline = <A, E>(
    effect: Effect.Effect<A, E>,
    duration: Duration.Duration,
    option: string,
    onTimeout: (description: string) => E
  ) =>
    effect.pipe(
      Effect.disconnect,
      Effect.timeoutFail({
        duration,
        onTimeout: () => onTimeout(`no answer within ${Duration.format(duration)} (${option})`)
      })
    )

  const report: Fence["report"] = (operation, consequence, cause) =>
    Metric.increment(metrics.errors).pipe(
      Effect.zipRight(
        Effect.logWarning(`s3cache: ${operation} failed; ${consequence}: ${describe(cause)}`, cause).pipe(
          Effect.annotateLogs({ "s3cache.operation": operation, "s3cache.cache": config.name })
        )
      )
    )

  return {
    withMetadataDeadline: (method, effect) =>
      withDeadline(
        effect,
        config.metadataTimeout,
        "metadataTimeout",
        (description) => new MetadataStoreError({ reason: "Timeout", method, description })
      ),
    withBlobDeadline: (method, key, effect) =>
      withDeadline(
        effect,
        config.blobTimeout,
        "blobTimeout",
        (description) => new BlobStoreError({ reason: "Timeout", method, key, description })
      ),
    report,
    fenced: (operation, consequence, effect, fallback) =>
      Effect.catchAllCause(effect, (cause) =>
        Cause.isInterruptedOnly(cause)
          ? Effect.failCause(cause as Cause.Cause<never>)
          : Effect.as(report(operation, consequence, cause), fallback()))
  }
}

const describe = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    return error instanceof Error ? error.message : String(error)
  }
  return Cause.pretty(cause).split("\n")[0] ?? "unknown defect"
}
