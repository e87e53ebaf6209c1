/**
 * `s3cache doctor`: checks what a deployment needs and says what to change. Redis is checked by
 * `RedisMetadataStore.diagnose` (reachable, authenticated, database, version, `maxmemory-policy`, Cluster coverage,
 * clock skew); the payload store through its port, with a probe object written, read, listed and deleted as the
 * cache does it (with the configured server-side encryption). Exit code 1 on any problem.
 */
import * as Command from "@effect/cli/Command"
import { BlobStore } from "@s3cache/core/BlobStore"
import * as CacheVariables from "@s3cache/core/CacheVariables"
import { MetadataStore } from "@s3cache/core/MetadataStore"
import { RedisMetadataStore } from "@s3cache/redis"
import * as Chunk from "effect/Chunk"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as crypto from "node:crypto"
import * as os from "node:os"
import * as Connection from "./connection.js"
import * as Format from "./format.js"

/** One finding, as `RedisMetadataStore.diagnose` reports its own. */
export type Check = RedisMetadataStore.Check

const ok = (name: string, detail: string): Check => ({ name, status: "ok", detail })
const problem = (name: string, detail: string, fix?: string): Check => ({ name, status: "problem", detail, fix })

/** A step that must not hang the doctor: bounded, and its failure is the check's detail. */
const bounded = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.timeoutFail({
      duration: "30 seconds",
      onTimeout: () => new Connection.CliError({ message: "no answer within 30 s" })
    }),
    Effect.mapError(Connection.messageOf),
    Effect.either
  )

// the variables as the layers see them: the flags over the environment (the command's ConfigProvider)
const configuration = Effect.map(
  CacheVariables.unknownVariables,
  (unknown): ReadonlyArray<Check> =>
    unknown.length === 0
      ? [ok("configuration", "every S3CACHE_* variable set is one s3cache reads")]
      : unknown.map(({ name, suggestion }) =>
        ({
          name: "configuration",
          status: "warning",
          detail: `${name} is set, but no s3cache package reads it`,
          fix: suggestion === undefined ? `remove ${name}` : `did you mean ${suggestion}? rename it`
        }) satisfies Check
      )
)

const metadataChecks = (connection: Connection.Connection) =>
  Effect.gen(function*() {
    if (Option.isNone(connection.redisUrl) && Option.isNone(connection.redisClusterNodes)) {
      return [problem("metadata store", Connection.noMetadataStore)]
    }
    const checks: Array<Check> = [
      ...yield* RedisMetadataStore.diagnoseConfig().pipe(
        Effect.catchAll((error) =>
          Effect.succeed([
            problem("redis configuration", Connection.messageOf(error), "fix the S3CACHE_REDIS_* variables")
          ])
        )
      )
    ]
    if (checks.some((check) => check.status === "problem")) return checks
    // the store as the cache builds it: its id (read or created) and its namespaces
    const store = yield* bounded(
      Effect.gen(function*() {
        const store = yield* MetadataStore
        return { id: yield* store.id, namespaces: (yield* store.namespaces).length }
      }).pipe(Effect.provide(Connection.metadataLayer(connection)))
    )
    checks.push(
      store._tag === "Right"
        ? ok("metadata store", `store id ${store.right.id}, ${store.right.namespaces} namespace(s)`)
        : problem("metadata store", store.left)
    )
    return checks
  })

const sse = Config.string("S3CACHE_S3_SSE").pipe(
  Config.option,
  Effect.map(Option.match({
    onNone: () => "",
    onSome: (mode) => (mode === "" ? "" : ` (server-side encryption ${mode}, S3CACHE_S3_SSE)`)
  })),
  Effect.orElseSucceed(() => "")
)

const payloadChecks = (connection: Connection.Connection) =>
  Effect.gen(function*() {
    const where = Connection.describe(connection).payloads
    // built in this scope (closed once the probe is deleted): the store is probed as the cache holds it, open
    const built = yield* bounded(
      Effect.map(Layer.build(Connection.blobLayer(connection)), (context) => Context.get(context, BlobStore))
    )
    if (built._tag === "Left") {
      return [problem("payload store", `${where}: ${built.left}`, "fix the S3CACHE_S3_* variables or the folder")]
    }
    const blobs = built.right
    const host = os.hostname().replace(/[^A-Za-z0-9.-]/g, "-").slice(0, 40) || "host"
    const prefix = "s3cache-doctor/"
    const key = `${prefix}${host}-${process.pid}-${crypto.randomBytes(6).toString("hex")}`
    const bytes = crypto.randomBytes(1024)
    const encryption = yield* sse
    const checks: Array<Check> = []
    const step = <A>(name: string, effect: Effect.Effect<A, unknown>, good: (a: A) => string | undefined) =>
      Effect.gen(function*() {
        const result = yield* bounded(effect)
        const failure = result._tag === "Left" ? result.left : good(result.right)
        checks.push(
          failure === undefined
            ? ok(name, `${where}: ${name.replace("payloads ", "")} (probe ${key})${encryption}`)
            : problem(name, `${where}: ${failure}`)
        )
        return failure === undefined
      })
    const wrote = yield* step("payloads writable", blobs.put(key, bytes), () => undefined)
    if (!wrote) return checks
    yield* step("payloads readable", blobs.get(key), (read) =>
      Option.isNone(read)
        ? "the probe just written reads as missing"
        : Buffer.compare(Buffer.from(read.value), bytes) !== 0
        ? "the probe reads back with other bytes"
        : undefined)
    yield* step(
      "payloads listable",
      // the probe's own key as the prefix: other probes left under s3cache-doctor/ cannot hide it
      Stream.runCollect(Stream.take(blobs.list(key), 10)),
      (listed) =>
        Chunk.some(listed, (info) => info.key === key)
          ? undefined
          : "the probe is not listed (orphan cleanup lists objects to find them)"
    )
    yield* step("payloads deletable", blobs.delete([key]), (result) =>
      result.failed.length > 0
        ? `the probe could not be deleted: ${result.failed[0]!.error.message}`
        : undefined)
    return checks
  }).pipe(Effect.scoped)

const line = (check: Check) => {
  const status = check.status === "ok" ? "ok     " : check.status === "warning" ? "warning" : "PROBLEM"
  return `${status}  ${check.name.padEnd(24)} ${check.detail}${
    check.fix === undefined ? "" : `\n${" ".repeat(34)}fix: ${check.fix}`
  }`
}

export const command = Command.make("doctor", Connection.options, (connection) =>
  Effect.gen(function*() {
    const checks = [
      ...yield* configuration,
      ...yield* metadataChecks(connection),
      ...yield* payloadChecks(connection)
    ]
    const problems = checks.filter((check) => check.status === "problem").length
    const warnings = checks.filter((check) => check.status === "warning").length
    yield* Format.output(connection.json, { ok: problems === 0, problems, warnings, checks }, () =>
      [
        ...checks.map(line),
        "",
        problems === 0
          ? `no problem found${warnings > 0 ? ` (${warnings} warning${warnings === 1 ? "" : "s"})` : ""}`
          : `${problems} problem${problems === 1 ? "" : "s"} found`
      ].join("\n"))
    if (problems > 0) yield* Format.exitWithProblem
  }).pipe(Effect.withConfigProvider(Connection.configProvider(connection)))).pipe(
    Command.withDescription(
      "check Redis (reachable, password, database, version, maxmemory-policy, Cluster coverage, clock skew) and the " +
        "payload store (write, read, list, delete a probe with the configured SSE); exit code 1 on any problem"
    )
  )
