/**
 * Spans only where someone receives them.
 *
 * Effect's built-in tracer exports nothing: a span made under it cost a cached call ~5 µs for nobody (and a stack
 * trace, when captured, more). The cache's own spans are made only under another tracer, and never capture a stack.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Tracer from "effect/Tracer"
import { DefaultServices } from "./effect3.js"

const nativeTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

/**
 * Whether the fiber's tracer exports spans (it is not Effect's built-in one), read from the fiber at hand.
 *
 * @internal
 */
export const isTraced = (fiber: Fiber.RuntimeFiber<unknown, unknown>): boolean =>
  Context.get(fiber.currentDefaultServices, Tracer.Tracer) !== nativeTracer

/**
 * `traced(true)` under a tracer that exports spans, `traced(false)` under Effect's built-in one.
 *
 * @internal
 */
export const whenTraced = <A, E, R>(traced: (on: boolean) => Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.tracerWith((tracer) => traced(tracer !== nativeTracer))

/**
 * `self` in a span named `name`, where a tracer exports it.
 *
 * @internal
 */
export const withSpan =
  (name: string, options: Tracer.SpanOptions) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    whenTraced((on) => on ? Effect.withSpan(self, name, { ...options, captureStackTrace: false }) : self)
