/**
 * The `S3CACHE_*` environment variables: reading options from them so that an error names the variable the user set
 * (not a path under `Config.nested`), remembering which option came from which variable, and the one list of the
 * variables the packages read, so that a misspelt one is reported instead of silently ignored. Every package's
 * `config` is built with it.
 *
 * @since 0.2.0
 */
import "./internal/effectVersion.js"
import type * as Config from "effect/Config"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as validate from "./internal/validate.js"
import * as variables from "./internal/variables.js"

/**
 * An option, and the variable it was read from when a `*Config` layer read it from the environment (see
 * `sourceOf`): validation messages name the variable then, since that is what the user wrote, and the option
 * otherwise.
 *
 * @since 0.2.0
 * @category models
 */
export interface OptionSource {
  readonly option: string
  readonly variable?: string | undefined
}

/**
 * Where `option` of an options object came from: `{ option, variable }` when `config` (or another package's config
 * built with `fromVariables`) read it from a variable, `{ option }` when it was written in code.
 *
 * @example
 * import { CacheVariables } from "@s3cache/core"
 *
 * CacheVariables.sourceOf({ defaultTtl: 60 }, "defaultTtl") // { option: "defaultTtl" }
 *
 * @since 0.2.0
 * @category config
 */
export const sourceOf: (options: object, option: string) => OptionSource = validate.sourceOf

/**
 * The name a message should give an option: its variable when it came from one, else its own name.
 *
 * @since 0.2.0
 * @category config
 */
export const optionName: (source: string | OptionSource) => string = validate.nameOf

/**
 * A duration from a variable: a bare number is seconds (`S3CACHE_DEFAULT_TTL=3600`), anything else is parsed as an
 * Effect duration (`"10 minutes"`, `"250 millis"`). The same as `CacheVariables.duration`.
 *
 * @since 0.2.0
 * @category config
 */
export const duration: (name: string) => Config.Config<Duration.Duration> = variables.duration

/**
 * A whole number from a variable; a malformed value is a `ConfigError` at the variable that says what it takes.
 *
 * @since 0.2.0
 * @category config
 */
export const integer: (name: string) => Config.Config<number> = variables.integer

/**
 * A finite number from a variable; a malformed value is a `ConfigError` at the variable that says what it takes.
 *
 * @since 0.2.0
 * @category config
 */
export const number: (name: string) => Config.Config<number> = variables.number

/**
 * `true`/`false` (also `yes`/`no`, `on`/`off`, `1`/`0`) from a variable; anything else is a `ConfigError` at the
 * variable that lists them.
 *
 * @since 0.2.0
 * @category config
 */
export const boolean: (name: string) => Config.Config<boolean> = variables.boolean

/**
 * One of `values` from a variable; anything else is a `ConfigError` at the variable that lists them.
 *
 * @example
 * import { CacheVariables } from "@s3cache/core"
 *
 * const compression = CacheVariables.literal("zstd", "gzip", "none")("S3CACHE_COMPRESSION")
 *
 * @since 0.2.0
 * @category config
 */
export const literal: <const Values extends ReadonlyArray<string>>(
  ...values: Values
) => (name: string) => Config.Config<Values[number]> = variables.literal

/**
 * How one option is read: the variable's whole name and the `Config` constructor that parses it
 * (`["S3CACHE_DEFAULT_TTL", CacheVariables.duration]`).
 *
 * @since 0.2.0
 * @category models
 */
export type VariableField<A> = variables.Field<A>

/**
 * Options from variables, each optional: unset variables are left out (the defaults apply), and the options remember
 * which variable each came from, so that validation errors name the variable (see `sourceOf`). Every package's
 * `config` is built with it.
 *
 * @example
 * import { CacheVariables } from "@s3cache/core"
 * import * as Config from "effect/Config"
 *
 * const config = CacheVariables.fromVariables({
 *   url: ["S3CACHE_REDIS_URL", Config.string],
 *   commandTimeout: ["S3CACHE_REDIS_COMMAND_TIMEOUT", CacheVariables.duration]
 * })
 *
 * @since 0.2.0
 * @category config
 */
export const fromVariables: <const Fields extends Readonly<Record<string, VariableField<any>>>>(
  fields: Fields
) => Config.Config<variables.FieldsOptions<Fields>> = variables.fromVariables

/**
 * Record that options came from variables (`option` → variable), for options assembled from several `Config`s
 * (a required variable beside `fromVariables`, credentials from two variables). Returns a copy.
 *
 * @since 0.2.0
 * @category config
 */
export const withVariables: <A extends object>(options: A, variables: Readonly<Record<string, string>>) => A =
  variables.withVariables

/**
 * Every `S3CACHE_*` variable a package of s3cache reads (core, Redis, S3; the demo and the CLI read the same).
 * Others set in the environment are reported by `warnUnknownVariables`.
 *
 * @since 0.2.0
 * @category config
 */
export const knownVariables: ReadonlyArray<string> = variables.known

/**
 * Log one warning listing the `S3CACHE_*` variables the `ConfigProvider` (the environment, by default) holds that
 * no package reads, each with the nearest known name (`… (did you mean S3CACHE_REDIS_URL?)` after a misspelt
 * `S3CACHE_REDIS_URL`). A misspelt variable is otherwise silently ignored. Each set of names is reported once per
 * process, however many layers are built. It never fails. Every `*Config` layer runs it.
 *
 * @example
 * import { CacheVariables } from "@s3cache/core"
 *
 * // a layer of your own, built from S3CACHE_* variables, checks them the same way
 * const check = CacheVariables.warnUnknownVariables
 *
 * @since 0.2.0
 * @category config
 */
export const warnUnknownVariables: Effect.Effect<void> = variables.warnUnknown

/**
 * The `S3CACHE_*` names the `ConfigProvider` (the environment, by default) holds that no package reads, each with
 * the known name it most likely meant, for tools that report them their own way (`warnUnknownVariables` logs them).
 *
 * @since 0.2.0
 * @category config
 */
export const unknownVariables: Effect.Effect<
  Array<{ readonly name: string; readonly suggestion?: string | undefined }>
> = variables.unknownWithSuggestions
