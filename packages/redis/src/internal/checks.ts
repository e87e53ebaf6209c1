/**
 * The checks of a Redis server the store is connected to: what its answers to INFO, CONFIG GET and TIME mean for the
 * store (its version, its eviction policy, a Cluster's coverage, its clock against this host's), as `Check`s that say
 * what to change. Every command is bounded, and a refused one is a warning, never a failure.
 *
 * @since 0.2.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { Either } from "./effect3.js"

/**
 * One finding of `diagnose` (documented as `RedisMetadataStore.Check`, which is this type).
 *
 * @internal
 */
export interface Check {
  readonly name: string
  readonly status: "ok" | "warning" | "problem"
  readonly detail: string
  readonly fix?: string | undefined
}

/**
 * The oldest Redis the store works with: its scripts read the server's clock (`TIME`) and then write, which Redis
 * allows (replicating the scripts' effects rather than the scripts) by default from 5.0 on; everything else they and
 * the store send (UNLINK, multi-key EXISTS, SET PX) is older.
 */
const minimumVersion = [5, 0, 0] as const

const skewWarningMs = 1_000
const skewProblemMs = 30_000

/** @internal */
export const ok = (name: string, detail: string): Check => ({ name, status: "ok", detail })
const warning = (name: string, detail: string, fix: string): Check => ({ name, status: "warning", detail, fix })
/** @internal */
export const problem = (name: string, detail: string, fix: string): Check => ({ name, status: "problem", detail, fix })

/** An error's first line, bounded, for a check's detail. */
export const messageOf = (error: unknown): string =>
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

/** What the checks send on a ready connection: a client of either major of ioredis has both. */
export interface Connected {
  readonly call: (...args: Array<string>) => Promise<unknown>
  readonly info: (section: string) => Promise<unknown>
}

/**
 * The checks that need a ready connection: version, maxmemory-policy, cluster coverage, clock skew. Each command is
 * bounded by `commandTimeoutMs`.
 *
 * @internal
 */
export const serverChecks = (redis: Connected, commandTimeoutMs: number) =>
  Effect.gen(function*() {
    const checks: Array<Check> = []
    const timeout = commandTimeoutMs
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
