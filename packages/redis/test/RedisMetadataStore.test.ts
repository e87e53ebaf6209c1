import { assert, describe, it } from "@effect/vitest"
import { MetadataStore } from "@s3cache/core"
import { MetadataStoreError as MetadataStoreErrorClass } from "@s3cache/core/CacheError"
import type { MetadataStoreError } from "@s3cache/core/CacheError"
import type { CommitResult, EntryRecord } from "@s3cache/core/MetadataStore"
import * as FaultProxy from "@s3cache/core/test/FaultProxy"
import {
  commitHeld,
  freshNamespace,
  hashOf,
  makeRecord,
  metadataStoreSuite
} from "@s3cache/core/test/MetadataStoreSuite"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import type { Redis } from "ioredis"
import { RedisMetadataStore } from "../src/index.js"
import { encode } from "../src/internal/record.js"
import * as Ioredis from "./utils/ioredis.js"
import * as RedisServer from "./utils/RedisServer.js"
import { beforeAllScoped } from "./utils/shared.js"

const server = beforeAllScoped(RedisServer.make())
const cluster = beforeAllScoped(RedisServer.makeCluster())

metadataStoreSuite(
  `RedisMetadataStore (standalone, ioredis ${Ioredis.major})`,
  // exact LRU order: the suite checks eviction order access by access
  Layer.suspend(() => RedisMetadataStore.layer({ url: server().url, lruResolution: 0 })),
  { clock: "live" }
)

metadataStoreSuite(
  `RedisMetadataStore (3-master cluster, ioredis ${Ioredis.major})`,
  Layer.suspend(() => RedisMetadataStore.layer({ nodes: cluster().nodes, lruResolution: 0 })),
  { clock: "live" }
)

const rawOn = RedisServer.rawClient

/** A raw client on the shared test server. */
const raw = Effect.suspend(() => rawOn(server().url))

const lockOf = (token: string, lockTtlMs = 60_000) => ({ token, lockTtlMs })

const committedOf = (result: CommitResult) => {
  if (result._tag !== "Committed") throw new Error("expected the commit to happen, got LockLost")
  return result
}

const sorted = (keys: ReadonlyArray<string>): Array<string> => [...keys].sort()

/**
 * Writes records and their index entries the way a commit does, but in bulk: a pipeline per 1,000 records rather
 * than a script call per record, so tens of thousands take a fraction of a second.
 */
const seed = (client: Redis, records: ReadonlyArray<EntryRecord>, ttlMs: number, prefix = "qc:") =>
  Effect.promise(async () => {
    const now = Date.now()
    for (let start = 0; start < records.length; start += 1000) {
      const pipeline = client.pipeline()
      records.slice(start, start + 1000).forEach((record, i) => {
        const base = `${prefix}{${record.namespace}}:`
        pipeline.set(`${base}r:${record.hash}`, encode(record), "PX", ttlMs)
        pipeline.zadd(`${base}lru`, now * 1000 + start + i, record.hash)
        pipeline.zadd(`${base}exp`, now + ttlMs, record.hash)
        if (record.objectKey !== "") pipeline.hset(`${base}obj`, record.hash, record.objectKey)
      })
      const results = await pipeline.exec()
      const failed = results?.find(([error]) => error !== null)
      if (failed !== undefined) throw failed[0]
    }
  })

/** The names of the commands `client` sends, from now on. */
const recordCommands = (client: Redis) => {
  const sent: Array<string> = []
  const send = client.sendCommand.bind(client)
  client.sendCommand = (command, stream) => {
    sent.push(command.name)
    return send(command, stream)
  }
  return sent
}

describe("RedisMetadataStore", () => {
  it.scoped(`the client it creates is the ioredis it resolves (${Ioredis.major}), speaking RESP${Ioredis.protocol}`, () =>
    Effect.gen(function*() {
      const name = `s3cache-own-${Math.random().toString(36).slice(2, 8)}`
      const store = yield* RedisMetadataStore.make({ url: server().url, redisOptions: { connectionName: name } })
      yield* store.id
      const client = yield* raw
      const clients = String(yield* Effect.promise(() => client.call("CLIENT", "LIST")))
      const own = clients.split("\n").filter((line) => line.includes(` name=${name} `))
      assert.strictEqual(own.length, 1, clients)
      assert.match(own[0]!, new RegExp(`(^| )resp=${Ioredis.protocol}(\\s|$)`))
    }))

  it.scoped("a hit is one round trip: one EVALSHA and nothing else", () =>
    Effect.gen(function*() {
      const client = yield* raw
      const sent = recordCommands(client)
      const store = yield* RedisMetadataStore.make({ client })
      const record = makeRecord("roundtrips", hashOf("one-round-trip"))
      yield* commitHeld(store, record, 10)
      yield* store.lookup("roundtrips", record.hash, lockOf("t")) // loads the script
      yield* Effect.promise(() => client.config("RESETSTAT"))
      sent.length = 0
      const result = yield* store.lookup("roundtrips", record.hash, lockOf("t"))
      assert.strictEqual(result._tag, "Hit")
      // the LRU score is fresh (the previous lookup said how old it was): a plain GET, no script
      assert.deepStrictEqual(sent, ["get"])
      const stats = yield* Effect.promise(() => client.info("commandstats"))
      assert.match(stats, /cmdstat_get:calls=1,/)
      assert.notMatch(stats, /cmdstat_evalsha/)
    }))

  it.scopedLive("within lruResolution of the entry's LRU score a lookup is a plain GET; a record gone meanwhile is looked up by the script, which takes the lock", () =>
    Effect.gen(function*() {
      const client = yield* raw
      const sent = recordCommands(client)
      // a resolution wide enough that the first two lookups fall within it even on a loaded machine
      const store = yield* RedisMetadataStore.make({ client, lruResolution: "1 second" })
      const ns = yield* freshNamespace
      const record = makeRecord(ns, hashOf("plain-get"))
      yield* commitHeld(store, record, 10)
      // another entry keeps the namespace's indexes alive once `record` is removed (a lookup then needs no SADD)
      yield* commitHeld(store, makeRecord(ns, hashOf("keeper")), 10)
      sent.length = 0
      // the first lookup does not know the score's age: the script, which tells it
      assert.deepStrictEqual(yield* store.lookup(ns, record.hash, lockOf("t")), { _tag: "Hit", record })
      assert.deepStrictEqual(yield* store.lookup(ns, record.hash, lockOf("t")), { _tag: "Hit", record })
      assert.deepStrictEqual(sent, ["evalsha", "get"])
      // past the resolution the score is due again: the script writes it
      yield* Effect.sleep("1100 millis")
      sent.length = 0
      assert.deepStrictEqual(yield* store.lookup(ns, record.hash, lockOf("t")), { _tag: "Hit", record })
      assert.deepStrictEqual(yield* store.lookup(ns, record.hash, lockOf("t")), { _tag: "Hit", record })
      assert.deepStrictEqual(sent, ["evalsha", "get"])
      // removed (an invalidation by another process): the GET finds nothing, the script takes the lock
      yield* store.remove(ns, [record.hash])
      sent.length = 0
      assert.deepStrictEqual(yield* store.lookup(ns, record.hash, lockOf("t")), { _tag: "Acquired" })
      assert.deepStrictEqual(sent, ["get", "evalsha"])
      // lruResolution 0: every hit writes its score, so every lookup is the script
      const exact = yield* RedisMetadataStore.make({ client, lruResolution: 0 })
      const other = makeRecord(ns, hashOf("exact"))
      yield* commitHeld(exact, other, 10)
      sent.length = 0
      for (let i = 0; i < 3; i++) yield* exact.lookup(ns, other.hash, lockOf("t"))
      assert.deepStrictEqual(sent, ["evalsha", "evalsha", "evalsha"])
    }))

  it.scopedLive("tryHit: the plain GET as one promise, only while the LRU score is fresh, only a record that reads back, never a lock", () =>
    Effect.gen(function*() {
      const client = yield* raw
      const sent = recordCommands(client)
      const store = yield* RedisMetadataStore.make({ client, lruResolution: "1 second" })
      const tryHit = store.tryHit!
      const ns = yield* freshNamespace
      const record = makeRecord(ns, hashOf("try-hit"))
      yield* commitHeld(store, record, 10)
      yield* commitHeld(store, makeRecord(ns, hashOf("keeper")), 10)
      const options = () => ({ now: Date.now(), deadline: Date.now() + 5000 })
      // the score's age is not known yet: no answer, and nothing sent
      sent.length = 0
      assert.isUndefined(tryHit(ns, record.hash, options()))
      assert.deepStrictEqual(sent, [])
      // the script tells it; then a GET answers, with the record `lookup` gives
      assert.deepStrictEqual(yield* store.lookup(ns, record.hash, lockOf("t")), { _tag: "Hit", record })
      sent.length = 0
      assert.deepStrictEqual(yield* Effect.promise(() => tryHit(ns, record.hash, options())!), record)
      assert.deepStrictEqual(sent, ["get"])
      // a record that does not read back: no record (`lookup` drops it), and no lock taken
      const key = `qc:{${ns}}:r:${record.hash}`
      const good = yield* Effect.promise(() => client.getBuffer(key))
      yield* Effect.promise(() => client.set(key, "not a record", "KEEPTTL"))
      assert.isUndefined(yield* Effect.promise(() => tryHit(ns, record.hash, options())!))
      assert.strictEqual(yield* Effect.promise(() => client.exists(`qc:{${ns}}:lock:${record.hash}`)), 0)
      yield* Effect.promise(() => client.set(key, good!, "KEEPTTL"))
      // gone: no record, and the score is forgotten, so the next call is `lookup`'s again
      yield* store.remove(ns, [record.hash])
      assert.isUndefined(yield* Effect.promise(() => tryHit(ns, record.hash, options())!))
      assert.isUndefined(tryHit(ns, record.hash, options()))
      // lruResolution 0: every hit writes its score, which only `lookup` does
      const exact = yield* RedisMetadataStore.make({ client, lruResolution: 0 })
      const other = makeRecord(ns, hashOf("exact-try"))
      yield* commitHeld(exact, other, 10)
      yield* exact.lookup(ns, other.hash, lockOf("t"))
      assert.isUndefined(exact.tryHit!(ns, other.hash, options()))
    }))

  it.scopedLive("tryHit settles by its deadline with the MetadataStoreError lookup would fail with", () =>
    Effect.gen(function*() {
      const proxy = yield* FaultProxy.make({ host: server().host, port: server().port })
      const store = yield* RedisMetadataStore.make({
        url: `redis://${proxy.host}:${proxy.port}/0`,
        // longer than the deadline, so the deadline is what ends the call
        commandTimeout: "2 seconds",
        lruResolution: "1 minute"
      })
      const record = makeRecord("tryhit-stall", hashOf("stalled"))
      yield* commitHeld(store, record, 10)
      yield* store.lookup("tryhit-stall", record.hash, lockOf("t"))
      yield* proxy.setMode("blackhole")
      const error = yield* Effect.promise(() =>
        store.tryHit!("tryhit-stall", record.hash, { now: Date.now(), deadline: Date.now() + 200 })!.then(
          () => undefined,
          (error: unknown) => error
        )
      )
      assert.instanceOf(error, MetadataStoreErrorClass)
      assert.strictEqual((error as MetadataStoreError).reason, "Timeout")
      assert.strictEqual((error as MetadataStoreError).method, "lookup")
    }).pipe(FaultProxy.watchdog("20 seconds", "tryHit deadline test")))

  it.scoped("a miss is one round trip too, but for the first lock in a namespace, which registers it (and checks)", () =>
    Effect.gen(function*() {
      const client = yield* raw
      const store = yield* RedisMetadataStore.make({ client })
      const ns = yield* freshNamespace
      yield* store.lookup(yield* freshNamespace, hashOf("warm-up"), lockOf("t")) // loads the script
      const sent = recordCommands(client)
      assert.deepStrictEqual(yield* store.lookup(ns, hashOf("first"), lockOf("t")), { _tag: "Acquired" })
      assert.deepStrictEqual(sent, ["evalsha", "sadd", "evalsha", "sismember"])
      assert.isTrue((yield* store.namespaces).includes(ns))
      sent.length = 0
      assert.deepStrictEqual(yield* store.lookup(ns, hashOf("second"), lockOf("t")), { _tag: "Acquired" })
      assert.deepStrictEqual(yield* store.lookup(ns, hashOf("second"), lockOf("u")), { _tag: "Busy" })
      assert.deepStrictEqual(sent, ["evalsha", "evalsha"])
    }))

  it.scoped("keys carry the namespace as a hash tag and the configured prefix", () =>
    Effect.gen(function*() {
      const store = yield* RedisMetadataStore.make({ url: server().url, keyPrefix: "tagged:" })
      const client = yield* raw
      const record = makeRecord("tags", hashOf("tagged"))
      yield* commitHeld(store, record, 10)
      yield* store.lookup("tags", hashOf("locked"), lockOf("t"))
      const id = yield* store.id
      const exists = yield* Effect.promise(() =>
        Promise.all([
          client.exists(`tagged:{tags}:r:${record.hash}`),
          client.exists("tagged:{tags}:lru"),
          client.exists(`tagged:{tags}:lock:${hashOf("locked")}`),
          client.zcard("tagged:{tags}:locked"),
          client.sismember("tagged:namespaces", "tags"),
          client.get("tagged:id")
        ])
      )
      assert.deepStrictEqual(exists, [1, 1, 1, 1, 1, id])
      const ttl = yield* Effect.promise(() => client.pttl(`tagged:{tags}:r:${record.hash}`))
      assert.isAbove(ttl, 3_500_000)
    }))

  it.scoped("a hostile namespace or hash is a typed error before anything is sent", () =>
    Effect.gen(function*() {
      const store = yield* RedisMetadataStore.make({ url: server().url })
      for (const namespace of ["*", "{", "}", ":", "", "a}b", "x".repeat(10_000)]) {
        const error = yield* Effect.flip(store.lookup(namespace, hashOf("h"), lockOf("t")))
        assert.strictEqual(error._tag, "MetadataStoreError")
        assert.strictEqual(error.reason, "InvalidArgument")
        assert.include(error.message, "letters, digits")
        assert.strictEqual((yield* Effect.flip(store.clearNamespace(namespace))).reason, "InvalidArgument")
        assert.strictEqual(
          (yield* Effect.flip(store.acquireLock(namespace, hashOf("h"), lockOf("t")))).reason,
          "InvalidArgument"
        )
      }
      const badHashes: ReadonlyArray<Effect.Effect<unknown, MetadataStoreError>> = [
        store.remove("ok", ["}:e:*"]),
        store.removeIf("ok", "}:e:*", ""),
        store.renewLock("ok", "*", lockOf("t")),
        store.acquireLock("ok", "x", lockOf("t"))
      ]
      for (const failure of badHashes) {
        assert.strictEqual((yield* Effect.flip(failure)).reason, "InvalidArgument")
      }
    }))

  it.scoped("a malformed option is a typed error naming it", () =>
    Effect.gen(function*() {
      const prefix = yield* Effect.flip(RedisMetadataStore.make({ url: server().url, keyPrefix: "{oops}" }))
      assert.strictEqual(prefix.reason, "InvalidOption")
      assert.include(prefix.message, "keyPrefix")
      const both = yield* Effect.flip(RedisMetadataStore.make({ url: server().url, nodes: [] }))
      assert.include(both.message, "one of url, nodes or client")
    }))

  it.scoped("a url that is not a Redis URL is refused with what it should look like, before anything connects", () =>
    Effect.gen(function*() {
      const port = new URL(server().url).port
      const cases: ReadonlyArray<readonly [string, string]> = [
        ["not-a-url", "is not a URL"],
        [`http://127.0.0.1:${port}`, "has the scheme http"],
        [`127.0.0.1:${port}`, "is not a URL"],
        [`redis://127.0.0.1:${port}/zero`, "it must be a number"],
        [`redis://:secret@127.0.0.1:${port}/x`, "it must be a number"],
        [`redis//:secret@127.0.0.1:${port}`, "is not a URL"]
      ]
      for (const [url, problem] of cases) {
        const error = yield* Effect.flip(RedisMetadataStore.make({ url }))
        assert.strictEqual(error.reason, "InvalidOption", url)
        assert.include(error.message, problem, url)
        assert.include(error.message, "redis://[user:password@]host[:port][/db]", url)
        assert.notInclude(error.message, "secret", "the password is not repeated")
      }
      const fromEnv = yield* Effect.flip(
        Effect.flatMap(RedisMetadataStore.config, RedisMetadataStore.make).pipe(
          Effect.withConfigProvider(
            ConfigProvider.fromMap(new Map([["S3CACHE_REDIS_URL", "not-a-url"]]), { pathDelim: "_" })
          )
        )
      )
      assert.include(fromEnv.message, "S3CACHE_REDIS_URL")
    }))

  it.scoped("a database the server does not have is refused; nothing is written to database 0 instead", () =>
    Effect.gen(function*() {
      const client = yield* raw
      const before = yield* Effect.promise(() => client.dbsize())
      const url = server().url.replace(/\/0$/, "/99")
      const error = yield* Effect.flip(RedisMetadataStore.make({ url }))
      assert.strictEqual(error.reason, "InvalidOption")
      assert.include(error.message, "DB index is out of range")
      assert.include(error.message, "Fix the /<db> at the end of the url (S3CACHE_REDIS_URL)")
      assert.strictEqual(yield* Effect.promise(() => client.dbsize()), before, "database 0 untouched")
      // a database the server has is fine
      const fine = yield* RedisMetadataStore.make({ url: server().url.replace(/\/0$/, "/15") })
      assert.deepStrictEqual(yield* fine.lookup("db15", "a".repeat(64), lockOf("t")), { _tag: "Acquired" })
      assert.strictEqual(yield* Effect.promise(() => client.dbsize()), before, "the lock went to database 15")
    }))

  it.scoped("clearing a namespace goes in steps and leaves no key behind, not even the lock SET of earlier versions", () =>
    Effect.gen(function*() {
      const store = yield* RedisMetadataStore.make({ url: server().url, removeBatchSize: 7 })
      const client = yield* raw
      const ns = yield* freshNamespace
      const records = Array.from({ length: 50 }, (_, i) => makeRecord(ns, hashOf(`bulk-${i}`)))
      for (const record of records) yield* commitHeld(store, record, 1000)
      yield* store.lookup(ns, hashOf("locked"), lockOf("t"))
      // an upgrade leaves the SET that earlier versions indexed their locks in
      yield* Effect.promise(() => client.sadd(`qc:{${ns}}:locks`, hashOf("old-lock")))
      const removed: Array<string> = []
      let steps = 0
      for (let done = false; !done; steps++) {
        const step = yield* store.clearNamespace(ns)
        assert.isAtMost(step.objectKeys.length, 7)
        removed.push(...step.objectKeys)
        done = step.done
      }
      assert.strictEqual(steps, Math.ceil(50 / 7))
      assert.deepStrictEqual(sorted(removed), sorted(records.map((r) => r.objectKey)))
      const left = yield* Effect.promise(() =>
        Promise.all([
          client.exists(
            `qc:{${ns}}:lru`,
            `qc:{${ns}}:exp`,
            `qc:{${ns}}:obj`,
            `qc:{${ns}}:locked`,
            `qc:{${ns}}:locks`
          ),
          client.exists(`qc:{${ns}}:lock:${hashOf("locked")}`),
          client.sismember("qc:namespaces", ns)
        ])
      )
      assert.deepStrictEqual(left, [0, 0, 0])
    }))

  // The registry lives in another slot than the namespace's keys, so registering and unregistering cannot be atomic
  // with taking a lock; these two tests land the other side's step exactly in the window.
  it.scoped("a lock taken while clearNamespace forgets the namespace keeps it registered (clear side)", () =>
    Effect.gen(function*() {
      const ns = yield* freshNamespace
      const hash = hashOf("raced")
      const clearing = yield* raw
      const other = yield* RedisMetadataStore.make({ client: yield* raw })
      const store = yield* RedisMetadataStore.make({ client: clearing })
      yield* commitHeld(store, makeRecord(ns, hashOf("old")), 10)
      // between the last clear step and its SREM, another process takes a lock in the (now keyless) namespace
      const srem = clearing.srem.bind(clearing)
      let raced = false
      clearing.srem = ((...args: Parameters<typeof srem>) =>
        (raced ? Promise.resolve() : Effect.runPromise(
          Effect.map(other.lookup(ns, hash, { token: "T", lockTtlMs: 60_000 }), (result) => {
            raced = true
            assert.strictEqual(result._tag, "Acquired")
          })
        )).then(() => srem(...args))) as typeof srem
      let step = yield* store.clearNamespace(ns)
      while (!step.done) step = yield* store.clearNamespace(ns)
      assert.isTrue(raced)
      assert.isTrue((yield* store.namespaces).includes(ns), "the lock's namespace stays registered")
      // so a clear now reaches the computation in flight: its commit is refused
      let again = yield* store.clearNamespace(ns)
      while (!again.done) again = yield* store.clearNamespace(ns)
      assert.deepStrictEqual(yield* other.commit(makeRecord(ns, hash), { token: "T", maxEntries: 10 }), {
        _tag: "LockLost"
      })
    }))

  it.scoped("a lock taken while clearNamespace forgets the namespace keeps it registered (lock side)", () =>
    Effect.gen(function*() {
      const ns = yield* freshNamespace
      const hash = hashOf("raced")
      const locking = yield* raw
      const cleaner = yield* raw
      const store = yield* RedisMetadataStore.make({ client: locking })
      // between this lookup's own SADD and its retry, a clear elsewhere unregisters the namespace
      const sadd = locking.sadd.bind(locking)
      let raced = false
      locking.sadd = ((...args: Parameters<typeof sadd>) =>
        sadd(...args).then(async (reply) => {
          if (!raced) {
            raced = true
            await cleaner.srem("qc:namespaces", ns)
          }
          return reply
        })) as typeof sadd
      assert.deepStrictEqual(yield* store.lookup(ns, hash, { token: "T", lockTtlMs: 60_000 }), { _tag: "Acquired" })
      assert.isTrue(raced)
      assert.isTrue((yield* store.namespaces).includes(ns), "the lock's namespace is registered")
    }))

  it.scoped("clearNamespace of 20,000 records: steps of at most removeBatchSize records, one script call each", () =>
    Effect.gen(function*() {
      const client = yield* raw
      const ns = yield* freshNamespace
      const records = Array.from({ length: 20_000 }, (_, i) => makeRecord(ns, hashOf(`many-${i}`)))
      yield* seed(client, records, 3_600_000)
      const store = yield* RedisMetadataStore.make({ client })
      assert.strictEqual(yield* store.size(ns), 20_000)
      assert.deepStrictEqual(yield* store.lookup(ns, hashOf("in-flight"), lockOf("A")), { _tag: "Acquired" })
      yield* store.clearNamespace(yield* freshNamespace) // loads the script
      const sent = recordCommands(client)
      const removed: Array<string> = []
      let steps = 0
      for (let done = false; !done;) {
        sent.length = 0
        const step = yield* store.clearNamespace(ns)
        steps++
        done = step.done
        assert.isAtMost(step.objectKeys.length, 500)
        assert.deepStrictEqual(sent, done ? ["evalsha", "srem", "exists"] : ["evalsha"])
        removed.push(...step.objectKeys)
        if (steps === 1) {
          assert.isFalse(yield* store.renewLock(ns, hashOf("in-flight"), lockOf("A")), "the first step took the locks")
        }
        assert.isBelow(steps, 100)
      }
      assert.strictEqual(steps, 40)
      assert.strictEqual(removed.length, 20_000)
      assert.deepStrictEqual(sorted(removed), sorted(records.map((r) => r.objectKey)))
      assert.strictEqual(yield* store.size(ns), 0)
      assert.isFalse((yield* store.namespaces).includes(ns))
    }))

  it.scopedLive("at maxmemory under noeviction, hits stay hits and commits fail fast with a typed error", () =>
    Effect.gen(function*() {
      const full = yield* RedisServer.make({ args: ["--maxmemory-policy", "noeviction"] })
      const client = yield* rawOn(full.url)
      const store = yield* RedisMetadataStore.make({ url: full.url })
      const ns = "full"
      const record = makeRecord(ns, hashOf("kept"))
      const late = makeRecord(ns, hashOf("late"))
      yield* commitHeld(store, record, 10)
      assert.strictEqual((yield* store.lookup(ns, record.hash, lockOf("A")))._tag, "Hit") // loads the script
      assert.isTrue(yield* store.acquireLock(ns, late.hash, lockOf("W")))
      const id = yield* store.id
      const score = yield* Effect.promise(() => client.zscore(`qc:{${ns}}:lru`, record.hash))

      // below what Redis already uses: every write that may grow memory is refused from now on
      yield* Effect.promise(() => client.config("SET", "maxmemory", "1"))
      // nothing may hang: a call that does not answer within this fails the test
      const bounded = <A>(self: Effect.Effect<A, MetadataStoreError>) =>
        self.pipe(Effect.timeout("2 seconds"), Effect.catchTag("TimeoutException", () => Effect.dieMessage("hung")))

      for (let i = 0; i < 3; i++) {
        assert.deepStrictEqual(yield* bounded(store.lookup(ns, record.hash, lockOf("B"))), { _tag: "Hit", record })
      }
      // the touch was refused, the hit was not
      assert.strictEqual(yield* Effect.promise(() => client.zscore(`qc:{${ns}}:lru`, record.hash)), score)
      const commitError = yield* Effect.flip(bounded(store.commit(late, { token: "W", maxEntries: 10 })))
      assert.strictEqual(commitError._tag, "MetadataStoreError")
      assert.strictEqual(commitError.reason, "Unavailable")
      assert.include(commitError.message, "maxmemory")
      // nothing of the refused commit was written, and the writer still holds its lock
      assert.deepStrictEqual(yield* bounded(store.getMany(ns, [late.hash, record.hash])), [
        Option.none(),
        Option.some(record)
      ])
      assert.isTrue(yield* bounded(store.renewLock(ns, late.hash, lockOf("W"))))
      const lockError = yield* Effect.flip(bounded(store.lookup(ns, hashOf("new"), lockOf("C"))))
      assert.strictEqual(lockError._tag, "MetadataStoreError")
      assert.strictEqual(yield* bounded(store.id), id)
      // what frees memory still works
      assert.deepStrictEqual(yield* bounded(store.remove(ns, [record.hash])), [record.objectKey])

      yield* Effect.promise(() => client.config("SET", "maxmemory", "0"))
      assert.strictEqual(committedOf(yield* store.commit(late, { token: "W", maxEntries: 10 })).evicted, 0)
    }))

  it.scopedLive("a hit writes its LRU score only when the score is older than lruResolution", () =>
    Effect.gen(function*() {
      const store = yield* RedisMetadataStore.make({ url: server().url, lruResolution: "300 millis" })
      const client = yield* raw
      const ns = yield* freshNamespace
      const record = makeRecord(ns, hashOf("hot"))
      yield* commitHeld(store, record, 10)
      const score = () => Effect.promise(() => client.zscore(`qc:{${ns}}:lru`, record.hash)).pipe(Effect.map(Number))
      const committedAt = yield* score()
      for (let i = 0; i < 20; i++) assert.strictEqual((yield* store.lookup(ns, record.hash, lockOf("R")))._tag, "Hit")
      assert.strictEqual(yield* score(), committedAt, "hits within the resolution wrote the score")
      yield* Effect.sleep("350 millis")
      assert.strictEqual((yield* store.lookup(ns, record.hash, lockOf("R")))._tag, "Hit")
      const touchedAt = yield* score()
      assert.isAbove(touchedAt - committedAt, 300_000, "a hit after the resolution moved the score (µs)")
      assert.strictEqual((yield* store.lookup(ns, record.hash, lockOf("R")))._tag, "Hit")
      assert.strictEqual(yield* score(), touchedAt)
    }))

  it.scoped("lruResolution: a negative or infinite one is refused, naming the option", () =>
    Effect.gen(function*() {
      for (const lruResolution of [-1, "forever", Duration.infinity]) {
        const error = yield* Effect.flip(
          RedisMetadataStore.make({ url: server().url, lruResolution: lruResolution as Duration.DurationInput })
        )
        assert.include(error.message, "lruResolution")
      }
    }))

  it.scoped("a record deleted behind the store's back (a ghost) never costs a live entry its place", () =>
    Effect.gen(function*() {
      const store = yield* RedisMetadataStore.make({ url: server().url, lruResolution: 0 })
      const client = yield* raw
      const ns = yield* freshNamespace
      const record = (label: string) => makeRecord(ns, hashOf(label))
      const [a, b, c, d, e, f] = [record("a"), record("b"), record("c"), record("d"), record("e"), record("f")]
      for (const live of [a, b, c, d]) yield* commitHeld(store, live, 4)
      // b becomes the most recently accessed entry, the last one an eviction walking from the oldest would meet
      assert.strictEqual((yield* store.lookup(ns, b.hash, lockOf("R")))._tag, "Hit")
      // what Redis's own eviction (volatile-*, allkeys-*) or an operator does: the record goes, the indexes stay
      yield* Effect.promise(() => client.del(`qc:{${ns}}:r:${b.hash}`))

      // 4 live entries with e: within maxEntries, so nothing live is evicted; the ghost is dropped and reported
      assert.deepStrictEqual(yield* commitHeld(store, e, 4), { _tag: "Committed", obsolete: [b.objectKey], evicted: 0 })
      assert.deepStrictEqual(
        yield* store.getMany(ns, [a.hash, c.hash, d.hash, e.hash]),
        [a, c, d, e].map((r) => Option.some(r))
      )
      assert.strictEqual(yield* store.size(ns), 4)
      const indexed = yield* Effect.promise(() =>
        Promise.all([
          client.zscore(`qc:{${ns}}:lru`, b.hash),
          client.zscore(`qc:{${ns}}:exp`, b.hash),
          client.hget(`qc:{${ns}}:obj`, b.hash)
        ])
      )
      assert.deepStrictEqual(indexed, [null, null, null])

      // a fifth live entry: now the least recently accessed one goes, counted as evicted
      assert.deepStrictEqual(yield* commitHeld(store, f, 4), { _tag: "Committed", obsolete: [a.objectKey], evicted: 1 })
      assert.deepStrictEqual(yield* store.getMany(ns, [a.hash, c.hash, f.hash]), [
        Option.none(),
        Option.some(c),
        Option.some(f)
      ])
    }))

  it.scoped("a burst of ghosts at the old end (Redis's LRU eviction) is dropped over several commits, costing no live entry", () =>
    Effect.gen(function*() {
      const store = yield* RedisMetadataStore.make({ url: server().url })
      const client = yield* raw
      const ns = yield* freshNamespace
      const old = Array.from({ length: 50 }, (_, i) => makeRecord(ns, hashOf(`old-${i}`)))
      for (const record of old) yield* commitHeld(store, record, 50)
      // more ghosts than one commit looks at
      const ghosts = old.slice(0, 40)
      yield* Effect.promise(() => client.del(...ghosts.map((record) => `qc:{${ns}}:r:${record.hash}`)))
      const fresh = Array.from({ length: 45 }, (_, i) => makeRecord(ns, hashOf(`new-${i}`)))
      const obsolete: Array<string> = []
      let evicted = 0
      for (const record of fresh) {
        const result = committedOf(yield* commitHeld(store, record, 50))
        obsolete.push(...result.obsolete)
        evicted += result.evicted
      }
      // 10 survivors and 45 new entries: 5 too many, and those are the least recently accessed live ones
      assert.strictEqual(evicted, 5)
      const evictedLive = old.slice(40, 45)
      assert.deepStrictEqual(sorted(obsolete), sorted([...ghosts, ...evictedLive].map((r) => r.objectKey)))
      const kept = [...old.slice(45), ...fresh]
      assert.isTrue((yield* store.getMany(ns, kept.map((r) => r.hash))).every(Option.isSome))
      assert.strictEqual(yield* store.size(ns), 50)
    }))

  it.scopedLive("locks that lapse without a release are pruned from the lock index", () =>
    Effect.gen(function*() {
      const store = yield* RedisMetadataStore.make({ url: server().url })
      const client = yield* raw
      const ns = yield* freshNamespace
      const locked = `qc:{${ns}}:locked`
      const zcard = Effect.promise(() => client.zcard(locked))
      const writer = makeRecord(ns, hashOf("writer"))
      assert.isTrue(yield* store.acquireLock(ns, writer.hash, lockOf("W")))
      // holders that crash: they never release
      for (let i = 0; i < 5; i++) {
        assert.deepStrictEqual(yield* store.lookup(ns, hashOf(`crashed-${i}`), lockOf(`C${i}`, 50)), {
          _tag: "Acquired"
        })
      }
      assert.strictEqual(yield* zcard, 6)
      yield* Effect.sleep("150 millis")
      // taking a lock prunes the lapsed ones
      assert.deepStrictEqual(yield* store.lookup(ns, hashOf("reader"), lockOf("R")), { _tag: "Acquired" })
      assert.deepStrictEqual(
        sorted(yield* Effect.promise(() => client.zrange(locked, 0, -1))),
        sorted([writer.hash, hashOf("reader")])
      )

      for (let i = 0; i < 3; i++) {
        assert.isTrue(yield* store.acquireLock(ns, hashOf(`crashed-again-${i}`), lockOf(`D${i}`, 50)))
      }
      assert.strictEqual(yield* zcard, 5)
      yield* Effect.sleep("150 millis")
      // so does a commit, which also drops its own lock from the index
      committedOf(yield* store.commit(writer, { token: "W", maxEntries: 10 }))
      assert.deepStrictEqual(yield* Effect.promise(() => client.zrange(locked, 0, -1)), [hashOf("reader")])
      // an invalidation removes the lock and its index entry; so does a release
      yield* store.remove(ns, [hashOf("reader")])
      assert.strictEqual(yield* zcard, 0)
      assert.isTrue(yield* store.acquireLock(ns, hashOf("released"), lockOf("X")))
      yield* store.releaseLock(ns, hashOf("released"), "X")
      assert.strictEqual(yield* zcard, 0)
    }))

  it.scopedLive("one commit drops at most 100 of 15,000 expired entries; later commits drop the rest", () =>
    Effect.gen(function*() {
      const store = yield* RedisMetadataStore.make({ url: server().url, commandTimeout: "5 seconds" })
      const client = yield* raw
      const ns = yield* freshNamespace
      const expired = Array.from({ length: 15_000 }, (_, i) => makeRecord(ns, hashOf(`expired-${i}`)))
      yield* seed(client, expired, 1)
      yield* Effect.sleep("50 millis")
      const indexed = Effect.promise(() => client.zcard(`qc:{${ns}}:exp`))
      assert.strictEqual(yield* indexed, 15_000)

      const first = makeRecord(ns, hashOf("first"))
      const result = committedOf(yield* commitHeld(store, first, 100_000))
      assert.strictEqual(result.obsolete.length, 100)
      assert.strictEqual(result.evicted, 0)
      assert.strictEqual(yield* indexed, 15_000 - 100 + 1)

      const obsolete = new Set(result.obsolete)
      let commits = 1
      while ((yield* indexed) > commits) {
        const next = committedOf(yield* commitHeld(store, makeRecord(ns, hashOf(`next-${commits}`)), 100_000))
        assert.isAtMost(next.obsolete.length, 100)
        for (const key of next.obsolete) obsolete.add(key)
        commits++
        assert.isAtMost(commits, 200)
      }
      assert.strictEqual(commits, 150)
      assert.deepStrictEqual(sorted([...obsolete]), sorted(expired.map((r) => r.objectKey)))
      assert.strictEqual(yield* store.size(ns), commits)
    }))

  it.scoped("a malformed record is dropped by lookup, which then takes the lock; getMany reads it as missing", () =>
    Effect.gen(function*() {
      const store = yield* RedisMetadataStore.make({ url: server().url })
      const client = yield* raw
      const ns = yield* freshNamespace
      // what someone writing by hand, or another program, might leave under a record's key
      const headerOf = (label: string) => {
        const value = encode(makeRecord(ns, hashOf(label))).toString("utf8")
        return JSON.parse(value.slice(0, value.indexOf("\n"))) as Record<string, unknown>
      }
      const { x: _, ...noChecksum } = headerOf("no-checksum")
      const written: Array<[string, string]> = [
        [hashOf("no-checksum"), `${JSON.stringify(noChecksum)}\n`],
        [hashOf("bad-size"), `${JSON.stringify({ ...headerOf("bad-size"), s: "abc" })}\n`],
        [hashOf("no-header"), "just some bytes"],
        [hashOf("short-payload"), `${JSON.stringify({ ...headerOf("short-payload"), o: "", i: 1, s: 10 })}\nabc`]
      ]
      for (const [hash, value] of written) {
        yield* Effect.promise(() => client.set(`qc:{${ns}}:r:${hash}`, value, "PX", 3_600_000))
      }
      const hashes = written.map(([hash]) => hash)
      assert.deepStrictEqual(yield* store.getMany(ns, hashes), hashes.map(() => Option.none()))

      const logs: Array<string> = []
      const logger = Logger.make(({ logLevel, message }) => {
        logs.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
      })
      for (const hash of hashes) {
        logs.length = 0
        const result = yield* store.lookup(ns, hash, lockOf("A")).pipe(
          Effect.provide(Logger.replace(Logger.defaultLogger, logger))
        )
        assert.deepStrictEqual(result, { _tag: "Acquired" })
        assert.strictEqual(logs.length, 1)
        assert.match(logs[0]!, /^WARN .*malformed/)
        assert.strictEqual(yield* Effect.promise(() => client.exists(`qc:{${ns}}:r:${hash}`)), 0)
        assert.isNull(yield* Effect.promise(() => client.zscore(`qc:{${ns}}:lru`, hash)))

        const record = makeRecord(ns, hash)
        assert.deepStrictEqual(yield* store.commit(record, { token: "A", maxEntries: 10 }), {
          _tag: "Committed",
          obsolete: [],
          evicted: 0
        })
        assert.deepStrictEqual(yield* store.lookup(ns, hash, lockOf("B")), { _tag: "Hit", record })
      }
      assert.isTrue((yield* store.getMany(ns, hashes)).every(Option.isSome))
    }))

  it.scoped("id: one per server and prefix, created by the first client that asks, kept across stores", () =>
    Effect.gen(function*() {
      const client = yield* raw
      const url = server().url
      const prefix = `id-${Math.random().toString(36).slice(2, 8)}:`
      const stores = yield* Effect.forEach(
        Array.from({ length: 5 }, () => RedisMetadataStore.make({ url, keyPrefix: prefix })),
        (make) => make
      )
      // concurrent first readers agree
      const ids = yield* Effect.forEach(stores, (store) => store.id, { concurrency: "unbounded" })
      assert.strictEqual(new Set(ids).size, 1)
      const id = ids[0]!
      assert.match(id, /^[A-Za-z0-9_-]{8,64}$/)
      assert.strictEqual(yield* Effect.promise(() => client.get(`${prefix}id`)), id)

      const again = yield* Effect.scoped(
        Effect.flatMap(RedisMetadataStore.make({ url, keyPrefix: prefix }), (s) => s.id)
      )
      assert.strictEqual(again, id)
      const other = yield* Effect.scoped(
        Effect.flatMap(RedisMetadataStore.make({ url, keyPrefix: `other-${prefix}` }), (s) => s.id)
      )
      assert.notStrictEqual(other, id)

      // a store keeps the id it read
      yield* Effect.promise(() => client.set(`${prefix}id`, "changed-behind-its-back"))
      assert.strictEqual(yield* stores[0]!.id, id)

      yield* Effect.promise(() => client.set(`junk:id`, "not an id!"))
      const junk = yield* Effect.flip(
        Effect.scoped(Effect.flatMap(RedisMetadataStore.make({ url, keyPrefix: "junk:" }), (s) => s.id))
      )
      assert.strictEqual(junk.reason, "Protocol")
      assert.include(junk.message, "junk:id")
    }))

  it.scopedLive("the layer builds while Redis is down; the id is read once Redis answers", () =>
    Effect.gen(function*() {
      const down = yield* RedisServer.make()
      yield* down.kill()
      const store = yield* RedisMetadataStore.make({ url: down.url, awaitReady: "100 millis" })
      const error = yield* Effect.flip(store.id)
      assert.strictEqual(error._tag, "MetadataStoreError")
      yield* down.restart
      // the client reconnects by itself, with a backoff of up to a second
      const id = yield* Effect.retry(store.id, Schedule.spaced("50 millis").pipe(Schedule.upTo("5 seconds")))
      assert.match(id, /^[A-Za-z0-9_-]{8,64}$/)
    }))

  it.effect("options from S3CACHE_REDIS_* variables; malformed cluster nodes are a ConfigError", () =>
    Effect.gen(function*() {
      const fromEnv = (env: Record<string, string>) =>
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)), { pathDelim: "_" }))
      const options = yield* RedisMetadataStore.config.pipe(fromEnv({
        S3CACHE_REDIS_URL: "rediss://cache:6380/2",
        S3CACHE_REDIS_KEY_PREFIX: "svc:",
        S3CACHE_REDIS_PASSWORD: "secret",
        S3CACHE_REDIS_COMMAND_TIMEOUT: "0.5"
      }))
      assert.strictEqual(options.url, "rediss://cache:6380/2")
      assert.strictEqual(options.keyPrefix, "svc:")
      assert.strictEqual(Redacted.value(options.password!), "secret")
      assert.strictEqual(Duration.toMillis(options.commandTimeout as Duration.Duration), 500)
      assert.isUndefined(options.nodes)
      const cluster = yield* RedisMetadataStore.config.pipe(fromEnv({
        S3CACHE_REDIS_CLUSTER_NODES: "10.0.0.1:7000, 10.0.0.2:7001"
      }))
      assert.deepStrictEqual(cluster.nodes, [{ host: "10.0.0.1", port: 7000 }, { host: "10.0.0.2", port: 7001 }])
      const bad = yield* Effect.flip(RedisMetadataStore.config.pipe(fromEnv({ S3CACHE_REDIS_CLUSTER_NODES: "a:1,b" })))
      assert.include(String(bad), "host:port")
      // errors name the variable the user set, not a path under S3CACHE_REDIS
      assert.include(String(bad), "S3CACHE_REDIS_CLUSTER_NODES")
      const timeout = yield* Effect.flip(
        RedisMetadataStore.config.pipe(fromEnv({ S3CACHE_REDIS_COMMAND_TIMEOUT: "soon" }))
      )
      assert.include(String(timeout), "S3CACHE_REDIS_COMMAND_TIMEOUT")
      assert.notInclude(String(timeout), "S3CACHE_REDIS.")
      // a value that parses but is out of range: the store's check names the variable too
      const slots = yield* Effect.flip(
        Layer.build(RedisMetadataStore.layerConfig()).pipe(
          fromEnv({ S3CACHE_REDIS_URL: "redis://127.0.0.1:1/0", S3CACHE_REDIS_SLOTS_PER_NAMESPACE: "0" }),
          Effect.scoped
        )
      )
      assert.include(String(slots.message), "S3CACHE_REDIS_SLOTS_PER_NAMESPACE must be an integer from 1 to 1024")
    }))

  it.scoped("layerConfig builds a working store from variables", () =>
    Effect.gen(function*() {
      const env = new Map([["S3CACHE_REDIS_URL", server().url], ["S3CACHE_REDIS_KEY_PREFIX", "cfg:"]])
      yield* Effect.flatMap(MetadataStore.MetadataStore, (store) =>
        commitHeld(store, makeRecord("cfg", hashOf("cfg")), 10))
        .pipe(
          Effect.provide(RedisMetadataStore.layerConfig()),
          Effect.withConfigProvider(ConfigProvider.fromMap(env, { pathDelim: "_" }))
        )
      const client = yield* raw
      assert.strictEqual(
        yield* Effect.promise(() =>
          client.sismember("cfg:namespaces", "cfg")
        ),
        1
      )
    }))

  it.scoped("an existing client is used and left open", () =>
    Effect.gen(function*() {
      const client = yield* raw
      yield* Effect.scoped(Effect.gen(function*() {
        const store = yield* RedisMetadataStore.make({ client })
        yield* commitHeld(store, makeRecord("owned", hashOf("owned")), 10)
      }))
      assert.strictEqual(client.status, "ready")
      assert.strictEqual(yield* Effect.promise(() => client.sismember("qc:namespaces", "owned")), 1)
    }))
})
