/**
 * The `S3CACHE_*` variables: the one list of the names every package reads, the `Config`s that read them (flat
 * names, so a `ConfigError` names the variable the user set, `S3CACHE_S3_SSE`, not the path `S3CACHE.S3_SSE`), the
 * record of which option came from which variable (so a validation error names the variable) and the warning about
 * set `S3CACHE_*` variables that nothing reads (a misspelling is otherwise silently ignored).
 *
 * @since 0.2.0
 */
import * as Config from "effect/Config"
import type * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HashSet from "effect/HashSet"
import * as Option from "effect/Option"
import { ConfigError, Either } from "./effect3.js"

/**
 * Every variable a package of s3cache reads. `test/Variables.test.ts` scans the sources of every package and fails
 * when one they read is missing here.
 *
 * @internal
 */
export const known: ReadonlyArray<string> = [
  // @s3cache/core: Cache.layerConfig (CacheConfig.config)
  "S3CACHE_NAME",
  "S3CACHE_NAMESPACE",
  "S3CACHE_DEFAULT_TTL",
  "S3CACHE_MAX_CACHE_ENTRIES",
  "S3CACHE_STAMPEDE_LOCK_TTL",
  "S3CACHE_STAMPEDE_LOCK_LEASE",
  "S3CACHE_SERIALIZATION_FORMAT",
  "S3CACHE_COMPRESSION",
  "S3CACHE_COMPRESSION_THRESHOLD",
  "S3CACHE_INLINE_THRESHOLD",
  "S3CACHE_L1_MAX_ENTRIES",
  "S3CACHE_L1_MAX_BYTES",
  "S3CACHE_L1_TTL",
  "S3CACHE_L1_DISCONNECTED_TTL",
  "S3CACHE_L1_SHARE_VALUES",
  "S3CACHE_METADATA_TIMEOUT",
  "S3CACHE_BLOB_TIMEOUT",
  "S3CACHE_BLOB_MIN_THROUGHPUT",
  "S3CACHE_WRITE_CONCURRENCY",
  "S3CACHE_MAX_PENDING_WRITES",
  "S3CACHE_SHUTDOWN_TIMEOUT",
  "S3CACHE_KEY_VERSION",
  "S3CACHE_CIRCUIT_BREAKER_FAILURES",
  "S3CACHE_CIRCUIT_BREAKER_COOLDOWN",
  "S3CACHE_GRACE",
  "S3CACHE_REFRESH",
  "S3CACHE_FAIL_SAFE",
  "S3CACHE_GRACE_BACKOFF",
  "S3CACHE_SOFT_TIMEOUT",
  "S3CACHE_REFRESH_AHEAD",
  // @s3cache/core: Cache.layerEmbeddedConfig
  "S3CACHE_STORAGE_BACKEND",
  "S3CACHE_LOCAL_PATH",
  // @s3cache/redis: RedisMetadataStore.layerConfig
  "S3CACHE_REDIS_URL",
  "S3CACHE_REDIS_CLUSTER_NODES",
  "S3CACHE_REDIS_USERNAME",
  "S3CACHE_REDIS_PASSWORD",
  "S3CACHE_REDIS_KEY_PREFIX",
  "S3CACHE_REDIS_COMMAND_TIMEOUT",
  "S3CACHE_REDIS_CONNECT_TIMEOUT",
  "S3CACHE_REDIS_LRU_RESOLUTION",
  "S3CACHE_REDIS_SLOTS_PER_NAMESPACE",
  // @s3cache/s3: S3BlobStore.layerConfig
  "S3CACHE_S3_BUCKET",
  "S3CACHE_S3_PREFIX",
  "S3CACHE_AWS_REGION",
  "S3CACHE_S3_ENDPOINT",
  "S3CACHE_S3_FORCE_PATH_STYLE",
  "S3CACHE_S3_SSE",
  "S3CACHE_S3_KMS_KEY_ID",
  "S3CACHE_AWS_ACCESS_KEY_ID",
  "S3CACHE_AWS_SECRET_ACCESS_KEY",
  "S3CACHE_AWS_SESSION_TOKEN",
  "S3CACHE_S3_TIMEOUT",
  "S3CACHE_S3_CONNECT_TIMEOUT",
  "S3CACHE_S3_MIN_THROUGHPUT",
  "S3CACHE_S3_GET_ATTEMPTS",
  "S3CACHE_S3_ATTEMPTS",
  "S3CACHE_S3_MULTIPART_THRESHOLD",
  "S3CACHE_S3_PART_SIZE",
  "S3CACHE_S3_UPLOAD_CONCURRENCY",
  "S3CACHE_S3_MAX_SOCKETS",
  "S3CACHE_S3_CHECKSUMS",
  "S3CACHE_S3_VERIFY_BUCKET"
]

const knownSet: ReadonlySet<string> = new Set(known)

const prefix = "S3CACHE"

// ---------------------------------------------------------------------------------------------------------------
// Reading variables
// ---------------------------------------------------------------------------------------------------------------

const parsed = <A>(name: string, parse: (text: string) => Either.Either<A, string>): Config.Config<A> =>
  Config.string(name).pipe(
    Config.mapOrFail((text) => Either.mapLeft(parse(text), (message) => ConfigError.InvalidData([], message)))
  )

const got = (text: string) => `got ${JSON.stringify(text)}`

/** @internal */
export const duration = (name: string): Config.Config<Duration.Duration> =>
  parsed(name, (text) => {
    const trimmed = text.trim()
    const decoded = /^\d+(\.\d+)?$/.test(trimmed)
      ? Option.some(Duration.seconds(Number(trimmed)))
      : Duration.decodeUnknown(trimmed)
    return Option.match(decoded, {
      onNone: () => Either.left(`expected seconds (e.g. 3600) or a duration (e.g. "10 minutes"), ${got(text)}`),
      onSome: Either.right
    })
  })

/** @internal */
export const integer = (name: string): Config.Config<number> =>
  parsed(name, (text) => {
    const trimmed = text.trim()
    const value = Number(trimmed)
    return /^[+-]?\d+$/.test(trimmed) && Number.isSafeInteger(value)
      ? Either.right(value)
      : Either.left(`expected a whole number (e.g. 100), ${got(text)}`)
  })

/** @internal */
export const number = (name: string): Config.Config<number> =>
  parsed(name, (text) => {
    const trimmed = text.trim()
    const value = Number(trimmed)
    return trimmed !== "" && Number.isFinite(value)
      ? Either.right(value)
      : Either.left(`expected a number (e.g. 0.5), ${got(text)}`)
  })

const truthy = new Set(["true", "yes", "on", "1"])
const falsy = new Set(["false", "no", "off", "0"])

/** @internal */
export const boolean = (name: string): Config.Config<boolean> =>
  parsed(name, (text) => {
    const lower = text.trim().toLowerCase()
    return truthy.has(lower)
      ? Either.right(true)
      : falsy.has(lower)
      ? Either.right(false)
      : Either.left(`expected true or false (also yes/no, on/off, 1/0), ${got(text)}`)
  })

/** @internal */
export const literal =
  <const Values extends ReadonlyArray<string>>(...values: Values) => (name: string): Config.Config<Values[number]> =>
    parsed(name, (text) => {
      const trimmed = text.trim()
      return values.includes(trimmed)
        ? Either.right(trimmed as Values[number])
        : Either.left(`expected one of ${values.join(", ")}, ${got(text)}`)
    })

// ---------------------------------------------------------------------------------------------------------------
// Which option came from which variable
// ---------------------------------------------------------------------------------------------------------------

// Enumerable, so a spread of the options (`{ ...options, localPath }`) keeps it; a symbol, so `Object.keys` and
// the check for misspelt options never see it.
const VariablesId = Symbol.for("@s3cache/core/CacheConfig/variables")

/** @internal */
export const withVariables = <A extends object>(options: A, variables: Readonly<Record<string, string>>): A =>
  ({ ...options, [VariablesId]: { ...variablesOf(options), ...variables } }) as A

/** @internal */
export const variablesOf = (options: object): Readonly<Record<string, string>> => {
  const variables = (options as { readonly [VariablesId]?: unknown })[VariablesId]
  return typeof variables === "object" && variables !== null ? variables as Record<string, string> : {}
}

/** @internal */
export const isFromVariables = (options: object): boolean => VariablesId in options

/** @internal */
export type Field<A> = readonly [variable: string, config: (name: string) => Config.Config<A>]

/** @internal */
export type FieldsOptions<Fields> = {
  -readonly [K in keyof Fields]?: Fields[K] extends Field<infer A> ? A : never
}

/** @internal */
export const fromVariables = <const Fields extends Readonly<Record<string, Field<any>>>>(
  fields: Fields
): Config.Config<FieldsOptions<Fields>> => {
  const entries = Object.entries(fields) as Array<[string, Field<unknown>]>
  return Config.all(
    Object.fromEntries(entries.map(([option, [variable, config]]) => [option, Config.option(config(variable))]))
  ).pipe(Config.map((values) => {
    const options: Record<string, unknown> = {}
    const variables: Record<string, string> = {}
    for (const [option, [variable]] of entries) {
      const value = values[option] as Option.Option<unknown>
      if (Option.isSome(value)) {
        options[option] = value.value
        variables[option] = variable
      }
    }
    return withVariables(options, variables) as FieldsOptions<Fields>
  }))
}

// ---------------------------------------------------------------------------------------------------------------
// Unknown variables
// ---------------------------------------------------------------------------------------------------------------

// Optimal string alignment distance: Levenshtein plus the swap of two neighbours (REDSI for REDIS is one edit).
const distance = (a: string, b: string): number => {
  const rows = a.length + 1
  const cols = b.length + 1
  const d: Array<Array<number>> = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => i + j))
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1)
      }
    }
  }
  return d[a.length]![b.length]!
}

/**
 * The known variable an unknown one most likely meant: the nearest by edit distance when it is close enough for
 * the name's length, else the shortest known one that ends with it (`BUCKET` after the
 * prefix finds `S3CACHE_S3_BUCKET`).
 *
 * @internal
 */
export const suggest = (name: string): string | undefined => {
  const suffix = name.slice(prefix.length + 1)
  const limit = Math.max(2, Math.floor(suffix.length / 3))
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of known) {
    const d = distance(suffix, candidate.slice(prefix.length + 1))
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  if (best !== undefined && bestDistance <= limit) return best
  // a part of the name left out (BUCKET for S3_BUCKET): the shortest known name that ends with it,
  // when only one is that short
  const ending = known.filter((candidate) => suffix !== "" && candidate.endsWith(`_${suffix}`))
    .sort((a, b) => a.length - b.length)
  return ending.length === 1 || (ending.length > 1 && ending[0]!.length < ending[1]!.length) ? ending[0] : undefined
}

// Deep enough for any name s3cache reads; a bound on a walk over whatever the provider holds.
const maxDepth = 12

/**
 * The `S3CACHE_*` names the provider holds (the environment, with the default provider) that no package reads. The
 * provider's own listing is used, so a test's `ConfigProvider.fromMap` is seen as the environment would be.
 *
 * @internal
 */
export const unknownVariables = (provider: ConfigProvider.ConfigProvider): Effect.Effect<Array<string>> => {
  const flat = provider.flattened
  const children = (path: ReadonlyArray<string>) =>
    flat.enumerateChildren(path).pipe(
      Effect.map((set) => Array.from(HashSet.values(set)).sort()),
      Effect.orElseSucceed(() => [] as Array<string>)
    )
  // Every path under the S3CACHE names, inner ones too: with the environment's "_" delimiter S3CACHE_REDIS_URL is
  // the path S3CACHE → REDIS → URL, and a variable named like its first part may be set as well.
  const walk = (path: ReadonlyArray<string>): Effect.Effect<Array<ReadonlyArray<string>>> =>
    path.length >= maxDepth ? Effect.succeed([]) : Effect.flatMap(children(path), (names) =>
      Effect.map(
        Effect.forEach(names, (name) => walk([...path, name])),
        (below) => names.flatMap((name, i) => [[...path, name], ...below[i]!])
      ))
  const isSet = (path: ReadonlyArray<string>) =>
    provider.load(
      path.slice(0, -1).reduceRight(
        (config, segment) => Config.nested(config, segment),
        Config.string(path[path.length - 1])
      )
    ).pipe(
      Effect.as(true),
      Effect.orElseSucceed(() => false)
    )
  return children([]).pipe(
    Effect.map((roots) => roots.filter((root) => root === prefix || root.startsWith(`${prefix}_`))),
    Effect.flatMap((roots) => Effect.forEach(roots, (root) => Effect.map(walk([root]), (below) => [[root], ...below]))),
    Effect.map((paths) => paths.flat()),
    Effect.flatMap((paths) =>
      Effect.filter(paths, (path) => {
        const name = path.join("_")
        return name.startsWith(`${prefix}_`) && !knownSet.has(name) ? isSet(path) : Effect.succeed(false)
      })
    ),
    Effect.map((paths) => Array.from(new Set(paths.map((path) => path.join("_")))).sort())
  )
}

/**
 * The same with the suggestion of each, for tools that report them their own way (the CLI's `doctor`).
 *
 * @internal
 */
export const unknownWithSuggestions: Effect.Effect<
  Array<{ readonly name: string; readonly suggestion?: string | undefined }>
> = Effect.configProviderWith(unknownVariables).pipe(
  Effect.map((names) =>
    names.map((name) => {
      const suggestion = suggest(name)
      return suggestion === undefined ? { name } : { name, suggestion }
    })
  )
)

/** @internal */
export const unknownVariablesMessage = (names: ReadonlyArray<string>): string => {
  const listed = names.map((name) => {
    const suggestion = suggest(name)
    return suggestion === undefined ? name : `${name} (did you mean ${suggestion}?)`
  })
  return names.length === 1
    ? `s3cache: ignoring the variable ${listed[0]}: no s3cache package reads it`
    : `s3cache: ignoring ${names.length} variables no s3cache package reads: ${listed.join(", ")}`
}

// Once per process for each set of names: every `*Config` layer of an application checks, and one warning is enough.
const warned = new Set<string>()

/** @internal */
export const warnUnknown: Effect.Effect<void> = Effect.configProviderWith(unknownVariables).pipe(
  Effect.flatMap((names) => {
    const key = names.join(",")
    if (names.length === 0 || warned.has(key)) return Effect.void
    warned.add(key)
    return Effect.logWarning(unknownVariablesMessage(names))
  }),
  // a warning must never be why a layer fails to build
  Effect.catchAllCause(() => Effect.void)
)
