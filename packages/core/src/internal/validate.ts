/**
 * Checks of option values, shared by the cache's options (`CacheConfig`), its fail-safe options (`CacheFailSafe`) and
 * the stores: each gives the value, or a typed error that names the option and says what it takes.
 *
 * @since 0.3.0
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import { CacheInputError } from "../CacheError.js"
import { Either } from "./effect3.js"

/** @internal */
export const invalid = (method: string, description: string) =>
  new CacheInputError({ reason: "InvalidOption", method, description })

/** A positive, finite duration, or a typed error naming the option. @internal */
export const positiveDuration = (
  input: Duration.DurationInput,
  option: string,
  method: string,
  reason: "InvalidOption" | "InvalidTtl" = "InvalidOption"
): Either.Either<Duration.Duration, CacheInputError> => {
  const duration = Option.getOrUndefined(Duration.decodeUnknown(input))
  return duration !== undefined && Duration.isFinite(duration) && Duration.toMillis(duration) >= 1
    ? Either.right(duration)
    : Either.left(
      new CacheInputError({
        reason,
        method,
        description: `${option} must be a finite duration of at least 1 millisecond (got ${String(input)}); ` +
          "pass e.g. \"10 minutes\", Duration.seconds(30) or a number of milliseconds"
      })
    )
}

/**
 * A finite duration of zero or more, or a typed error naming the option. Effect's `Duration` turns a negative or NaN
 * number into zero, which would make "-5 minutes" mean "now": such input is refused before it is decoded.
 *
 * @internal
 */
export const nonNegativeDuration = (
  input: Duration.DurationInput,
  option: string,
  method: string
): Either.Either<Duration.Duration, CacheInputError> => {
  const negative = (typeof input === "number" && !(input >= 0)) ||
    (typeof input === "bigint" && input < BigInt(0)) ||
    (typeof input === "string" && /^\s*(-|nan|NaN)/.test(input)) ||
    (Array.isArray(input) && input.some((part: unknown) => !(typeof part === "number" && part >= 0)))
  const duration = negative ? undefined : Option.getOrUndefined(Duration.decodeUnknown(input))
  return duration !== undefined && Duration.isFinite(duration)
    ? Either.right(duration)
    : Either.left(
      new CacheInputError({
        reason: "InvalidOption",
        method,
        description: `${option} must be a finite duration of zero or more (got ${String(input)}); ` +
          "pass e.g. \"1 hour\", Duration.minutes(30) or a number of milliseconds"
      })
    )
}

/** @internal */
export const positiveInteger = (value: number, option: string, method: string) =>
  Number.isSafeInteger(value) && value > 0
    ? Either.right(value)
    : Either.left(invalid(method, `${option} must be a positive integer (got ${String(value)})`))

/** @internal */
export const nonNegativeInteger = (value: number, option: string, method: string) =>
  Number.isSafeInteger(value) && value >= 0
    ? Either.right(value)
    : Either.left(invalid(method, `${option} must be an integer of 0 or more (got ${String(value)})`))
