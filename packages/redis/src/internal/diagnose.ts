/**
 * `RedisMetadataStore.diagnose`: connect to Redis the way the store would, and report what an operator should change,
 * as a list of checks. Every step is bounded, its own connection is closed, and nothing fails: a failure is a check.
 *
 * @since 0.2.0
 */
import * as CacheConfig from "@s3cache/core/CacheConfig"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type { ClusterOptions, RedisOptions } from "ioredis"
import * as client from "./client.js"
import { Either } from "./effect3.js"

/** @internal */
export interface Check {
  readonly name: string
  readonly status: "ok" | "warning" | "problem"
  readonly detail: string
  readonly fix?: string | undefined
}

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

/**
 * The oldest Redis the store works with: its scripts read the server's clock (`TIME`) and then write, which Redis
 * allows (replicating the scripts' effects rather than the scripts) by default from 5.0 on; everything else they and
 * the store send (UNLINK, multi-key EXISTS, SET PX) is older.
 */
const minimumVersion = [5, 0, 0] as const

const skewWarningMs = 1_000
const skewProblemMs = 30_000

const method = "RedisMetadataStore.diagnose"

const ok = (name: string, detail: string): Check => ({ name, status: "ok", detail })
const warning = (name: string, detail: string, fix: string): Check => ({ name, status: "warning", detail, fix })
const problem = (name: string, detail: string, fix: string): Check => ({ name, status: "problem", detail, fix })

/** The check a connection problem fails: the server not being there, refusing the password, refusing the database. */
const checkOf = (found: client.Problem): Check => {
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

const messageOf = (error: unknown): string =>
  (error instanceof Error ? error.message : String(error)).split("\n")[0]!.slice(0, 160)

/** "7.0.15" → [7, 0, 15] */
const parseVersion = (text: string): ReadonlyArray<number> => text.split(".").map((part) => Number.parseInt(part, 10))

const below = (version: ReadonlyArray<number>, minimum: ReadonlyArray<number>): boolean => {
  for (let i = 0; i < minimum.length; i++) {
    const part = version[i] ?? 0
    if (part !== minimum[i]!) return part < minimum[i]!
  }
  return false
}

/** `field:value` lines of an INFO reply */
const infoFields = (reply: unknown): Map<string, string> => {
  const fields = new Map<string, string>()
  for (const line of String(reply).split(/\r?\n/)) {
    const at = line.indexOf(":")
    if (at > 0 && !line.startsWith("#")) fields.set(line.slice(0, at), line.slice(at + 1).trim())
  }
  return fields
}

const formatBytes = (bytes: number): string =>
  bytes >= 1024 ** 3
    ? `${(bytes / 1024 ** 3).toFixed(1)} GB`
    : bytes >= 1024 ** 2
    ? `${(bytes / 1024 ** 2).toFixed(1)} MB`
    : `${bytes} B`

const policyCheck = (policy: string, maxmemory: number): Check => {
  const name = "redis maxmemory-policy"
  const limit = maxmemory > 0 ? `maxmemory ${formatBytes(maxmemory)}` : "maxmemory 0: no limit"
  const set = "CONFIG SET maxmemory-policy noeviction (and in redis.conf, or a managed service's parameter group)"
  if (policy === "noeviction") {
    return ok(name, `noeviction (${limit}): at maxmemory, commits fail and run uncached; hits keep working`)
  }
  if (policy === "volatile-lru" || policy === "volatile-ttl") {
    return ok(name, `${policy} (${limit}): Redis may evict records and locks, never the indexes`)
  }
  if (policy === "volatile-lfu" || policy === "volatile-random") {
    return warning(
      name,
      `${policy} (${limit}): Redis may evict records and locks (never the indexes), but not the least recently ` +
        "read: a record evicted elsewhere in the LRU index leaves a ghost that counts as an entry until it reaches " +
        "the index's old end or its TTL passes, so fewer live entries fit in maxCacheEntries",
      `Set noeviction (recommended), volatile-lru or volatile-ttl: ${set}`
    )
  }
  if (policy.startsWith("allkeys-")) {
    const why = "Redis may evict the store's indexes, the namespace registry and the store id: maxCacheEntries is " +
      "then not enforced until entries expire, clear() and the CLI miss namespaces, and objects written under a " +
      "lost store id are left out of cleanupOrphanedObjects"
    const fix = `Set noeviction (recommended), volatile-lru or volatile-ttl: ${set}`
    return maxmemory > 0
      ? problem(name, `${policy} (${limit}): ${why}`, fix)
      : warning(name, `${policy} (${limit}): nothing is evicted yet, but once maxmemory is set, ${why}`, fix)
  }
  return warning(
    name,
    `${policy} (${limit}): not a policy this store knows`,
    `Set noeviction (recommended), volatile-lru or volatile-ttl: ${set}`
  )
}

const skewCheck = (skewMs: number, roundTripMs: number): Check => {
  const name = "clock skew"
  const size = Math.abs(skewMs)
  const detail = `this host's clock is ${Math.round(size)} ms ${skewMs >= 0 ? "ahead of" : "behind"} Redis's ` +
    `(±${Math.ceil(roundTripMs / 2)} ms, half the round trip)`
  const why = "records carry the time they were written by the writer's clock and each reader judges their freshness " +
    "by its own, while Redis expires keys and lock leases by its clock: hosts whose clocks disagree serve entries past " +
    "their TTL, or take fresh ones for stale (grace, refresh ahead)"
  const fix = `Synchronize this host's clock (NTP, chrony), and Redis's host's: ${why}`
  if (size - roundTripMs / 2 > skewProblemMs) return problem(name, detail, fix)
  if (size - roundTripMs / 2 > skewWarningMs) return warning(name, detail, fix)
  return ok(name, detail)
}

interface Bounds {
  readonly commandTimeoutMs: number
  readonly connectTimeoutMs: number
}

/** One command with a deadline of its own, as an Either: a refusal or a timeout is something to report. */
const command = <A>(run: () => Promise<A>, timeoutMs: number) =>
  Effect.tryPromise(run).pipe(
    Effect.timeoutFail({
      duration: Duration.millis(timeoutMs),
      onTimeout: () => new Error(`no answer within ${timeoutMs} ms`)
    }),
    Effect.mapError((error) => error instanceof Error ? error : new Error(String(error))),
    Effect.either
  )

interface Connected {
  readonly call: (...args: Array<string>) => Promise<unknown>
  readonly info: (section: string) => Promise<unknown>
}

/** The checks that need a ready connection: version, maxmemory-policy, cluster coverage, clock skew. */
const serverChecks = (redis: Connected, bounds: Bounds) =>
  Effect.gen(function*() {
    const checks: Array<Check> = []
    const timeout = bounds.commandTimeoutMs
    const server = yield* command(() => redis.info("server"), timeout)
    const memory = yield* command(() => redis.info("memory"), timeout)
    let clusterMode = false
    if (Either.isLeft(server)) {
      checks.push(warning(
        "redis version",
        `INFO was refused (${messageOf(server.left)}): the version could not be checked`,
        `Make sure the server runs Redis ${minimumVersion.join(".")} or later, or allow INFO to this user to check`
      ))
    } else {
      const fields = infoFields(server.right)
      const version = fields.get("redis_version") ?? "unknown"
      clusterMode = fields.get("redis_mode") === "cluster"
      checks.push(
        below(parseVersion(version), minimumVersion)
          ? problem(
            "redis version",
            `Redis ${version}: the store's scripts need ${minimumVersion.join(".")} or later (they read the ` +
              "server's clock before writing, which older servers refuse)",
            `Upgrade Redis to ${minimumVersion.join(".")} or later`
          )
          : ok("redis version", `Redis ${version} (${minimumVersion.join(".")} or later needed)`)
      )
    }
    if (Either.isLeft(memory)) {
      checks.push(warning(
        "redis maxmemory-policy",
        `INFO memory was refused (${messageOf(memory.left)}): the eviction policy could not be checked`,
        "Make sure maxmemory-policy is noeviction, volatile-lru or volatile-ttl, or allow INFO to this user"
      ))
    } else {
      const fields = infoFields(memory.right)
      checks.push(policyCheck(fields.get("maxmemory_policy") ?? "unknown", Number(fields.get("maxmemory") ?? 0)))
    }
    if (clusterMode) {
      const coverage = yield* command(() => redis.call("CONFIG", "GET", "cluster-require-full-coverage"), timeout)
      const name = "redis cluster coverage"
      const fix = "CONFIG SET cluster-require-full-coverage no on every node (and in its config file)"
      if (Either.isLeft(coverage)) {
        checks.push(warning(
          name,
          `CONFIG GET was refused (${messageOf(coverage.left)}): cluster-require-full-coverage could not be checked`,
          `Make sure it is no on every node: ${fix}; or allow CONFIG GET to this user to check`
        ))
      } else {
        const reply = coverage.right
        const value = Array.isArray(reply)
          ? String(reply[1] ?? "")
          : typeof reply === "object" && reply !== null
          ? String((reply as Record<string, unknown>)["cluster-require-full-coverage"] ?? "")
          : ""
        checks.push(
          value === "no"
            ? ok(name, "cluster-require-full-coverage no: with a master down, the others keep serving their slots")
            : warning(
              name,
              `cluster-require-full-coverage ${value || "unknown"}: with one master down, the healthy ones refuse ` +
                "reads and writes too (CLUSTERDOWN), so every namespace runs uncached",
              fix
            )
        )
      }
    }
    const before = yield* Clock.currentTimeMillis
    const time = yield* command(() => redis.call("TIME"), timeout)
    const after = yield* Clock.currentTimeMillis
    if (Either.isLeft(time)) {
      checks.push(warning(
        "clock skew",
        `TIME was refused (${messageOf(time.left)}): the clocks could not be compared`,
        "Allow TIME to this user, or make sure this host's clock is synchronized (NTP)"
      ))
    } else {
      const [seconds, micros] = Array.isArray(time.right) ? time.right.map(Number) : [Number.NaN, Number.NaN]
      const serverMs = seconds! * 1000 + micros! / 1000
      checks.push(
        Number.isFinite(serverMs)
          ? skewCheck((before + after) / 2 - serverMs, after - before)
          : warning("clock skew", `TIME answered ${messageOf(time.right)}`, "Check that this is a Redis server")
      )
    }
    return checks
  })

/** Connect to one server (a standalone url, or one node of a cluster) and run every check on it. */
const diagnoseServer = (connection: client.ConnectionOptions, bounds: Bounds) =>
  Effect.gen(function*() {
    const origin = client.originOf(connection)
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
          if (client.isDatabaseRefusal(error)) {
            databaseRefused = error
            created.disconnect()
          }
          lastError = error
          if (client.explain(error, origin) !== undefined) {
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
      let found = cause !== undefined ? client.explain(cause, origin) : undefined
      if (found?.kind === "timeout" && origin.tls) {
        const opens = yield* Effect.promise(() => client.tcpOpens(origin.host, origin.port, bounds.connectTimeoutMs))
        found = client.explain(cause, origin, opens)
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
    checks.push(...(yield* serverChecks(redis, bounds)))
    return checks
  })

const authenticatedDetail = (origin: client.Origin): string =>
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
      ...(yield* serverChecks(redis, bounds))
    ]
  })
