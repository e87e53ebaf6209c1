/**
 * Which entry a command means: a key (a string as the application passes it, or any key as JSON: a wrapped
 * function's `{ function, args }`), or a hash; in `--namespace`, else the cache's namespace (`S3CACHE_NAMESPACE`,
 * else `default`), as the application's calls that name none.
 */
import * as Options from "@effect/cli/Options"
import type { CacheKey } from "@s3cache/core/CacheKey"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { CliError } from "./connection.js"

export const keyJson = Options.text("key-json").pipe(
  Options.withDescription(
    "the key as JSON, for a key that is not a string: e.g. '[\"revenue\",2026]', or " +
      "'{\"function\":\"users.get\",\"args\":[\"42\"]}' for a wrapped function"
  ),
  Options.optional
)

export const namespace = (description: string) =>
  Options.text("namespace").pipe(Options.withDescription(description), Options.optional)

/** The key of `--key` (a string) or `--key-json`, if one was given; both is an error. */
export const keyOf = (text: Option.Option<string>, json: Option.Option<string>, flag = "--key") =>
  Effect.gen(function*() {
    if (Option.isSome(text) && Option.isSome(json)) {
      return yield* new CliError({ message: `give ${flag} or --key-json, not both` })
    }
    if (Option.isSome(text)) return Option.some<CacheKey>(text.value)
    if (Option.isNone(json)) return Option.none<CacheKey>()
    return Option.some(
      yield* Effect.try({
        try: () => JSON.parse(json.value) as CacheKey,
        catch: (error) => new CliError({ message: `--key-json is not JSON: ${String(error).slice(0, 120)}` })
      })
    )
  })

/** A description of a key for output: a string as it is, anything else as JSON; cut at 80 characters. */
export const shown = (key: CacheKey): string => {
  const text = typeof key === "string" ? JSON.stringify(key) : JSON.stringify(key) ?? String(key)
  return text.length > 80 ? `${text.slice(0, 79)}…` : text
}
