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
import { variablesOf } from "./variables.js"

/**
 * An option, and the variable it was read from when it came from the environment: messages name what the user
 * wrote, the option in code or the variable in the environment.
 *
 * @internal
 */
export interface OptionSource {
  readonly option: string
  readonly variable?: string | undefined
}

/** An option's name, or where it came from. @internal */
export type OptionRef = string | OptionSource

/** Where `option` of `options` came from: a variable when a `*Config` layer read it from one. @internal */
export const sourceOf = (options: object, option: string): OptionSource => {
  const variable = variablesOf(options)[option]
  return variable === undefined ? { option } : { option, variable }
}

/** The name to put in a message: the variable when the value came from one, else the option. @internal */
export const nameOf = (ref: OptionRef): string => typeof ref === "string" ? ref : ref.variable ?? ref.option

const fromVariable = (ref: OptionRef): boolean => typeof ref !== "string" && ref.variable !== undefined

// How to write a duration where the value came from: a variable takes a bare number as seconds (CacheConfig.duration),
// code takes it as milliseconds (Effect's `Duration.DurationInput`).
const durationExample = (ref: OptionRef, example: string): string =>
  fromVariable(ref)
    ? `set e.g. ${nameOf(ref)}=30 (seconds) or ${nameOf(ref)}="${example}"`
    : `pass e.g. "${example}", Duration.seconds(30) or a number of milliseconds`

/** @internal */
export const invalid = (method: string, description: string) =>
  new CacheInputError({ reason: "InvalidOption", method, description })

/** A positive, finite duration, or a typed error naming the option. @internal */
export const positiveDuration = (
  input: Duration.DurationInput,
  option: OptionRef,
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
        description: `${nameOf(option)} must be a finite duration of at least 1 millisecond (got ${show(input)}); ` +
          durationExample(option, "10 minutes")
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
  option: OptionRef,
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
        description: `${nameOf(option)} must be a finite duration of zero or more (got ${show(input)}); ` +
          durationExample(option, "1 hour")
      })
    )
}

/** @internal */
export const positiveInteger = (value: number, option: OptionRef, method: string) =>
  Number.isSafeInteger(value) && value > 0
    ? Either.right(value)
    : Either.left(invalid(method, `${nameOf(option)} must be a positive integer (got ${String(value)})`))

/** @internal */
export const nonNegativeInteger = (value: number, option: OptionRef, method: string) =>
  Number.isSafeInteger(value) && value >= 0
    ? Either.right(value)
    : Either.left(invalid(method, `${nameOf(option)} must be an integer of 0 or more (got ${String(value)})`))

// A decoded duration as a person writes it ("0", "10m"), anything else as it was given.
const show = (input: unknown): string => {
  if (Duration.isDuration(input)) {
    try {
      return Duration.format(input)
    } catch {
      return String(input)
    }
  }
  return String(input)
}
