/**
 * The test fixtures themselves: real redis-server processes, a Redis Cluster, the TCP fault proxy and the
 * watchdog. If these are wrong, every fault test built on them proves nothing.
 */
import { assert, describe, it } from "@effect/vitest"
import * as FaultProxy from "@s3cache/core/test/FaultProxy"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"
import type { RedisOptions } from "ioredis"
import { Cluster, Redis } from "ioredis"
import * as Ioredis from "./utils/ioredis.js"
import * as RedisServer from "./utils/RedisServer.js"

/** fail fast: no offline queue, no retries, no re-sent commands (see RELIABILITY.md) */
const failFast: RedisOptions = {
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  connectTimeout: 1000,
  commandTimeout: 1000,
  retryStrategy: () => null
}

interface Client {
  readonly redis: Redis
  /** every `error` event the client emitted */
  readonly errors: Array<Error>
  /** resolves when the connection closes */
  readonly closed: Promise<void>
}

const connect = (
  target: { readonly host: string; readonly port: number },
  options: RedisOptions = {}
): Effect.Effect<Client, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const redis = new Redis({ host: target.host, port: target.port, ...failFast, ...options })
      const errors: Array<Error> = []
      redis.on("error", (error: Error) => errors.push(error))
      const closed = new Promise<void>((resolve) => redis.once("close", () => resolve()))
      await redis.connect()
      return { redis, errors, closed }
    }),
    ({ redis }) =>
      Effect.tryPromise(() => redis.quit()).pipe(
        Effect.timeout("500 millis"),
        Effect.ignore,
        Effect.ensuring(Effect.sync(() => redis.disconnect()))
      )
  )

/** the error of a promise expected to reject */
const rejection = (promise: () => Promise<unknown>): Effect.Effect<Error> =>
  Effect.promise(() =>
    promise().then(
      (value) => {
        throw new Error(`expected a failure, got ${JSON.stringify(value)}`)
      },
      (error: Error) => error
    )
  )

/** the errors a new client sees when its connection fails (`connect()` itself only says "Connection is closed.") */
const failedConnect = (target: { readonly host: string; readonly port: number }): Effect.Effect<string> =>
  Effect.promise(async () => {
    const redis = new Redis({ host: target.host, port: target.port, ...failFast })
    const errors: Array<string> = []
    redis.on("error", (error: Error) => errors.push(error.message))
    const outcome = await redis.connect().then(() => "connected", (error: Error) => error.message)
    redis.disconnect()
    return [outcome, ...errors].join("; ")
  })

const within = <A>(ms: number, promise: Promise<A>, what: string): Promise<A> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms)
    })
  ]).finally(() => clearTimeout(timer))
}

describe("ioredis", () => {
  it.scopedLive(`resolves to major ${Ioredis.major}, whose clients speak RESP${Ioredis.protocol}`, () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const { redis } = yield* connect(server)
      const info = String(yield* Effect.promise(() => redis.call("CLIENT", "INFO")))
      assert.match(info, new RegExp(`(^| )resp=${Ioredis.protocol}(\\s|$)`))
      // an option only ioredis 6 has (and defaults to 3)
      assert.strictEqual(
        (redis.options as { readonly protocol?: number }).protocol,
        Ioredis.major === 6 ? 3 : undefined
      )
    }))
})

describe("RedisServer", () => {
  it.scopedLive("starts, serves, dies on SIGKILL and restarts on the same port", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      assert.strictEqual(server.url, `redis://127.0.0.1:${server.port}/0`)
      const before = yield* connect(server)
      yield* Effect.promise(() => before.redis.set("k", "v1"))
      assert.strictEqual(yield* Effect.promise(() => before.redis.get("k")), "v1")

      yield* server.kill()
      yield* rejection(() => before.redis.get("k"))
      assert.include(yield* failedConnect(server), "ECONNREFUSED")

      yield* server.restart
      const after = yield* connect(server)
      assert.strictEqual(after.redis.options.port, server.port)
      assert.isNull(yield* Effect.promise(() => after.redis.get("k")), "no persistence: the data is gone")
      yield* Effect.promise(() => after.redis.set("k", "v2"))
      assert.strictEqual(yield* Effect.promise(() => after.redis.get("k")), "v2")
    }).pipe(FaultProxy.watchdog("10 seconds", "restart test")))

  it.scopedLive("a missing redis-server fails with a message that says how to install it", () =>
    Effect.gen(function*() {
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          const path = process.env.PATH
          process.env.PATH = "/nonexistent"
          return path
        }),
        (path) => Effect.sync(() => void (process.env.PATH = path))
      )
      const error = yield* Effect.flip(RedisServer.make())
      assert.strictEqual(error._tag, "RedisServerError")
      assert.strictEqual(error.reason, "NotInstalled")
      assert.include(error.message, "apt-get install -y redis-server")
    }))

  it.scopedLive("a 3-master cluster serves keys in every slot range", () =>
    Effect.gen(function*() {
      const { nodes } = yield* RedisServer.makeCluster()
      assert.strictEqual(nodes.length, 3)
      for (const node of nodes) {
        const { redis } = yield* connect(node)
        const info = yield* Effect.promise(() => redis.cluster("INFO"))
        assert.include(info, "cluster_state:ok")
      }
      const cluster = yield* Effect.acquireRelease(
        Effect.promise(async () => {
          const cluster = new Cluster([...nodes], {
            lazyConnect: true,
            enableOfflineQueue: false,
            slotsRefreshTimeout: 1000,
            redisOptions: { ...failFast, lazyConnect: false }
          })
          cluster.on("error", () => {})
          // not `await cluster.connect()`: when the first ready check fails (a node not ready yet, offline queue
          // off), ioredis reconnects and becomes ready but never settles that promise
          const ready = new Promise<void>((resolve) => cluster.once("ready", () => resolve()))
          cluster.connect().catch(() => {})
          await within(5000, ready, "cluster ready").catch((error) => {
            cluster.disconnect()
            throw error
          })
          return cluster
        }),
        (cluster) =>
          Effect.tryPromise(() => cluster.quit()).pipe(
            Effect.timeout("500 millis"),
            Effect.ignore,
            Effect.ensuring(Effect.sync(() => cluster.disconnect()))
          )
      )
      // slots 15495, 3300 and 7365: one key on each master
      const keys = ["a", "b", "c"]
      const slots = yield* Effect.forEach(keys, (key) => Effect.promise(() => cluster.cluster("KEYSLOT", key)))
      assert.deepStrictEqual(new Set(slots.map((slot) => Math.floor(Number(slot) / 5462))).size, 3)
      for (const key of keys) {
        yield* Effect.promise(() => cluster.set(key, `value-${key}`))
      }
      for (const key of keys) {
        assert.strictEqual(yield* Effect.promise(() => cluster.get(key)), `value-${key}`)
      }
    }).pipe(FaultProxy.watchdog("15 seconds", "cluster test")))
})

describe("FaultProxy", () => {
  const setup = Effect.gen(function*() {
    const server = yield* RedisServer.make()
    const proxy = yield* FaultProxy.make({ host: server.host, port: server.port })
    return { server, proxy }
  })

  it.scopedLive("pass, then blackhole on an open connection holds the bytes, then pass delivers them in order", () =>
    Effect.gen(function*() {
      const { proxy, server } = yield* setup
      const { redis } = yield* connect(proxy, { commandTimeout: 200 })
      yield* Effect.promise(() => redis.set("k", "v"))
      assert.strictEqual(yield* Effect.promise(() => redis.get("k")), "v")
      assert.strictEqual(yield* proxy.openConnections, 1)

      yield* proxy.setMode("blackhole")
      const timedOut = yield* rejection(() => redis.set("k", "written during the blackhole"))
      assert.include(timedOut.message, "timed out")
      assert.strictEqual(yield* proxy.openConnections, 1, "the proxy still holds the connection")
      assert.strictEqual(redis.status, "ready", "the client does not notice")
      const other = yield* connect(server)
      assert.strictEqual(yield* Effect.promise(() => other.redis.get("k")), "v", "the write is held, not applied")

      yield* proxy.setMode("pass")
      assert.strictEqual(yield* Effect.promise(() => redis.get("k")), "written during the blackhole")
    }).pipe(FaultProxy.watchdog("10 seconds", "blackhole test")))

  it.scopedLive("reset errors the open connection; refuse refuses new ones; pass listens again on the same port", () =>
    Effect.gen(function*() {
      const { proxy } = yield* setup
      const first = yield* connect(proxy)
      yield* proxy.setMode("reset")
      yield* Effect.promise(() => within(1000, first.closed, "close after reset"))
      assert.isTrue(first.errors.some((error) => error.message.includes("ECONNRESET")), String(first.errors))
      yield* rejection(() => first.redis.ping())
      assert.strictEqual(yield* proxy.openConnections, 0)
      assert.include(yield* failedConnect(proxy), "ECONNRESET", "new connections are reset at once")

      yield* proxy.setMode("pass")
      const second = yield* connect(proxy)
      yield* proxy.setMode("refuse")
      yield* Effect.promise(() => within(1000, second.closed, "close after refuse"))
      assert.include(yield* failedConnect(proxy), "ECONNREFUSED")

      yield* proxy.setMode("pass")
      const third = yield* connect(proxy)
      assert.strictEqual(yield* Effect.promise(() => third.redis.ping()), "PONG")
    }).pipe(FaultProxy.watchdog("10 seconds", "reset/refuse test")))

  it.scopedLive("latency delays every chunk", () =>
    Effect.gen(function*() {
      const { proxy } = yield* setup
      const { redis } = yield* connect(proxy)
      yield* proxy.setMode({ latencyMs: 100 })
      const start = performance.now()
      assert.strictEqual(yield* Effect.promise(() => redis.ping()), "PONG")
      const elapsed = performance.now() - start
      assert.isAtLeast(elapsed, 100, `PING took ${elapsed.toFixed(0)} ms`)
    }).pipe(FaultProxy.watchdog("10 seconds", "latency test")))

  it.scopedLive("truncate then close, truncate then hang, corrupt: a 10 kB value never arrives intact", () =>
    Effect.gen(function*() {
      const { proxy } = yield* setup
      const value = "x".repeat(10_000)
      const setter = yield* connect(proxy)
      yield* Effect.promise(() => setter.redis.set("big", value))

      // modes apply to open connections: connect first (the ready check's INFO reply alone is over 100 bytes)
      const cut = yield* connect(proxy)
      yield* proxy.setMode({ truncateAfterBytes: 100, then: "close" })
      const closed = yield* rejection(() => cut.redis.get("big"))
      assert.notInclude(closed.message, "timed out", "the connection was closed, not left hanging")

      yield* proxy.setMode("pass")
      const hung = yield* connect(proxy, { commandTimeout: 200 })
      yield* proxy.setMode({ truncateAfterBytes: 100, then: "hang" })
      const timedOut = yield* rejection(() => hung.redis.get("big"))
      assert.include(timedOut.message, "timed out")

      yield* proxy.setMode("pass")
      const corrupted = yield* connect(proxy)
      yield* proxy.setMode({ corruptEveryByte: 50 })
      // the reply is `$10000\r\n` + value + `\r\n`: every 50th byte (the 50th … the 10000th) lies inside the value
      const result = yield* Effect.promise(() => corrupted.redis.get("big"))
      assert.isNotNull(result)
      assert.strictEqual(result!.length, value.length, "same length: only bits were flipped")
      const flipped = [...result!].filter((char, i) => char !== value[i]).length
      assert.strictEqual(flipped, 200)
    }).pipe(FaultProxy.watchdog("10 seconds", "truncate/corrupt test")))
})

describe("watchdog", () => {
  it.live("a hang becomes a defect that says HANG", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Effect.never.pipe(FaultProxy.watchdog("100 millis", "x")))
      assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
      const message = Exit.isFailure(exit) ? (Cause.squash(exit.cause) as Error).message : ""
      assert.isTrue(message.startsWith("HANG: x did not finish within 100ms"), message)
    }))

  it.live("an uninterruptible hang trips it too; success and typed failures pass through", () =>
    Effect.gen(function*() {
      const hang = Effect.async<never>(() => {}).pipe(Effect.uninterruptible, FaultProxy.watchdog("100 millis", "y"))
      const exit = yield* Effect.exit(hang)
      assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
      assert.strictEqual(yield* Effect.succeed(1).pipe(FaultProxy.watchdog("1 second", "z")), 1)
      assert.strictEqual(yield* Effect.flip(Effect.fail("typed").pipe(FaultProxy.watchdog("1 second", "z"))), "typed")
    }))
})
