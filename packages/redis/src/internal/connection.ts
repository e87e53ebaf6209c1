/**
 * Connection problems in words the user can act on: where a connection's settings came from (`Origin`), what an
 * ioredis connection error means and what to change (`explain`), and the watch on an owned client that keeps the
 * last problem until it is ready again, so that the commands refused meanwhile say why (`ConnectionProblem`).
 *
 * @since 0.2.0
 */
import * as Net from "node:net"
import { type ConnectionOptions, ConnectionProblem, type Owned } from "./client.js"

/**
 * Is this connection error the server refusing the URL's database (`SELECT n` out of range)? ioredis then goes on,
 * and sends every command to database 0.
 *
 * @internal
 */
export const isDatabaseRefusal = (error: unknown): boolean =>
  error instanceof Error && /DB index is out of range|invalid DB index/i.test(error.message)

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
