/**
 * `effect/Either` and `effect/ConfigError`, taken from the `effect` barrel instead of by path: both modules are gone
 * in Effect 4, where importing them by path fails while the module graph links, before `@s3cache/core`'s version
 * check (the first import of its modules, which this package imports first) can say what to do. On Effect 3 these
 * are the very same module objects.
 *
 * @internal
 */

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
