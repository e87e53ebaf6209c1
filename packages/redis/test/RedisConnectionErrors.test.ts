/**
 * What the store says when it cannot use Redis: each case against a real server (or a socket that never answers), by
 * the message the user reads when the store is built and when a call fails later (the cache's fail-open warning is
 * `s3cache: <operation> failed; …: <that message>`).
 */
import { assert, describe, it } from "@effect/vitest"
import * as BlobStore from "@s3cache/core/BlobStore"
import * as Cache from "@s3cache/core/Cache"
import type { MetadataStoreError } from "@s3cache/core/CacheError"
import * as MetadataStore from "@s3cache/core/MetadataStore"
import * as FaultProxy from "@s3cache/core/test/FaultProxy"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import { RedisMetadataStore } from "../src/index.js"
import { blackhole } from "./utils/blackhole.js"
import * as Ioredis from "./utils/ioredis.js"
import * as RedisServer from "./utils/RedisServer.js"
import { beforeAllScoped } from "./utils/shared.js"

const password = "s3cret-pw"
const server = beforeAllScoped(RedisServer.make())
const secured = beforeAllScoped(Effect.flatMap(RedisServer.make(), (started) => requirePassword(started)))

/**
 * Makes `started` require the password from now on, and drops the connections it had (they stay authenticated
 * otherwise). Not `--requirepass` at start: the test server is ready once it answers PING without one.
 */
function requirePassword(started: RedisServer.RedisServer) {
  return Effect.scoped(Effect.gen(function*() {
    const raw = yield* RedisServer.rawClient(started.url)
    yield* Effect.promise(() => raw.config("SET", "requirepass", password))
    yield* Effect.promise(() => raw.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"))
    return started
  }))
}

const shape = "S3CACHE_REDIS_URL: redis://[user:password@]host[:port][/db]"
/** What Redis says to the first command without a password: ioredis 6 opens with HELLO, ioredis 5 with INFO */
const noauth = Ioredis.major === 6
  ? "NOAUTH HELLO must be called with the client already authenticated"
  : "NOAUTH Authentication required"
const hash = "a".repeat(64)
const lock = { token: "t", lockTtlMs: 10_000 }

/** Runs `effect` with the warnings it logs collected in `warnings`. */
const withWarnings = <A, E, R>(effect: (warnings: Array<string>) => Effect.Effect<A, E, R>) => {
  const warnings: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    if (logLevel.label === "WARN") warnings.push(Array.isArray(message) ? message.join(" ") : String(message))
  })
  return effect(warnings).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
}

/** A store call that fails (the server is not usable): its error. */
const failingCall = (store: MetadataStore.MetadataStore["Type"]) =>
  Effect.flip(store.lookup("conn-errors", hash, lock)) as Effect.Effect<MetadataStoreError>

describe("Redis connection errors say what happened and what to change", () => {
  it.scopedLive("a port nothing listens on: the store is built, and says the connection was refused", () =>
    withWarnings((warnings) =>
      Effect.gen(function*() {
        const port = yield* FaultProxy.freePort
        const store = yield* RedisMetadataStore.make({ url: `redis://127.0.0.1:${port}/0`, awaitReady: "500 millis" })
        const expected =
          `Redis at 127.0.0.1:${port} refused the connection (connect ECONNREFUSED 127.0.0.1:${port}): ` +
          "no server listens there; start Redis, or fix the host and port of the url (url, " + shape + ")"
        assert.deepStrictEqual(warnings, [`s3cache: ${expected}; the cache runs uncached until Redis answers`])
        const error = yield* failingCall(store)
        assert.strictEqual(error.reason, "Unavailable")
        assert.strictEqual(error.message, `Unavailable: MetadataStore.lookup: ${expected}`)
      })
    ))

  it.scopedLive("a password in the url's query (?password=): never shown, refused or malformed", () =>
    withWarnings((warnings) =>
      Effect.gen(function*() {
        const secret = "hunter2"
        // ioredis takes every query parameter as an option, the password among them
        const refused = yield* RedisMetadataStore.make({
          url: `redis://127.0.0.1:1/0?password=${secret}`,
          awaitReady: "500 millis"
        })
        const error = yield* failingCall(refused)
        assert.include(error.message, "Redis at 127.0.0.1:1 refused the connection")
        assert.notInclude(error.message, secret)
        assert.isAbove(warnings.length, 0)
        for (const warning of warnings) assert.notInclude(warning, secret)
        const checks = yield* RedisMetadataStore.diagnose({ url: `redis://127.0.0.1:1/0?password=${secret}` })
        assert.strictEqual(checks[0]?.status, "problem")
        assert.notInclude(JSON.stringify(checks), secret)
        for (
          const [url, says] of [
            [`http://127.0.0.1:1/0?password=${secret}`, "has the scheme http"],
            [`redis://127.0.0.1:1/zero?db=0&password=${secret}&family=4`, "it must be a number"],
            [`redis://127.0.0.1:1:6379/0?password=${secret}`, "is not a URL"]
          ] as const
        ) {
          const malformed = yield* Effect.flip(RedisMetadataStore.make({ url }))
          assert.include(malformed.message, says, url)
          assert.include(malformed.message, "password=***", url)
          assert.notInclude(malformed.message, secret, url)
        }
      })
    ))

  it.scopedLive("a server that requires a password, and a url without one: the build fails, saying where to put it", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(RedisMetadataStore.make({ url: secured().url }))
      assert.strictEqual(error.reason, "InvalidOption")
      assert.strictEqual(
        error.description,
        `Redis at 127.0.0.1:${secured().port} requires a password and none was given (${noauth}): put it in the ` +
          `url (url, ${shape}) or in the password option (password, S3CACHE_REDIS_PASSWORD)`
      )
    }))

  it.scopedLive("a wrong password: the build fails, naming where the password came from, never echoing it", () =>
    Effect.gen(function*() {
      const port = secured().port
      const inUrl = yield* Effect.flip(RedisMetadataStore.make({ url: `redis://:not-${password}@127.0.0.1:${port}/0` }))
      assert.strictEqual(inUrl.reason, "InvalidOption")
      assert.strictEqual(
        inUrl.description,
        `Redis at 127.0.0.1:${port} refused the password of the url (WRONGPASS invalid username-password pair ` +
          `or user is disabled.): fix the password in the url (url, ${shape})`
      )
      assert.notInclude(inUrl.message, `not-${password}`)
      const withUser = yield* Effect.flip(
        RedisMetadataStore.make({ url: `redis://someone:not-${password}@127.0.0.1:${port}/0` })
      )
      assert.include(withUser.description, "refused the user and password of the url (WRONGPASS")
      assert.include(withUser.description, `fix the user and password in the url (url, ${shape})`)
      assert.notInclude(withUser.message, `not-${password}`)
      const asOption = yield* Effect.flip(
        RedisMetadataStore.make({ url: secured().url, password: Redacted.make(`not-${password}`) })
      )
      assert.include(
        asOption.description,
        "refused the password option (WRONGPASS invalid username-password pair or user is disabled.): fix the " +
          "password option (password, S3CACHE_REDIS_PASSWORD)"
      )
      assert.notInclude(asOption.message, `not-${password}`)
      // the right one works
      const store = yield* RedisMetadataStore.make({ url: `redis://:${password}@127.0.0.1:${port}/0` })
      assert.deepStrictEqual(yield* store.lookup("conn-errors", hash, lock), { _tag: "Acquired" })
    }))

  it.scopedLive("rediss:// against a server without TLS: built, and told to use redis://", () =>
    withWarnings((warnings) =>
      Effect.gen(function*() {
        const store = yield* RedisMetadataStore.make({
          url: server().url.replace("redis://", "rediss://"),
          connectTimeout: "300 millis",
          awaitReady: "1500 millis"
        })
        const expected = `Redis at 127.0.0.1:${server().port} accepted the connection but completed no TLS ` +
          "handshake within 300 ms (connect ETIMEDOUT): the server does not speak TLS; use redis:// instead of " +
          `rediss:// in the url (url, ${shape}), or enable TLS on the server`
        assert.deepStrictEqual(warnings, [`s3cache: ${expected}; the cache runs uncached until Redis answers`])
        const error = yield* failingCall(store)
        assert.strictEqual(error.message, `Unavailable: MetadataStore.lookup: ${expected}`)
      })
    ))

  it.scopedLive("a server that accepts the connection and never answers: built, and told it does not answer", () =>
    withWarnings((warnings) =>
      Effect.gen(function*() {
        const { port } = yield* blackhole
        const store = yield* RedisMetadataStore.make({
          url: `redis://127.0.0.1:${port}/0`,
          commandTimeout: "200 millis",
          connectTimeout: "300 millis",
          awaitReady: "800 millis"
        })
        const expected = `Redis at 127.0.0.1:${port} does not answer (Command timed out): the connection opens but ` +
          "no reply comes back, so another service may listen there, or the server or the network is stuck; check " +
          `the host and port of the url (url, ${shape})`
        assert.deepStrictEqual(warnings, [`s3cache: ${expected}; the cache runs uncached until Redis answers`])
        const error = yield* failingCall(store)
        assert.include(error.message, `Redis at 127.0.0.1:${port} does not answer (`)
        assert.include(error.message, "check the host and port of the url (url, S3CACHE_REDIS_URL")
      })
    ))

  it.scopedLive("the cache's fail-open warning carries the explanation", () =>
    withWarnings((warnings) =>
      Effect.gen(function*() {
        const port = yield* FaultProxy.freePort
        const metadata = yield* RedisMetadataStore.make({ url: `redis://127.0.0.1:${port}/0`, awaitReady: "1 millis" })
        const cache = yield* Cache.make({ name: `conn-errors-${process.pid}`, metadataTimeout: "500 millis" }).pipe(
          Effect.provideService(MetadataStore.MetadataStore, metadata),
          Effect.provideService(BlobStore.BlobStore, yield* BlobStore.makeMemory)
        )
        // let the first connection attempt fail, so the store knows why
        yield* Effect.sleep("300 millis")
        warnings.length = 0
        assert.strictEqual(yield* cache.cached(Effect.succeed(42), { key: "k" }), 42)
        const warning = warnings.find((line) => line.includes("refused the connection"))
        assert.isDefined(warning, warnings.join("\n"))
        assert.include(warning!, `Redis at 127.0.0.1:${port} refused the connection (connect ECONNREFUSED`)
        assert.include(warning!, `start Redis, or fix the host and port of the url (url, ${shape})`)
      })
    ))

  it.scopedLive("Redis that worked, killed: calls say it is down, not that the url is wrong; then it works again", () =>
    Effect.gen(function*() {
      const own = yield* RedisServer.make()
      const store = yield* RedisMetadataStore.make({ url: own.url })
      assert.deepStrictEqual(yield* store.lookup("conn-errors", hash, lock), { _tag: "Acquired" })
      yield* own.kill()
      const error = yield* untilIncludes(store, "refused the connection")
      assert.include(
        error.message,
        `Redis at 127.0.0.1:${own.port} refused the connection (connect ECONNREFUSED 127.0.0.1:${own.port}): Redis ` +
          "is down or restarting; the client reconnects by itself once it is back"
      )
      yield* own.restart
      for (let i = 0; i < 50; i++) {
        const result = yield* Effect.either(store.lookup("conn-errors", "b".repeat(64), lock))
        if (result._tag === "Right") return
        yield* Effect.sleep("100 millis")
      }
      assert.fail("the store did not recover within 5 s")
    }))

  it.scopedLive("Redis down at build, then up with a password the url lacks: calls say NOAUTH", () =>
    Effect.gen(function*() {
      const port = yield* FaultProxy.freePort
      const store = yield* RedisMetadataStore.make({ url: `redis://127.0.0.1:${port}/0`, awaitReady: "1 millis" })
      yield* Effect.flatMap(RedisServer.make({ port }), requirePassword)
      const error = yield* untilIncludes(store, "NOAUTH")
      assert.include(
        error.message,
        `Redis at 127.0.0.1:${port} requires a password and none was given (${noauth}): put it in the url (url, ` +
          `${shape})`
      )
    }))

  it.scopedLive("Redis down at build, then up without the url's database: calls carry the database message", () =>
    Effect.gen(function*() {
      const port = yield* FaultProxy.freePort
      const store = yield* RedisMetadataStore.make({ url: `redis://127.0.0.1:${port}/99`, awaitReady: "1 millis" })
      const up = yield* RedisServer.make({ port })
      const error = yield* untilIncludes(store, "DB index")
      assert.strictEqual(error.reason, "Unavailable")
      assert.include(
        error.message,
        `Redis at 127.0.0.1:${port} refused the database of the url (ERR DB index is out of range): the server has ` +
          "fewer databases"
      )
      assert.include(error.message, "Fix the /<db> at the end of the url (S3CACHE_REDIS_URL)")
      // the client stays closed: it never falls back to database 0
      const raw = yield* RedisServer.rawClient(up.url)
      assert.strictEqual(yield* Effect.promise(() => raw.dbsize()), 0)
      assert.include((yield* failingCall(store)).message, "DB index is out of range")
    }))
})

/** Calls `store` until its failure's message includes `text` (the client reconnects within ~1 s); at most 5 s. */
const untilIncludes = (store: MetadataStore.MetadataStore["Type"], text: string) =>
  Effect.gen(function*() {
    let last: MetadataStoreError | undefined
    for (let i = 0; i < 50; i++) {
      last = yield* failingCall(store)
      if (last.message.includes(text)) return last
      yield* Effect.sleep("100 millis")
    }
    return assert.fail(`no failure mentioned ${text}; the last: ${last?.message}`)
  })
