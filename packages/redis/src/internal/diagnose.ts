/**
 * `RedisMetadataStore.diagnose`: connect to Redis the way the store would, and report what an operator should change,
 * as a list of checks. A connection that fails is the check it fails (reachable, authenticated, database); on a ready
 * one run the server's checks (`checks.ts`); a Cluster's nodes are checked one by one and merged into one list. Every
 * step is bounded, its own connection is closed, and nothing fails: a failure is a check.
 *
 * @since 0.2.0
 */
import * as CacheConfig from "@s3cache/core/CacheConfig"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type { ClusterOptions, RedisOptions } from "ioredis"
import { type Check, type Connected, messageOf, ok, problem, serverChecks } from "./checks.js"
import * as client from "./client.js"
import { explain, isDatabaseRefusal, type Origin, originOf, type Problem, tcpOpens } from "./connection.js"
import { Either } from "./effect3.js"

/** What `diagnose` uses of the store's options. */
export interface DiagnoseOptions {
  readonly url?: string | undefined
  readonly nodes?: ReadonlyArray<{ readonly host: string; readonly port: number }> | undefined
  readonly client?: client.Client | undefined
  readonly username?: string | undefined
  readonly password?: Redacted.Redacted | undefined
  readonly commandTimeout?: Duration.DurationInput | undefined
  readonly connectTimeout?: Duration.DurationInput | undefined
  readonly redisOptions?: RedisOptions | undefined
  readonly clusterOptions?: ClusterOptions | undefined
}

const method = "RedisMetadataStore.diagnose"

/** The check a connection problem fails: the server not being there, refusing the password, refusing the database. */
const checkOf = (found: Problem): Check => {
  const [detail, fix] = splitFix(found.description)
  const name = found.kind === "noauth" || found.kind === "wrongpass"
    ? "redis authenticated"
    : found.kind === "database"
    ? "redis database"
    : "redis reachable"
  return problem(name, detail, fix)
}

/** "what happened (the server's words): what to change" → [what happened, what to change] */
const splitFix = (description: string): readonly [string, string] => {
  const at = description.indexOf("): ")
  return at < 0 ? [description, description] : [description.slice(0, at + 1), capitalize(description.slice(at + 3))]
}

const capitalize = (text: string) => text.charAt(0).toUpperCase() + text.slice(1)

interface Bounds {
  readonly commandTimeoutMs: number
  readonly connectTimeoutMs: number
}

/** Connect to one server (a standalone url, or one node of a cluster) and run every check on it. */
const diagnoseServer = (connection: client.ConnectionOptions, bounds: Bounds) =>
  Effect.gen(function*() {
    const origin = originOf(connection)
    const checks: Array<Check> = []
    // the last error that says what went wrong (ioredis follows it with errors that say nothing new), else the last
    let lastError: unknown
    let lastExplained: unknown
    let databaseRefused: unknown
    // the first error that says what is wrong ends the wait: ioredis may take a socket timeout more to give up
    let explained: () => void = () => {}
    const failed = new Promise<void>((resolve) => {
      explained = resolve
    })
    const owned = yield* Effect.acquireRelease(
      Effect.sync(() => {
        // one connection attempt: no reconnection, so a failure ends the client
        const created = client.create({
          ...connection,
          redisOptions: { ...connection.redisOptions, retryStrategy: () => null, enableReadyCheck: true }
        })
        created.on("error", (error: Error) => {
          if (isDatabaseRefusal(error)) {
            databaseRefused = error
            created.disconnect()
          }
          lastError = error
          if (explain(error, origin) !== undefined) {
            lastExplained = error
            explained()
          }
        })
        return created
      }),
      (created) => Effect.sync(() => created.disconnect())
    )
    // connect, authenticate, select the database, answer the ready check: each bounded by ioredis (connectTimeout,
    // commandTimeout, socketTimeout), and all of it by this
    const socketTimeoutMs = Math.max(1000, bounds.commandTimeoutMs * 4)
    const settleMs = bounds.connectTimeoutMs + socketTimeoutMs + 500
    const ready = yield* Effect.tryPromise(() => Promise.race([owned.connect(), failed])).pipe(
      Effect.timeoutOption(Duration.millis(settleMs)),
      Effect.either
    )
    const connected = Either.isRight(ready) && Option.isSome(ready.right) && lastExplained === undefined &&
      owned.status === "ready"
    if (!connected) {
      const cause = databaseRefused ?? lastExplained ?? lastError
      let found = cause !== undefined ? explain(cause, origin) : undefined
      if (found?.kind === "timeout" && origin.tls) {
        const opens = yield* Effect.promise(() => tcpOpens(origin.host, origin.port, bounds.connectTimeoutMs))
        found = explain(cause, origin, opens)
      }
      if (found !== undefined && found.kind !== "noauth" && found.kind !== "wrongpass" && found.kind !== "database") {
        return [checkOf(found)]
      }
      if (found === undefined) {
        return [problem(
          "redis reachable",
          `Redis at ${origin.server} did not become ready within ${settleMs} ms` +
            (cause !== undefined ? ` (${messageOf(cause)})` : ""),
          "Check the host and port of the url (url, S3CACHE_REDIS_URL) and the network"
        )]
      }
      checks.push(
        ok("redis reachable", `Redis at ${origin.server} accepted the connection${origin.tls ? " (TLS)" : ""}`)
      )
      if (found.kind === "database") {
        checks.push(ok("redis authenticated", authenticatedDetail(origin)))
      }
      checks.push(checkOf(found))
      return checks
    }
    checks.push(
      ok("redis reachable", `Redis at ${origin.server} answered${origin.tls ? " over TLS" : ""}`),
      ok("redis authenticated", authenticatedDetail(origin)),
      ok("redis database", `database ${databaseOf(connection)} selected`)
    )
    const redis = owned as unknown as Connected
    checks.push(...(yield* serverChecks(redis, bounds.commandTimeoutMs)))
    return checks
  })

const authenticatedDetail = (origin: Origin): string =>
  origin.password === undefined
    ? "no password given, and the server asks for none"
    : `the server accepted the ${origin.username !== undefined ? "user and password" : "password"}`

const databaseOf = (connection: client.ConnectionOptions): string => {
  const db = connection.redisOptions?.db
  if (db !== undefined) return String(db)
  try {
    return new URL(connection.url ?? "redis://localhost:6379/0").pathname.replace(/^\//, "") || "0"
  } catch {
    return "0"
  }
}

const rank = { ok: 0, warning: 1, problem: 2 } as const

/** The checks of several nodes as one list: per check, the worst status, and the nodes that are not ok. */
const merge = (perNode: ReadonlyArray<readonly [string, ReadonlyArray<Check>]>): ReadonlyArray<Check> => {
  const names: Array<string> = []
  for (const [, checks] of perNode) {
    for (const check of checks) if (!names.includes(check.name)) names.push(check.name)
  }
  return names.map((name) => {
    const found = perNode.flatMap(([node, checks]) =>
      checks.filter((check) => check.name === name).map((check) => [node, check] as const)
    )
    const worst = found.reduce((a, b) => rank[b[1].status] > rank[a[1].status] ? b : a)[1]
    const notOk = found.filter(([, check]) => check.status !== "ok")
    const shown = notOk.length > 0 ? notOk : found
    return {
      name,
      status: worst.status,
      detail: shown.map(([node, check]) => `${node}: ${check.detail}`).join("; "),
      ...(worst.fix !== undefined ? { fix: worst.fix } : {})
    }
  })
}

/** @internal */
export const diagnose = (options: DiagnoseOptions = {}): Effect.Effect<ReadonlyArray<Check>> =>
  Effect.gen(function*() {
    const invalid = (detail: string, fix: string) => [problem("redis options", detail, fix)]
    if ([options.url, options.nodes, options.client].filter((_) => _ !== undefined).length > 1) {
      return invalid("more than one of url, nodes and client", "Give one of url, nodes or client")
    }
    if (options.url !== undefined) {
      const found = client.checkUrl(options.url)
      if (found !== undefined) return invalid(found, "Fix the url (url, S3CACHE_REDIS_URL)")
    }
    const commandTimeout = CacheConfig.positiveDuration(options.commandTimeout ?? "1 second", "commandTimeout", method)
    const connectTimeout = CacheConfig.positiveDuration(options.connectTimeout ?? "1 second", "connectTimeout", method)
    if (Either.isLeft(commandTimeout)) return invalid(commandTimeout.left.description, "Fix commandTimeout")
    if (Either.isLeft(connectTimeout)) return invalid(connectTimeout.left.description, "Fix connectTimeout")
    const bounds: Bounds = {
      commandTimeoutMs: Duration.toMillis(commandTimeout.right),
      connectTimeoutMs: Duration.toMillis(connectTimeout.right)
    }
    const connection = (url: string | undefined): client.ConnectionOptions => ({
      url,
      username: options.username,
      password: options.password,
      commandTimeoutMs: bounds.commandTimeoutMs,
      connectTimeoutMs: bounds.connectTimeoutMs,
      redisOptions: options.redisOptions
    })
    if (options.client !== undefined) return yield* diagnoseClient(options.client, bounds)
    if (options.nodes !== undefined) {
      if (options.nodes.length === 0) return invalid("nodes is empty", "Give the cluster's nodes as host:port")
      const scheme = options.redisOptions?.tls !== undefined ? "rediss" : "redis"
      // each node on a connection of its own (database 0, the only one a cluster has): a Cluster client would hide
      // which node is wrong behind "None of startup nodes is available"
      const perNode = yield* Effect.forEach(
        options.nodes,
        (node) =>
          Effect.map(
            Effect.scoped(diagnoseServer(connection(`${scheme}://${hostOf(node.host)}:${node.port}/0`), bounds)),
            (checks) => [`${node.host}:${node.port}`, checks] as const
          ),
        { concurrency: 4 }
      )
      return merge(perNode)
    }
    return yield* Effect.scoped(diagnoseServer(connection(options.url ?? "redis://localhost:6379/0"), bounds))
  }).pipe(
    // a defect is a bug of this function, but the caller still gets a list
    Effect.catchAllDefect((defect) =>
      Effect.succeed([problem("redis reachable", `the diagnosis failed: ${messageOf(defect)}`, "Report this as a bug")])
    )
  )

const hostOf = (host: string): string => host.includes(":") && !host.startsWith("[") ? `[${host}]` : host

/** A client the caller owns: only the checks that need a ready connection; it is neither connected nor closed here. */
const diagnoseClient = (given: client.Client, bounds: Bounds) =>
  Effect.gen(function*() {
    const server = client.describeServer(given)
    if (given.status !== "ready") {
      return [problem(
        "redis reachable",
        `the client you gave (to ${server}) is ${given.status}, not ready`,
        "Connect it first, or give url or nodes instead, which diagnose connects and explains"
      )]
    }
    const redis = given as unknown as Connected
    return [
      ok("redis reachable", `the client you gave is connected to ${server}`),
      ...(yield* serverChecks(redis, bounds.commandTimeoutMs))
    ]
  })
