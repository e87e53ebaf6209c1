/**
 * The Effect 3 modules that Effect 4 removed (`effect/Either`, `effect/ConfigError`, …), taken from the `effect`
 * barrel instead of by path. An import of `effect/Either` fails while the module graph links on Effect 4, before
 * any code runs; a namespace import of the barrel links on both, so `effectVersion.ts` runs first and says what to
 * do. On Effect 3 these are the very same module objects.
 *
 * @internal
 */
import "./effectVersion.js"

import * as effect from "effect"
import type * as ConfigErrorModule from "effect/ConfigError"
import type * as EitherModule from "effect/Either"

/** `effect/Either` */
export const Either = effect.Either
/** The types of `effect/Either` */
export declare namespace Either {
  export type Either<R, L = never> = EitherModule.Either<R, L>
}

/** `effect/ConfigError` */
export const ConfigError = effect.ConfigError
/** The types of `effect/ConfigError` */
export declare namespace ConfigError {
  export type ConfigError = ConfigErrorModule.ConfigError
}

/** `effect/DefaultServices` */
export const DefaultServices = effect.DefaultServices

/** `effect/ExecutionStrategy` */
export const ExecutionStrategy = effect.ExecutionStrategy

/** `effect/FiberId` */
export const FiberId = effect.FiberId

/** `effect/FiberRef` */
export const FiberRef = effect.FiberRef

/** `effect/MetricBoundaries` */
export const MetricBoundaries = effect.MetricBoundaries
