/**
 * The ioredis client: options that bound every fault (see RELIABILITY.md), the check of a Redis URL, the scripts
 * registered once, and the mapping of ioredis failures to `MetadataStoreError`.
 *
 * @since 0.1.0
 */
import { MetadataStoreError } from "@s3cache/core/CacheError"
import type { StoreErrorReason } from "@s3cache/core/CacheError"
import * as CacheTracing from "@s3cache/core/CacheTracing"
import * as StoreDeadline from "@s3cache/core/StoreDeadline"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type { ClusterNode, ClusterOptions, RedisOptions } from "ioredis"
import { Cluster, Redis } from "ioredis"
import * as scripts from "./scripts.js"

/** Where a connection goes: what ioredis keeps in a standalone client's (or a cluster node's) options. */
interface Address {
  readonly host?: string | undefined
  readonly port?: number | undefined
}

/**
 * What the store uses of a client, whatever major of ioredis made it. Replies are `unknown` and read by value: they
 * depend on the client's options (`replyMapping`, `stringNumbers`), not on its declared types.
 */
interface Commands {
  /** `"ready"` once connected (ioredis 5 and 6 both) */
  readonly status: string
  /** `true` on a `Cluster`, `false` on a `Redis`: set by both majors, and unlike `instanceof` it holds across majors */
  readonly isCluster: boolean
  once(event: "ready" | "end", listener: () => void): unknown
  off(event: "ready" | "end", listener: () => void): unknown
  defineCommand(name: string, definition: { lua: string }): void
  sadd(key: string, member: string): Promise<unknown>
  srem(key: string, member: string): Promise<unknown>
  sismember(key: string, member: string): Promise<unknown>
  smembers(key: string): Promise<unknown>
  exists(...keys: Array<string>): Promise<unknown>
  zscan(key: string, cursor: string, countToken: "COUNT", count: number): Promise<unknown>
  /** a record read as bytes: the lookup of an entry whose LRU score is fresh */
  getBuffer(key: string): Promise<Buffer | null>
}

/**
 * An ioredis `Redis` (to one server or through Sentinels), major 5 or 6.
 *
 * @internal
 */
export interface StandaloneClient extends Commands {
  readonly options: Address
}

/**
 * An ioredis `Cluster`, major 5 or 6.
 *
 * @internal
 */
export interface ClusterClient extends Commands {
  nodes(role: "master"): ReadonlyArray<{ readonly options: Address }>
}

/**
 * A client of either major of ioredis: structural, so that a client made by the major the user installed fits, and so
 * does one made by another major than the one this package resolves (both ship their own classes).
 *
 * @internal
 */
export type Client = StandaloneClient | ClusterClient

const isCluster = (client: Client): client is ClusterClient => client.isCluster

/** The scripts as client methods (ioredis `defineCommand`: EVALSHA, and EVAL once on NOSCRIPT). */
export interface Scripted {
  /** replies with the record's bytes (a Buffer), which may hold an inline payload */
  readonly s3cacheLookupBuffer: (...args: Array<string | number>) => Promise<unknown>
  readonly s3cacheAcquireLock: (...args: Array<string | number>) => Promise<unknown>
  readonly s3cacheRenewLock: (...args: Array<string | number>) => Promise<unknown>
  readonly s3cacheReleaseLock: (...args: Array<string | number>) => Promise<unknown>
  readonly s3cacheCommit: (...args: Array<string | number | Buffer>) => Promise<unknown>
  readonly s3cacheGetManyBuffer: (...args: Array<string | number>) => Promise<unknown>
  readonly s3cacheRemove: (...args: Array<string | number>) => Promise<unknown>
  readonly s3cacheRemoveIf: (...args: Array<string | number>) => Promise<unknown>
  readonly s3cacheClearNamespace: (...args: Array<string | number>) => Promise<unknown>
  readonly s3cacheSize: (...args: Array<string | number>) => Promise<unknown>
  readonly s3cacheStoreId: (...args: Array<string | number>) => Promise<unknown>
}

/** @internal */
export const defineScripts = (client: Client): Client & Scripted => {
  // numberOfKeys is given per call (the first argument), since getMany and remove take a variable number of keys;
  // ioredis defines `<name>Buffer` beside each, which replies with Buffers instead of strings
  const define = (name: string, lua: string) => {
    if (!(name in client)) client.defineCommand(name, { lua })
  }
  define("s3cacheLookup", scripts.lookup)
  define("s3cacheAcquireLock", scripts.acquireLock)
  define("s3cacheRenewLock", scripts.renewLock)
  define("s3cacheReleaseLock", scripts.releaseLock)
  define("s3cacheCommit", scripts.commit)
  define("s3cacheGetMany", scripts.getMany)
  define("s3cacheRemove", scripts.remove)
  define("s3cacheRemoveIf", scripts.removeIf)
  define("s3cacheClearNamespace", scripts.clearNamespace)
  define("s3cacheSize", scripts.size)
  define("s3cacheStoreId", scripts.storeId)
  return client as Client & Scripted
}

/** @internal */
export interface ConnectionOptions {
  readonly url?: string | undefined
  readonly nodes?: ReadonlyArray<ClusterNode> | undefined
  readonly username?: string | undefined
  readonly password?: Redacted.Redacted | undefined
  readonly commandTimeoutMs: number
  readonly connectTimeoutMs: number
  readonly redisOptions?: RedisOptions | undefined
  readonly clusterOptions?: ClusterOptions | undefined
}

/**
 * Options measured to bound every injected fault (RELIABILITY.md): no offline queue, no retry of a command, no
 * re-sent command after a reconnect (a write must never run twice), a deadline on every command and on a half-dead
 * socket, reconnection with a capped backoff.
 */
const boundedOptions = (options: ConnectionOptions): RedisOptions => ({
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  commandTimeout: options.commandTimeoutMs,
  socketTimeout: Math.max(1000, options.commandTimeoutMs * 4),
  connectTimeout: options.connectTimeoutMs,
  retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
  ...(options.username !== undefined ? { username: options.username } : {}),
  ...(options.password !== undefined ? { password: Redacted.value(options.password) } : {}),
  ...options.redisOptions
})

/**
 * Options without `undefined` values. ioredis 6 types `replyMapping` as `ReplyMappingMode | undefined` in its options
 * but as `ReplyMappingMode` in its constructors, so under `exactOptionalPropertyTypes` a `RedisOptions` does not fit
 * them; options without `undefined` fit both majors. Dropping an `undefined` value changes nothing: ioredis fills
 * in a default for it as for a missing one.
 */
type Defined<T> = { [K in keyof T]: Exclude<T[K], undefined> }

const defined = <T extends object>(options: T): Defined<T> =>
  Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Defined<T>

type DefinedClusterOptions = Defined<Omit<ClusterOptions, "redisOptions">> & {
  readonly redisOptions?: Defined<NonNullable<ClusterOptions["redisOptions"]>>
}

/**
 * A client this package creates and closes: one of either major, seen through what the store and its finalizer use.
 *
 * @internal
 */
export type Owned = Client & {
  connect(): Promise<unknown>
  quit(): Promise<unknown>
  disconnect(): void
  on(event: "error", listener: (error: Error) => void): unknown
  on(event: "ready", listener: () => void): unknown
}

/**
 * A client of the ioredis this package resolves: the peer the user installed, 5 or 6. Both majors take these options;
 * ioredis 6 speaks RESP3 (`HELLO 3`, falling back to RESP2 on a server before Redis 6) with replies in RESP2 shapes
 * unless `redisOptions.replyMapping` says otherwise, and the store reads either.
 *
 * @internal
 */
export const create = (options: ConnectionOptions): Owned => {
  if (options.nodes !== undefined) {
    const { enableOfflineQueue: _, ...redisOptions } = boundedOptions(options)
    const clusterOptions: ClusterOptions = {
      lazyConnect: true,
      // the cluster's own queue ignores commandTimeout and hangs: it must be off at this level
      enableOfflineQueue: false,
      slotsRefreshTimeout: 1000,
      clusterRetryStrategy: (attempt) => Math.min(attempt * 100, 1000),
      redisOptions,
      ...options.clusterOptions
    }
    const { redisOptions: nodeOptions, ...rest } = clusterOptions
    const exact: DefinedClusterOptions = {
      ...defined(rest),
      ...(nodeOptions !== undefined ? { redisOptions: defined(nodeOptions) } : {})
    }
    return new Cluster(options.nodes as Array<ClusterNode>, exact)
  }
  return options.url !== undefined
    ? new Redis(options.url, defined(boundedOptions(options)))
    : new Redis(defined(boundedOptions(options)))
}

/**
 * What is wrong with a Redis URL, or `undefined`: ioredis takes almost any string (`not-a-url` as a host name,
 * `http://127.0.0.1:6379` as the host `http`) and fails later with a connection error that does not say why.
 *
 * @internal
 */
export const checkUrl = (url: string): string | undefined => {
  const expected = "expected redis://[user:password@]host[:port][/db] or rediss://… for TLS (url, S3CACHE_REDIS_URL)"
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    // what does not parse is not shown when it may hold a password in its userinfo, and is shown without the value of
    // a password parameter
    const shown = url.includes("@")
      ? "(not shown: it may hold a password)"
      : JSON.stringify(redactQuery(url).slice(0, 80))
    return `url ${shown} is not a URL: ${expected}`
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    return `url ${JSON.stringify(redactUrl(parsed))} has the scheme ${parsed.protocol.slice(0, -1)}: ${expected}`
  }
  if (parsed.hostname === "") return `url ${JSON.stringify(redactUrl(parsed))} names no host: ${expected}`
  const db = parsed.pathname.replace(/^\//, "")
  if (db !== "" && !/^\d{1,9}$/.test(db)) {
    return `the database of url ${JSON.stringify(redactUrl(parsed))} is ${JSON.stringify(db)}: it must be a number ` +
      `(0 to the server's \`databases\` - 1); ${expected}`
  }
  return undefined
}

/** The URL without its password (in its userinfo, or a `password` query parameter), for messages. */
const redactUrl = (url: URL): string => {
  const copy = new URL(url.href)
  if (copy.password !== "") copy.password = "***"
  const search = redactQuery(copy.search)
  if (search !== copy.search) copy.search = search
  return copy.href
}

/**
 * `text` with the value of every `password` query parameter as `***`: ioredis takes each query parameter of a URL as
 * an option (`redis://host:6379/0?password=…`), so one may hold the password. The name is compared decoded and in any
 * case, so that `Password` or `pass%77ord` is hidden too.
 */
const redactQuery = (text: string): string => {
  const at = text.indexOf("?")
  if (at < 0) return text
  const pairs = text.slice(at + 1).split("&").map((pair) => {
    const equals = pair.indexOf("=")
    return equals >= 0 && decodedName(pair.slice(0, equals)).toLowerCase() === "password"
      ? `${pair.slice(0, equals)}=***`
      : pair
  })
  return `${text.slice(0, at + 1)}${pairs.join("&")}`
}

const decodedName = (name: string): string => {
  try {
    return decodeURIComponent(name.replace(/\+/g, " "))
  } catch {
    return name
  }
}

/**
 * A command that found no connection, carrying why there is none (the `Problem` that `watch` of `connection.ts` kept):
 * what `failure` reports instead of ioredis's "Stream isn't writeable and enableOfflineQueue options is false", which
 * says the same for every cause. Declared here, where `failure` reads it, so that `connection.ts` depends on this
 * module and not the other way round.
 *
 * @internal
 */
export class ConnectionProblem extends Error {
  constructor(readonly problem: { readonly kind: string; readonly description: string }, cause: unknown) {
    super(problem.description, { cause })
    this.name = "ConnectionProblem"
  }
}

/** Where the client talks to, for spans and messages. */
export const describeServer = (client: Client): string => {
  if (isCluster(client)) {
    return client.nodes("master").map((node) => `${node.options.host}:${node.options.port}`).join(",") || "cluster"
  }
  return `${client.options.host ?? "localhost"}:${client.options.port ?? 6379}`
}

const reasonOf = (error: unknown): StoreErrorReason => {
  const message = error instanceof Error ? error.message : String(error)
  const name = error instanceof Error ? error.name : ""
  if (/timed out|timeout/i.test(message)) return "Timeout"
  if (name === "ReplyError") {
    return /NOSCRIPT|WRONGTYPE|ERR Error running script|CROSSSLOT/.test(message) ? "Protocol" : "Unavailable"
  }
  if (
    // a connection that is gone, or a cluster that is resharding or failing over: Redis's codes are whole words in
    // capitals (a case-insensitive `ASK` would match "task")
    /isn't writeable|Connection is closed|None of startup nodes|MaxRetriesPerRequest/i.test(message) ||
    /\b(ECONNREFUSED|ECONNRESET|EPIPE|ENOTFOUND|EHOSTUNREACH|CLUSTERDOWN|LOADING|TRYAGAIN|MOVED|ASK)\b/.test(message) ||
    name === "MaxRetriesPerRequestError"
  ) {
    return "Unavailable"
  }
  return "Unknown"
}

// An OOM reply names the symptom only; the operator needs to know what to change.
const hintOf = (message: string): string =>
  message.startsWith("OOM ")
    ? " (Redis is at maxmemory and refuses writes: hits keep working, commits and new locks fail until memory is " +
      "freed or maxmemory raised; see the maxmemory-policy section of the @s3cache/redis README)"
    : ""

/**
 * The `commandTimeout` that bounds each command of `client`, ms, when ioredis enforces one: a standalone client's
 * own option (a cluster's nodes keep theirs elsewhere, and its queue has its own rules: `undefined` there).
 *
 * @internal
 */
export const commandTimeoutOf = (client: Client): number | undefined => {
  if (isCluster(client)) return undefined
  const timeout = (client.options as { readonly commandTimeout?: unknown }).commandTimeout
  return typeof timeout === "number" && timeout > 0 && Number.isFinite(timeout) ? timeout : undefined
}

/**
 * A failed client call as the store's typed error.
 *
 * @internal
 */
export const failure = (method: string, server: string, cause: unknown): MetadataStoreError => {
  // no connection, and it is known why: say that rather than what ioredis says for every cause
  if (cause instanceof ConnectionProblem) {
    return new MetadataStoreError({ reason: "Unavailable", method, description: cause.message, cause })
  }
  const message = cause instanceof Error ? cause.message : String(cause)
  return new MetadataStoreError({
    reason: reasonOf(cause),
    method,
    description: `Redis at ${server}: ${message}${hintOf(message)}`,
    cause
  })
}

/**
 * `run`, settled by `deadline` (epoch ms): raced against a timer only where the client's own bound on each command
 * (`commandTimeoutMs`, from `commandTimeoutOf`) would end after it.
 *
 * @internal
 */
export const bounded = <A>(deadline: number, run: () => Promise<A>, commandTimeoutMs: number | undefined): Promise<A> =>
  commandTimeoutMs !== undefined && deadline - Date.now() > commandTimeoutMs + 1
    ? run()
    : StoreDeadline.race(deadline, run)

/**
 * Run one client call as an Effect with a typed error. `commandTimeoutMs`: the client's own bound on each command
 * (`commandTimeoutOf`); where it ends before the cache's deadline, the command times out first anyway, and the call
 * is not raced against the deadline (a second timer per command, for nothing).
 *
 * @internal
 */
export const call = <A>(
  method: string,
  server: string,
  run: () => Promise<A>,
  commandTimeoutMs?: number | undefined
): Effect.Effect<A, MetadataStoreError> =>
  Effect.flatMap(StoreDeadline.StoreDeadline, (deadline) =>
    Effect.tryPromise({
      // on top of `commandTimeout`, the cache's deadline for the whole store call (several commands share it); where
      // ioredis's own timer ends first, it settles the command and no second timer is set
      try: () => bounded(deadline, run, commandTimeoutMs),
      catch: (cause) => failure(method, server, cause)
    }))

/**
 * The span of one store operation; made only where `CacheTracing.InnerSpans` is on.
 *
 * @internal
 */
export const withSpan =
  (operation: string, server: string, namespace: string | undefined) => <A, E, R>(self: Effect.Effect<A, E, R>) =>
    CacheTracing.withInnerSpan(`MetadataStore.${operation}`, () => ({
      kind: "client",
      attributes: {
        "db.system": "redis",
        "db.operation": operation,
        "server.address": server,
        ...(namespace !== undefined ? { "s3cache.namespace": namespace } : {})
      }
    }))(self)
