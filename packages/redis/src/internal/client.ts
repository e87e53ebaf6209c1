/**
 * The ioredis client: options that bound every fault (see RELIABILITY.md), the scripts registered once, and the
 * mapping of ioredis failures to `MetadataStoreError`.
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
import * as Net from "node:net"
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
    // what does not parse is not shown when it may hold a password
    const shown = url.includes("@") ? "(not shown: it may hold a password)" : JSON.stringify(url.slice(0, 80))
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

/** The URL without its password, for messages. */
const redactUrl = (url: URL): string => {
  if (url.password === "") return url.href
  const copy = new URL(url.href)
  copy.password = "***"
  return copy.href
}

/**
 * Is this connection error the server refusing the URL's database (`SELECT n` out of range)? ioredis then goes on,
 * and sends every command to database 0.
 *
 * @internal
 */
export const isDatabaseRefusal = (error: unknown): boolean =>
  error instanceof Error && /DB index is out of range|invalid DB index/i.test(error.message)

// --- connection problems, in words the user can act on ----------------------------------------------------------

const urlShape = "redis://[user:password@]host[:port][/db]"

/**
 * Where a connection's settings came from, for messages that name what to change: the option and the variable.
 *
 * @internal
 */
export interface Origin {
  /** `host:port`, as in every other message of the store */
  readonly server: string
  readonly host: string
  readonly port: number
  readonly tls: boolean
  readonly cluster: boolean
  readonly username: "url" | "option" | undefined
  readonly password: "url" | "option" | undefined
  readonly connectTimeoutMs: number
}

/** @internal */
export const originOf = (options: ConnectionOptions): Origin => {
  let parsed: URL | undefined
  try {
    parsed = options.url !== undefined ? new URL(options.url) : undefined
  } catch {
    parsed = undefined
  }
  const first = options.nodes?.[0]
  const host = parsed !== undefined
    ? parsed.hostname.replace(/^\[(.*)\]$/, "$1") || "localhost"
    : typeof first === "object" && first !== null
    ? String(first.host ?? "localhost")
    : "localhost"
  const port = parsed !== undefined
    ? Number(parsed.port || 6379)
    : typeof first === "object" && first !== null
    ? Number(first.port ?? 6379)
    : typeof first === "number"
    ? first
    : 6379
  return {
    server: `${host}:${port}`,
    host,
    port,
    tls: parsed?.protocol === "rediss:" || options.redisOptions?.tls !== undefined,
    cluster: options.nodes !== undefined,
    username: options.username !== undefined ? "option" : parsed?.username ? "url" : undefined,
    password: options.password !== undefined ? "option" : parsed?.password ? "url" : undefined,
    connectTimeoutMs: options.connectTimeoutMs
  }
}

/**
 * What went wrong with a connection. `auth` and `database` are the server refusing what the settings say; the others
 * are the server not being there, or not being a Redis server that speaks the url's protocol.
 *
 * @internal
 */
export type ProblemKind =
  | "refused"
  | "unresolved"
  | "unreachable"
  | "timeout"
  | "silent"
  | "tls"
  | "certificate"
  | "protocol"
  | "reset"
  | "noauth"
  | "wrongpass"
  | "database"

/** @internal */
export interface Problem {
  readonly kind: ProblemKind
  /** "Redis at host:port …: what to change" */
  readonly description: string
}

/** The server's own words, for the parenthesis of a message: one line, bounded, never the settings. */
const said = (error: Error): string => error.message.split("\n")[0]!.slice(0, 160)

const where = (origin: Origin): string =>
  origin.cluster
    ? "the nodes (nodes, S3CACHE_REDIS_CLUSTER_NODES: host:port,host:port)"
    : `the url (url, S3CACHE_REDIS_URL: ${urlShape})`

const hostAndPort = (origin: Origin): string => `the host and port of ${where(origin)}`

const inUrl = `in the url (url, S3CACHE_REDIS_URL: ${urlShape})`
const passwordOption = "the password option (password, S3CACHE_REDIS_PASSWORD)"
const usernameOption = "the username option (username, S3CACHE_REDIS_USERNAME)"

/** The credentials the server refused, and what to fix: named by where they came from, never shown. */
const credentials = (origin: Origin): { readonly refused: string; readonly fix: string } => {
  if (origin.password === "option") {
    return origin.username === "option"
      ? { refused: "the username and password options", fix: `fix ${usernameOption} and ${passwordOption}` }
      : { refused: "the password option", fix: `fix ${passwordOption}` }
  }
  if (origin.password === "url") {
    return origin.username === "option"
      ? {
        refused: "the username option and the password of the url",
        fix: `fix ${usernameOption} or the password ${inUrl}`
      }
      : origin.username === "url"
      ? { refused: "the user and password of the url", fix: `fix the user and password ${inUrl}` }
      : { refused: "the password of the url", fix: `fix the password ${inUrl}` }
  }
  return {
    refused: origin.username !== undefined ? "the user, given without a password" : "the connection",
    fix: `give the password ${inUrl} or in ${passwordOption}`
  }
}

/**
 * A connection error of ioredis as what happened and what to change, or `undefined` for an error that is not about
 * the connection (or says nothing new, like ioredis's "Stream isn't writeable"). `tcp`: whether a plain TCP
 * connection to the server succeeds, where that was probed (it tells a TLS mismatch from an unreachable host).
 * `wasReady`: the client worked before, so a connection that is reset or goes silent is an outage, not a wrong setting.
 *
 * @internal
 */
export const explain = (
  error: unknown,
  origin: Origin,
  tcp?: boolean | undefined,
  wasReady = false
): Problem | undefined => {
  if (!(error instanceof Error)) return undefined
  const code = (error as { readonly code?: unknown }).code
  const message = error.message
  const at = `Redis at ${origin.server}`
  const within = `within ${origin.connectTimeoutMs} ms`
  if (isDatabaseRefusal(error)) {
    return {
      kind: "database",
      description: `${at} refused the database of the url (${said(error)}): the server has fewer databases (its ` +
        "`databases` setting, 16 by default; a Cluster has only 0). Fix the /<db> at the end of the url " +
        "(S3CACHE_REDIS_URL); nothing was sent to another database"
    }
  }
  if (/\bNOAUTH\b/.test(message)) {
    return {
      kind: "noauth",
      // the server's first clause only: to ioredis 6's HELLO, Redis answers with a paragraph about HELLO AUTH
      description:
        `${at} requires a password and none was given (${said(error).split(/[,.]/)[0]}): put it ${inUrl} or in ` +
        passwordOption
    }
  }
  if (/\bWRONGPASS\b|invalid password|invalid username-password/i.test(message)) {
    const { fix, refused } = credentials(origin)
    return { kind: "wrongpass", description: `${at} refused ${refused} (${said(error)}): ${fix}` }
  }
  if (code === "ECONNREFUSED") {
    return {
      kind: "refused",
      description: wasReady
        ? `${at} refused the connection (${said(error)}): Redis is down or restarting; the client reconnects by ` +
          "itself once it is back"
        : `${at} refused the connection (${said(error)}): no server listens there; start Redis, or fix ` +
          hostAndPort(origin)
    }
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") {
    return {
      kind: "unresolved",
      description: `${at}: the host name was not found (${said(error)}): fix ${hostAndPort(origin)}`
    }
  }
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH" || code === "EADDRNOTAVAIL") {
    return {
      kind: "unreachable",
      description: `${at} cannot be reached from this host (${said(error)}): check ${hostAndPort(origin)} and the ` +
        "network (routes, firewall, VPC)"
    }
  }
  if (code === "ETIMEDOUT") {
    if (origin.tls && tcp === true) {
      return {
        kind: "tls",
        description: `${at} accepted the connection but completed no TLS handshake ${within} (${said(error)}): the ` +
          `server does not speak TLS; use redis:// instead of rediss:// in the url (url, S3CACHE_REDIS_URL: ` +
          `${urlShape}), or enable TLS on the server`
      }
    }
    return {
      kind: "timeout",
      description: origin.tls && tcp === undefined
        ? `${at} completed no TLS connection ${within} (${said(error)}): the host is unreachable (check ` +
          `${hostAndPort(origin)}, and the network), or the server does not speak TLS (then use redis:// instead ` +
          "of rediss://)"
        : `${at} did not accept a connection ${within} (${said(error)}): the host is unreachable or a firewall ` +
          `drops the connection; check ${hostAndPort(origin)} and the network, or raise connectTimeout ` +
          "(S3CACHE_REDIS_CONNECT_TIMEOUT)"
    }
  }
  if (/wrong version number|packet length too long|ERR_SSL_/i.test(`${String(code)} ${message}`)) {
    return {
      kind: "tls",
      description: `${at} answered the TLS handshake in plain text (${said(error)}): the server does not speak TLS; ` +
        `use redis:// instead of rediss:// in the url (url, S3CACHE_REDIS_URL: ${urlShape}), or enable TLS on the ` +
        "server"
    }
  }
  if (
    typeof code === "string" &&
    /^(ERR_TLS_|CERT_|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|HOSTNAME_MISMATCH)/.test(code)
  ) {
    return {
      kind: "certificate",
      description: `${at}: its TLS certificate was not accepted (${said(error)}): give the certificate's CA or ` +
        "server name in redisOptions.tls (ca, servername), or connect by the name the certificate is for"
    }
  }
  if (error.name === "ParserError" || /^Protocol error/.test(message)) {
    return {
      kind: "protocol",
      description: `${at} answered with something that is not Redis (${said(error)}): another service listens ` +
        `there (an HTTP server, a proxy), or a TLS server (then use rediss://); fix ${hostAndPort(origin)}`
    }
  }
  if (code === "ECONNRESET" || code === "EPIPE") {
    return {
      kind: "reset",
      description: wasReady
        ? `${at} closed the connection (${said(error)}): it restarted, or a proxy or the network dropped the ` +
          "connection; the client reconnects by itself"
        : `${at} closed the connection (${said(error)}): if the server requires TLS, use rediss:// in the url ` +
          `(url, S3CACHE_REDIS_URL: ${urlShape}); it may also be at maxclients, or a proxy refused this host`
    }
  }
  if (/Command timed out|Socket timeout|Ready check failed/i.test(message)) {
    return {
      kind: "silent",
      description: wasReady
        ? `${at} stopped answering (${said(error)}): the server is stuck or overloaded, or the network drops the ` +
          "connection; the client reconnects by itself"
        : `${at} does not answer (${said(error)}): the connection opens but no reply comes back, so another ` +
          `service may listen there, or the server or the network is stuck; check ${hostAndPort(origin)}`
    }
  }
  return undefined
}

/** Is this problem the server refusing the settings (not being down)? Those fail the build of the store. */
export const isRefusal = (problem: Problem): boolean =>
  problem.kind === "noauth" || problem.kind === "wrongpass" || problem.kind === "database"

/**
 * A command that found no connection, carrying why there is none: what `failure` reports instead of ioredis's "Stream
 * isn't writeable and enableOfflineQueue options is false", which says the same for every cause.
 *
 * @internal
 */
export class ConnectionProblem extends Error {
  constructor(readonly problem: Problem, cause: unknown) {
    super(problem.description, { cause })
    this.name = "ConnectionProblem"
  }
}

const noConnection = (error: unknown): boolean =>
  error instanceof Error && /isn't writeable|Connection is closed/.test(error.message)

/** Does a plain TCP connection to `host:port` open within `timeoutMs`? */
export const tcpOpens = (host: string, port: number, timeoutMs: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = Net.connect({ host, port })
    const done = (opened: boolean) => {
      clearTimeout(timer)
      socket.destroy()
      resolve(opened)
    }
    const timer = setTimeout(() => done(false), timeoutMs)
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })

/**
 * What a client this package owns ran into, kept from its connection errors until it is ready again.
 *
 * @internal
 */
export interface Watch {
  readonly origin: Origin
  /** the last problem since the client was last ready */
  readonly problem: () => Problem | undefined
  /** told of every new problem and of every ready; returns a function that stops telling */
  readonly onChange: (listener: () => void) => () => void
  /** the client was closed on purpose (a database the server does not have): it will not connect again */
  readonly closed: () => boolean
}

/**
 * Watch `owned`'s connection: every connection error is explained (`explain`) and kept until the client is ready again,
 * and a command refused for want of a connection fails with that explanation (`ConnectionProblem`). It is also the
 * client's 'error' listener, without which a connection error would be an unhandled 'error' event and kill the
 * process. A database the server does not have is refused on every connection, after which ioredis would send every
 * command to database 0: the client is closed instead, for good.
 *
 * @internal
 */
export const watch = (owned: Owned, origin: Origin): Watch => {
  let problem: Problem | undefined
  let closed = false
  // whether a plain TCP connection opens, probed once per failing spell: undefined until known
  let probing = false
  let tcp: boolean | undefined
  let wasReady = false
  const listeners = new Set<() => void>()
  const set = (next: Problem | undefined) => {
    problem = next
    for (const listener of [...listeners]) listener()
  }
  owned.on("error", (error: Error) => {
    if (closed) return
    const explained = explain(error, origin, tcp, wasReady)
    if (explained === undefined) return
    if (explained.kind === "database") {
      closed = true
      owned.disconnect()
    }
    set(explained)
    // a TLS connection that times out: a server that does not speak TLS, or no server at all? A plain TCP connection
    // tells them apart (once per failing spell)
    if (explained.kind === "timeout" && origin.tls && !probing) {
      probing = true
      void tcpOpens(origin.host, origin.port, origin.connectTimeoutMs).then((opens) => {
        if (!probing) return
        tcp = opens
        if (problem?.kind === "timeout") set(explain(error, origin, tcp, wasReady))
      })
    }
  })
  owned.on("ready", () => {
    if (closed) return
    wasReady = true
    probing = false
    tcp = undefined
    set(undefined)
  })
  // only while there is no connection: a ready client's commands take the plain path
  const target = owned as unknown as { sendCommand: (...args: Array<unknown>) => unknown }
  const send = target.sendCommand.bind(owned)
  target.sendCommand = (...args: Array<unknown>) => {
    const result = send(...args)
    if (owned.status === "ready" || !(result instanceof Promise)) return result
    const explained = result.catch((error: unknown) => {
      const known = problem
      throw known !== undefined && noConnection(error) ? new ConnectionProblem(known, error) : error
    })
    // ioredis's own commands take a callback and drop the promise: a rejection of this copy must not go unhandled
    explained.catch(() => {})
    return explained
  }
  return {
    origin,
    problem: () => problem,
    onChange: (listener) => {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    closed: () => closed
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
