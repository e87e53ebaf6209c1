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
import * as CacheFailSafe from "../CacheFailSafe.js"
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
  /** what the call does with a stale entry, a failing or slow effect */
  readonly policy: Policy
}

/**
 * The fail-safe options of a call, in the units the cache uses.
 *
 * @internal
 */
export interface Policy {
  /** how long after its TTL an entry may be served stale, ms; 0: never */
  readonly graceMs: number
  readonly refresh: "background" | "foreground"
  /** whether a failure of the effect (its error, or a defect) lets a stale entry stand in; undefined: none does */
  readonly failSafe: ((error: unknown) => boolean) | undefined
  readonly graceBackoffMs: number
  /** 0: off */
  readonly softTimeoutMs: number
  /** the fraction of the TTL from which a hit refreshes the entry in the background; 1: never */
  readonly refreshAt: number
}

const policyOf = (options: CacheFailSafe.Resolved): Policy => ({
  graceMs: Duration.toMillis(options.grace),
  refresh: options.refresh,
  failSafe: typeof options.failSafe === "function"
    ? options.failSafe
    : options.failSafe
    ? () => true
    : undefined,
  graceBackoffMs: Duration.toMillis(options.graceBackoff),
  softTimeoutMs: Duration.toMillis(options.softTimeout),
  refreshAt: options.refreshAhead > 0 ? options.refreshAhead : 1
})

/** the policy of calls that set none of the options, one per cache */
const layerPolicies = new WeakMap<CacheConfig.Resolved, Policy>()

const layerPolicy = (config: CacheConfig.Resolved): Policy => {
  let policy = layerPolicies.get(config)
  if (policy === undefined) {
    policy = policyOf(config)
    layerPolicies.set(config, policy)
  }
  return policy
}

/**
 * When an entry stops being served as fresh without a refresh: at its TTL, or at `refreshAhead` of it (epoch ms).
 *
 * @internal
 */
export const refreshPoint = (plan: Plan, createdAt: number, ttlMs: number): number =>
  createdAt + ttlMs * plan.policy.refreshAt

/** The options of one call, as the service method takes them. @internal */
export interface CallOptions extends CacheFailSafe.Options {
  readonly key: unknown
  readonly namespace?: string | undefined
  readonly ttl?: Duration.DurationInput | undefined
  readonly format?: Format | undefined
  readonly schema?: Schema.Schema<any, any, never> | undefined
  readonly l1Ttl?: Duration.DurationInput | undefined
}

const failSafeOptions: ReadonlyArray<string> = [
  "grace",
  "refresh",
  "failSafe",
  "graceBackoff",
  "softTimeout",
  "refreshAhead"
]

const knownOptions: ReadonlyArray<string> = ["key", "namespace", "ttl", "format", "schema", "l1Ttl", ...failSafeOptions]

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
    let policy = layerPolicy(config)
    if (failSafeOptions.some((option) => (options as unknown as Record<string, unknown>)[option] !== undefined)) {
      const resolved = CacheFailSafe.resolve(options, config, method)
      if (Either.isLeft(resolved)) return Either.left(resolved.left)
      policy = policyOf(resolved.right)
    }
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
            l1TtlMs: Math.min(Duration.toMillis(l1Ttl.right), Duration.toMillis(ttl)),
            policy
          })
        )
    )
  })
