/**
 * `s3cache invalidate`: remove entries (records first, then their objects), as the application's `Cache.invalidate*`
 * does, after a confirmation unless `--yes`.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Prompt from "@effect/cli/Prompt"
import { Cache } from "@s3cache/core/Cache"
import * as CacheKey from "@s3cache/core/CacheKey"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Connection from "./connection.js"
import * as Entry from "./entry.js"
import * as Format from "./format.js"

const text = (name: string, description: string) =>
  Options.text(name).pipe(Options.withDescription(description), Options.optional)

type Target =
  | { readonly _tag: "Key"; readonly key: CacheKey.CacheKey; readonly namespace: string }
  | { readonly _tag: "Hash"; readonly hash: string; readonly namespace: string | undefined }
  | { readonly _tag: "Namespace"; readonly namespace: string }
  | { readonly _tag: "All" }

const describeTarget = (target: Target): string => {
  switch (target._tag) {
    case "Key":
      return `the entry of key ${Entry.shown(target.key)} in namespace ${target.namespace}`
    case "Hash":
      return `the entry of hash ${target.hash} in ${
        target.namespace === undefined ? "every namespace" : `namespace ${target.namespace}`
      }`
    case "Namespace":
      return `every entry of namespace ${target.namespace}`
    case "All":
      return "every entry of every namespace"
  }
}

export const command = Command.make(
  "invalidate",
  {
    ...Connection.options,
    key: text("key", "the entry of this key (in --namespace, default S3CACHE_NAMESPACE, else \"default\")"),
    keyJson: Entry.keyJson,
    hash: text("hash", "the entry of this hash (in --namespace, or in every namespace)"),
    namespace: text("namespace", "with --key or --hash: where; alone: every entry of this namespace"),
    all: Options.boolean("all").pipe(Options.withDescription("every entry of every namespace")),
    yes: Options.boolean("yes").pipe(Options.withAlias("y"), Options.withDescription("do not ask for confirmation"))
  },
  (input) =>
    Effect.gen(function*() {
      const key = yield* Entry.keyOf(input.key, input.keyJson)
      const chosen = [Option.isSome(key), Option.isSome(input.hash), input.all].filter(Boolean).length
      if (
        chosen > 1 || (chosen === 0 && Option.isNone(input.namespace)) || (input.all && Option.isSome(input.namespace))
      ) {
        return yield* new Connection.CliError({
          message:
            "say what to invalidate: --key K (or --key-json J), --hash H (each with an optional --namespace N), " +
            "--namespace N, or --all"
        })
      }
      const cache = yield* Cache
      const target: Target = Option.isSome(key)
        ? { _tag: "Key", key: key.value, namespace: Option.getOrElse(input.namespace, () => cache.config.namespace) }
        : Option.isSome(input.hash)
        ? { _tag: "Hash", hash: input.hash.value, namespace: Option.getOrUndefined(input.namespace) }
        : input.all
        ? { _tag: "All" }
        : { _tag: "Namespace", namespace: Option.getOrThrow(input.namespace) }
      if (target._tag === "Hash" && !CacheKey.isHash(target.hash)) {
        return yield* new Connection.CliError({
          message: `--hash ${JSON.stringify(target.hash.slice(0, 80))} is not an entry hash (64 lowercase hex)`
        })
      }
      const what = describeTarget(target)
      if (!input.yes) {
        if (process.stdin.isTTY !== true) {
          return yield* new Connection.CliError({
            message: `not invalidating ${what} without a confirmation: add --yes (stdin is not a terminal)`
          })
        }
        const where = Connection.describe(input)
        const confirmed = yield* Prompt.confirm({
          message: `Invalidate ${what} (metadata in ${where.metadata}, payloads in ${where.payloads})?`
        })
        if (!confirmed) return yield* Format.output(input.json, { removed: 0, cancelled: true }, () => "cancelled")
      }
      const removed = yield* Effect.suspend(() => {
        switch (target._tag) {
          case "Key":
            return Effect.map(cache.invalidateKey(target.key, { namespace: target.namespace }), Number)
          case "Hash":
            return Effect.map(cache.invalidate(target.hash, { namespace: target.namespace }), Number)
          case "Namespace":
            return cache.invalidateNamespace(target.namespace)
          case "All":
            return cache.clear
        }
      })
      yield* Format.output(
        input.json,
        { removed, target },
        () =>
          `invalidated ${what}: ${removed} ${removed === 1 ? "entry" : "entries"} removed, with ${
            removed === 1 ? "its object" : "their objects"
          }`
      )
    }).pipe(Connection.provide(input, Connection.layer(input)))
).pipe(Command.withDescription(
  "remove entries (records, then objects): --key K | --hash H [--namespace N] | --namespace N | --all; asks first unless --yes"
))
