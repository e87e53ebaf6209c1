/**
 * What one cached call is about: its options, checked at run time too (JavaScript callers, `as any`), turned into a
 * plan (namespace, hash, TTL, format, schema) or into an error that says what to change.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Schema from "effect/Schema"
import * as CacheConfig from "../CacheConfig.js"
import { CacheInputError } from "../CacheError.js"
import * as CacheKey from "../CacheKey.js"
import type { Format } from "../Serializer.js"
import { Either } from "./effect3.js"

/** @internal */
export interface Plan {
  readonly namespace: string
  readonly hash: string
  readonly preview: string
  readonly ttl: Duration.Duration
  readonly format: Format
  readonly schema: Schema.Schema<any, any, never> | undefined
  /** how long the value may live in the in-process tier, ms (0: not kept there) */
  readonly l1TtlMs: number
}

/** The options of one call, as the service method takes them. @internal */
export interface CallOptions {
  readonly key: unknown
  readonly namespace?: string | undefined
  readonly ttl?: Duration.DurationInput | undefined
  readonly format?: Format | undefined
  readonly schema?: Schema.Schema<any, any, never> | undefined
  readonly l1Ttl?: Duration.DurationInput | undefined
}

const knownOptions: ReadonlyArray<string> = ["key", "namespace", "ttl", "format", "schema", "l1Ttl"]

/**
 * Is `u` the options of a call rather than a key? Every plain object is: a record key goes in `{ key: … }`, so no
 * key can be mistaken for options, and no misspelt option for a key.
 */
const isOptions = (u: unknown): u is Record<string, unknown> => {
  if (typeof u !== "object" || u === null || Array.isArray(u)) return false
  const prototype = Object.getPrototypeOf(u)
  return prototype === Object.prototype || prototype === null
}

const invalid = (method: string, description: string) =>
  new CacheInputError({ reason: "InvalidOption", method, description })

/** The call's options, checked: a plain object with a `key` and known options only. Anything else is a key. */
const toOptions = (keyOrOptions: unknown, method: string): Either.Either<CallOptions, CacheInputError> => {
  if (!isOptions(keyOrOptions)) return Either.right({ key: keyOrOptions })
  const unknown = Object.keys(keyOrOptions).filter((name) => !knownOptions.includes(name))
  if (unknown.length > 0) {
    return Either.left(invalid(
      method,
      `unknown option${unknown.length > 1 ? "s" : ""} ${unknown.map((name) => JSON.stringify(name)).join(", ")}; ` +
        `the options of a call are ${knownOptions.join(", ")} (a record key goes in { key: … })`
    ))
  }
  if (!Object.hasOwn(keyOrOptions, "key")) {
    return Either.left(
      new CacheInputError({
        reason: "InvalidKey",
        method,
        description: "the options have no `key`: pass { key, … }; a record used as a key goes in { key: { … } }"
      })
    )
  }
  const { format, namespace, schema } = keyOrOptions
  if (namespace !== undefined && typeof namespace !== "string") {
    return Either.left(invalid(method, `namespace must be a string (got ${typeof namespace})`))
  }
  if (format !== undefined && (typeof format !== "string" || format.length === 0)) {
    return Either.left(invalid(method, "format must be \"auto\", \"v8\", \"json\", \"bytes\" or a codec name"))
  }
  if (schema !== undefined && !Schema.isSchema(schema)) {
    return Either.left(invalid(method, "schema must be an effect/Schema schema"))
  }
  return Either.right(keyOrOptions as unknown as CallOptions)
}

/** @internal */
export const make = (
  config: CacheConfig.Resolved,
  keyOrOptions: unknown,
  method: string
): Either.Either<Plan, CacheInputError> =>
  Either.flatMap(toOptions(keyOrOptions, method), (options) => {
    const namespace = options.namespace ?? config.namespace
    const l1Ttl = options.l1Ttl === undefined
      ? Either.right(config.l1Ttl)
      : CacheConfig.nonNegativeDuration(options.l1Ttl, "l1Ttl", method)
    if (Either.isLeft(l1Ttl)) return Either.left(l1Ttl.left)
    return Either.flatMap(
      CacheKey.hash(options.key as CacheKey.CacheKey, { namespace, version: config.keyVersion }, method),
      ({ hash, preview }) =>
        Either.map(
          options.ttl === undefined
            ? Either.right(config.defaultTtl)
            : CacheConfig.positiveDuration(options.ttl, "ttl", method, "InvalidTtl"),
          (ttl): Plan => ({
            namespace,
            hash,
            preview,
            ttl,
            format: options.format ?? config.serializationFormat,
            schema: options.schema,
            l1TtlMs: Math.min(Duration.toMillis(l1Ttl.right), Duration.toMillis(ttl))
          })
        )
    )
  })
