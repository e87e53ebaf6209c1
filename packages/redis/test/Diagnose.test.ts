/**
 * `RedisMetadataStore.diagnose` against real servers: what it finds on a healthy one, and on each misconfiguration an
 * operator meets; it always returns, and in bounded time.
 */
import { assert, describe, it } from "@effect/vitest"
import * as FaultProxy from "@s3cache/core/test/FaultProxy"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import { RedisMetadataStore } from "../src/index.js"
import { blackhole } from "./utils/blackhole.js"
import * as RedisServer from "./utils/RedisServer.js"
import { beforeAllScoped } from "./utils/shared.js"

const server = beforeAllScoped(RedisServer.make())

type Check = RedisMetadataStore.Check

const byName = (checks: ReadonlyArray<Check>, name: string): Check => {
  const found = checks.find((check) => check.name === name)
  if (found === undefined) return assert.fail(`no check ${name} in ${JSON.stringify(checks, null, 2)}`)
  return found
}

const summary = (checks: ReadonlyArray<Check>) => checks.map((check) => `${check.name}: ${check.status}`)

/** The server's connections from clients (diagnose must leave none behind). */
const clientCount = (url: string) =>
  Effect.scoped(Effect.flatMap(RedisServer.rawClient(url), (raw) =>
    Effect.promise(async () =>
      // this raw client is one of them
      String(await raw.call("CLIENT", "LIST")).trim().split("\n").length - 1
    )))

describe("RedisMetadataStore.diagnose", () => {
  it.scopedLive("a healthy server: every check is ok, and the connection is closed", () =>
    Effect.gen(function*() {
      const before = yield* clientCount(server().url)
      const checks = yield* RedisMetadataStore.diagnose({ url: server().url })
      assert.deepStrictEqual(summary(checks), [
        "redis reachable: ok",
        "redis authenticated: ok",
        "redis database: ok",
        "redis version: ok",
        "redis maxmemory-policy: ok",
        "clock skew: ok"
      ])
      assert.match(byName(checks, "redis version").detail, /^Redis \d+\.\d+\.\d+ \(5\.0\.0 or later needed\)$/)
      assert.include(byName(checks, "redis maxmemory-policy").detail, "noeviction")
      assert.match(byName(checks, "clock skew").detail, /^this host's clock is \d+ ms (ahead of|behind) Redis's/)
      for (const check of checks) assert.isUndefined(check.fix, check.name)
      yield* Effect.sleep("50 millis")
      assert.strictEqual(yield* clientCount(server().url), before, "diagnose closed its connection")
    }))

  it.scopedLive("maxmemory-policy allkeys-lru is a problem, saying why and what to set", () =>
    Effect.gen(function*() {
      const lru = yield* RedisServer.make({ args: ["--maxmemory", "10mb", "--maxmemory-policy", "allkeys-lru"] })
      const policy = byName(yield* RedisMetadataStore.diagnose({ url: lru.url }), "redis maxmemory-policy")
      assert.strictEqual(policy.status, "problem")
      assert.include(policy.detail, "allkeys-lru (maxmemory 10.0 MB): Redis may evict the store's indexes")
      assert.include(policy.fix!, "CONFIG SET maxmemory-policy noeviction")
      // volatile-lfu keeps the indexes, but evicts out of the LRU index's order: a warning
      const raw = yield* RedisServer.rawClient(lru.url)
      yield* Effect.promise(() => raw.config("SET", "maxmemory-policy", "volatile-lfu"))
      const lfu = byName(yield* RedisMetadataStore.diagnose({ url: lru.url }), "redis maxmemory-policy")
      assert.strictEqual(lfu.status, "warning")
      assert.include(lfu.detail, "ghost")
    }))

  it.scopedLive("a server that requires a password, and none given: redis authenticated is the problem", () =>
    Effect.gen(function*() {
      const secured = yield* RedisServer.make()
      const raw = yield* RedisServer.rawClient(secured.url)
      yield* Effect.promise(() => raw.config("SET", "requirepass", "s3cret"))
      const checks = yield* RedisMetadataStore.diagnose({ url: secured.url })
      assert.deepStrictEqual(summary(checks), ["redis reachable: ok", "redis authenticated: problem"])
      const auth = byName(checks, "redis authenticated")
      assert.match(auth.detail, /requires a password and none was given \(NOAUTH [^)]+\)$/)
      assert.include(auth.fix!, "S3CACHE_REDIS_URL")
      // a wrong one, from the variables
      const wrong = yield* RedisMetadataStore.diagnoseConfig().pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(
          new Map([["S3CACHE_REDIS_URL", secured.url], ["S3CACHE_REDIS_PASSWORD", "nope-pw"]]),
          { pathDelim: "_" }
        ))
      )
      const refused = byName(wrong, "redis authenticated")
      assert.strictEqual(refused.status, "problem")
      assert.include(refused.detail, "refused the password option (WRONGPASS")
      assert.include(refused.fix!, "S3CACHE_REDIS_PASSWORD")
      assert.notInclude(JSON.stringify(wrong), "nope-pw")
      // the right one: all ok
      const fine = yield* RedisMetadataStore.diagnose({ url: secured.url.replace("redis://", "redis://:s3cret@") })
      assert.isTrue(fine.every((check) => check.status === "ok"), JSON.stringify(fine, null, 2))
    }))

  it.scopedLive("a database the server does not have: redis database is the problem", () =>
    Effect.gen(function*() {
      const checks = yield* RedisMetadataStore.diagnose({ url: server().url.replace(/\/0$/, "/99") })
      assert.deepStrictEqual(summary(checks), [
        "redis reachable: ok",
        "redis authenticated: ok",
        "redis database: problem"
      ])
      assert.include(byName(checks, "redis database").detail, "DB index is out of range")
      assert.include(byName(checks, "redis database").fix!, "Fix the /<db> at the end of the url (S3CACHE_REDIS_URL)")
    }))

  it.scopedLive("a port nothing listens on: redis reachable is the problem", () =>
    Effect.gen(function*() {
      const port = yield* FaultProxy.freePort
      const checks = yield* RedisMetadataStore.diagnose({ url: `redis://127.0.0.1:${port}/0` })
      assert.deepStrictEqual(summary(checks), ["redis reachable: problem"])
      assert.include(checks[0]!.detail, `Redis at 127.0.0.1:${port} refused the connection (connect ECONNREFUSED`)
      assert.include(
        checks[0]!.fix!,
        "No server listens there; start Redis, or fix the host and port of the url (url, S3CACHE_REDIS_URL"
      )
    }))

  it.scopedLive("rediss:// against a server without TLS: redis reachable says to use redis://", () =>
    Effect.gen(function*() {
      const checks = yield* RedisMetadataStore.diagnose({
        url: server().url.replace("redis://", "rediss://"),
        connectTimeout: "300 millis"
      })
      assert.deepStrictEqual(summary(checks), ["redis reachable: problem"])
      assert.include(checks[0]!.detail, "accepted the connection but completed no TLS handshake within 300 ms")
      assert.include(checks[0]!.fix!, "use redis:// instead of rediss://")
    }))

  it.scopedLive("a server that accepts and never answers: it returns, in bounded time, with redis reachable", () =>
    Effect.gen(function*() {
      const { port } = yield* blackhole
      const start = Date.now()
      const checks = yield* RedisMetadataStore.diagnose({
        url: `redis://127.0.0.1:${port}/0`,
        connectTimeout: "500 millis",
        commandTimeout: "250 millis"
      }).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("diagnose hung") }))
      assert.isBelow(Date.now() - start, 3_000)
      assert.deepStrictEqual(summary(checks), ["redis reachable: problem"])
      assert.include(checks[0]!.detail, `Redis at 127.0.0.1:${port} does not answer`)
    }))

  it.scoped("clock skew: a warning above 1 s, a problem above 30 s, explaining why it matters", () =>
    Effect.gen(function*() {
      // TestClock stands for this host's clock
      yield* TestClock.setTime(Date.now() + 5_000)
      const ahead = byName(yield* RedisMetadataStore.diagnose({ url: server().url }), "clock skew")
      assert.strictEqual(ahead.status, "warning")
      assert.match(ahead.detail, /^this host's clock is \d+ ms ahead of Redis's/)
      assert.include(ahead.fix!, "freshness")
      yield* TestClock.setTime(Date.now() - 60_000)
      assert.strictEqual(
        byName(yield* RedisMetadataStore.diagnose({ url: server().url }), "clock skew").status,
        "problem"
      )
    }))

  it.scopedLive("a cluster: every node checked; cluster-require-full-coverage yes is a warning", () =>
    Effect.gen(function*() {
      const cluster = yield* RedisServer.makeCluster()
      const checks = yield* RedisMetadataStore.diagnose({ nodes: cluster.nodes })
      assert.strictEqual(byName(checks, "redis cluster coverage").status, "ok")
      assert.isTrue(checks.every((check) => check.status === "ok"), JSON.stringify(checks, null, 2))
      const raw = yield* RedisServer.rawClient(cluster.servers[1]!.url)
      yield* Effect.promise(() => raw.config("SET", "cluster-require-full-coverage", "yes"))
      const coverage = byName(yield* RedisMetadataStore.diagnose({ nodes: cluster.nodes }), "redis cluster coverage")
      assert.strictEqual(coverage.status, "warning")
      assert.include(coverage.detail, `127.0.0.1:${cluster.nodes[1]!.port}: cluster-require-full-coverage yes`)
      assert.include(coverage.fix!, "cluster-require-full-coverage no")
    }))
})
