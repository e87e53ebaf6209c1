/**
 * The ioredis client: options that bound every fault (see RELIABILITY.md), the scripts registered once, and the
 * mapping of ioredis failures to `MetadataStoreError`.
 *
 * @since 0.1.0
 */
import { MetadataStoreError } from "@s3cache/core/CacheError"
import type { StoreErrorReason } from "@s3cache/core/CacheError"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type { ClusterNode, ClusterOptions, RedisOptions } from "ioredis"
import { Cluster, Redis } from "ioredis"
import * as scripts from "./scripts.js"

/** @internal */
export type Client = Redis | Cluster

/** The scripts as client methods (ioredis `defineCommand`: EVALSHA, and EVAL once on NOSCRIPT). */
export interface Scripted {
  readonly s3cacheLookup: (...args: Array<string | number>) => Promise<unknown>
  readonly s3cacheAcquireLock: (...args: Array<string | number>) => Promise<unknown>
  readonly s3cacheRenewLock: (...args: Array<string | number>) => Promise<unknown>
  readonly s3cacheReleaseLock: (...args: Array<string | number>) => Promise<unknown>
  readonly s3cacheCommit: (...args: Array<string | number>) => Promise<unknown>
  readonly s3cacheGetMany: (...args: Array<string | number>) => Promise<unknown>
  readonly s3cacheRemove: (...args: Array<string | number>) => Promise<unknown>
  readonly s3cacheRemoveIf: (...args: Array<string | number>) => Promise<unknown>
  readonly s3cacheClearNamespace: (...args: Array<string | number>) => Promise<unknown>
  readonly s3cacheSize: (...args: Array<string | number>) => Promise<unknown>
  readonly s3cacheStoreId: (...args: Array<string | number>) => Promise<unknown>
}

/** @internal */
export const defineScripts = (client: Client): Client & Scripted => {
  // numberOfKeys is given per call (the first argument), since getMany and remove take a variable number of keys
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

/** @internal */
export const create = (options: ConnectionOptions): Client => {
  if (options.nodes !== undefined) {
    const { enableOfflineQueue: _, ...redisOptions } = boundedOptions(options)
    return new Cluster(options.nodes as Array<ClusterNode>, {
      lazyConnect: true,
      // the cluster's own queue ignores commandTimeout and hangs: it must be off at this level
      enableOfflineQueue: false,
      slotsRefreshTimeout: 1000,
      clusterRetryStrategy: (attempt) => Math.min(attempt * 100, 1000),
      redisOptions,
      ...options.clusterOptions
    })
  }
  return options.url !== undefined
    ? new Redis(options.url, boundedOptions(options))
    : new Redis(boundedOptions(options))
}

/** Where the client talks to, for spans and messages. */
export const describeServer = (client: Client): string => {
  if (client instanceof Cluster) {
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

/** Run one client call as an Effect with a typed error. */
export const call = <A>(method: string, server: string, run: () => Promise<A>): Effect.Effect<A, MetadataStoreError> =>
  Effect.tryPromise({
    try: run,
    catch: (cause) => {
      const message = cause instanceof Error ? cause.message : String(cause)
      return new MetadataStoreError({
        reason: reasonOf(cause),
        method,
        description: `Redis at ${server}: ${message}${hintOf(message)}`,
        cause
      })
    }
  })
