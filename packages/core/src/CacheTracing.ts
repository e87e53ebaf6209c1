/**
 * Spans. Every cached call runs in one span, `Cache.cached`, whose `s3cache.result` attribute says what the call got
 * (`hit`, `miss`, `coalesced`, `bypass`); background writes run in `Cache.persist`. The spans of the steps inside
 * (`MetadataStore.lookup`, `BlobStore.get`, `Serializer.*`, …) cost more than a small hit itself, so they are off by
 * default: turn them on with `layerInnerSpans` (or `Effect.provideService(CacheTracing.InnerSpans, true)`) where a
 * trace should show each store call.
 *
 * @since 0.2.0
 */
import "./internal/effectVersion.js"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Tracer from "effect/Tracer"

/**
 * Whether the steps of a cached call (store calls, serialization) get spans of their own. Default: false.
 *
 * @since 0.2.0
 * @category tags
 */
export class InnerSpans extends Context.Reference<InnerSpans>()("@s3cache/core/CacheTracing/InnerSpans", {
  defaultValue: () => false
}) {}

/**
 * Turns on the spans of the steps inside each cached call.
 *
 * @example
 * ```ts
 * import { Cache, CacheTracing } from "@s3cache/core"
 * import * as Layer from "effect/Layer"
 *
 * const traced = Layer.merge(Cache.layerEmbedded(), CacheTracing.layerInnerSpans)
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerInnerSpans: Layer.Layer<never> = Layer.succeedContext(Context.make(InnerSpans, true))

/**
 * `Effect.withSpan`, only where `InnerSpans` is on: for stores and codecs, whose spans are the inner ones. The span
 * captures no stack trace. `options` may be a function, called only where the span is made: attributes then cost
 * nothing while inner spans are off.
 *
 * @since 0.2.0
 * @category combinators
 */
export const withInnerSpan =
  (name: string, options?: Tracer.SpanOptions | (() => Tracer.SpanOptions)) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.flatMap(
      InnerSpans,
      (on) =>
        on
          ? Effect.withSpan(self, name, {
            captureStackTrace: false,
            ...(typeof options === "function" ? options() : options)
          })
          : self
    )

/**
 * `Effect.annotateCurrentSpan`, only where `InnerSpans` is on: for the attributes a store or codec learns while its
 * inner span runs. Where inner spans are off there is no such span, and annotating would reach the caller's span, or
 * (with none) build an exception on every call to report that there is none.
 *
 * @since 0.2.0
 * @category combinators
 */
export const annotateInnerSpan = (attributes: Record<string, unknown>): Effect.Effect<void> =>
  Effect.flatMap(InnerSpans, (on) => on ? Effect.annotateCurrentSpan(attributes) : Effect.void)
