import { assert, describe, it } from "@effect/vitest"
import { MetadataStore } from "@s3cache/core"
import { hashOf, makeRecord, metadataStoreSuite } from "@s3cache/core/test/MetadataStoreSuite"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { Redis } from "ioredis"
import { RedisMetadataStore } from "../src/index.js"
import * as RedisServer from "./utils/RedisServer.js"
import { beforeAllScoped } from "./utils/shared.js"

const server = beforeAllScoped(RedisServer.make())
const cluster = beforeAllScoped(RedisServer.makeCluster())

metadataStoreSuite(
  "RedisMetadataStore (standalone)",
  Layer.suspend(() => RedisMetadataStore.layer({ url: server().url })),
  { clock: "live" }
)

metadataStoreSuite(
  "RedisMetadataStore (3-master cluster)",
  Layer.suspend(() => RedisMetadataStore.layer({ nodes: cluster().nodes })),
  { clock: "live" }
)

/** A raw client on the test server, for looking at what the store did. */
const raw = Effect.acquireRelease(
  Effect.promise(async () => {
    const client = new Redis(server().url, { lazyConnect: true })
    client.on("error", () => {})
    await client.connect()
    return client
  }),
  (client) => Effect.promise(() => client.quit())
)

describe("RedisMetadataStore", () => {
  it.scoped("a hit is one round trip: one EVALSHA and nothing else", () =>
    Effect.gen(function*() {
      const client = yield* raw
      const sent: Array<string> = []
      const send = client.sendCommand.bind(client)
      client.sendCommand = (command, stream) => {
        sent.push(command.name)
        return send(command, stream)
      }
      const store = yield* RedisMetadataStore.make({ client })
      const record = makeRecord("roundtrips", hashOf("one-round-trip"))
      yield* store.commit(record, { maxEntries: 10 })
      yield* store.lookup("roundtrips", record.hash, { token: "t", lockTtlMs: 1000 }) // loads the script
      yield* Effect.promise(() => client.config("RESETSTAT"))
      sent.length = 0
      const result = yield* store.lookup("roundtrips", record.hash, { token: "t", lockTtlMs: 1000 })
      assert.strictEqual(result._tag, "Hit")
      assert.deepStrictEqual(sent, ["evalsha"])
      // the server agrees: one script call (the commands it lists besides are those the script ran inside)
      const stats = yield* Effect.promise(() => client.info("commandstats"))
      assert.match(stats, /cmdstat_evalsha:calls=1,/)
    }))

  it.scoped("keys carry the namespace as a hash tag and the configured prefix", () =>
    Effect.gen(function*() {
      const store = yield* RedisMetadataStore.make({ url: server().url, keyPrefix: "tagged:" })
      const client = yield* raw
      const record = makeRecord("tags", hashOf("tagged"))
      yield* store.commit(record, { maxEntries: 10 })
      const exists = yield* Effect.promise(() =>
        Promise.all([
          client.exists(`tagged:{tags}:e:${record.hash}`),
          client.exists("tagged:{tags}:lru"),
          client.sismember("tagged:namespaces", "tags")
        ])
      )
      assert.deepStrictEqual(exists, [1, 1, 1])
      const ttl = yield* Effect.promise(() => client.pttl(`tagged:{tags}:e:${record.hash}`))
      assert.isAbove(ttl, 3_500_000)
    }))

  it.scoped("a hostile namespace or hash is a typed error before anything is sent", () =>
    Effect.gen(function*() {
      const store = yield* RedisMetadataStore.make({ url: server().url })
      for (const namespace of ["*", "{", "}", ":", "", "a}b", "x".repeat(10_000)]) {
        const error = yield* Effect.flip(store.lookup(namespace, hashOf("h"), { token: "t", lockTtlMs: 1000 }))
        assert.strictEqual(error._tag, "MetadataStoreError")
        assert.strictEqual(error.reason, "InvalidArgument")
        assert.include(error.message, "letters, digits")
        assert.strictEqual((yield* Effect.flip(store.removeNamespace(namespace))).reason, "InvalidArgument")
      }
      const badHash = yield* Effect.flip(store.remove("ok", ["}:e:*"]))
      assert.strictEqual(badHash.reason, "InvalidArgument")
    }))

  it.scoped("a malformed option is a typed error naming it", () =>
    Effect.gen(function*() {
      const prefix = yield* Effect.flip(RedisMetadataStore.make({ url: server().url, keyPrefix: "{oops}" }))
      assert.strictEqual(prefix.reason, "InvalidOption")
      assert.include(prefix.message, "keyPrefix")
      const both = yield* Effect.flip(RedisMetadataStore.make({ url: server().url, nodes: [] }))
      assert.include(both.message, "one of url, nodes or client")
    }))

  it.scoped("removing a large namespace goes in batches and leaves no key behind", () =>
    Effect.gen(function*() {
      const store = yield* RedisMetadataStore.make({ url: server().url, removeBatchSize: 7 })
      const client = yield* raw
      const records = Array.from({ length: 50 }, (_, i) => makeRecord("bulk", hashOf(`bulk-${i}`)))
      for (const record of records) yield* store.commit(record, { maxEntries: 1000 })
      yield* store.lookup("bulk", hashOf("locked"), { token: "t", lockTtlMs: 60_000 })
      const removed = yield* store.removeNamespace("bulk")
      assert.deepStrictEqual([...removed].sort(), records.map((r) => r.objectKey).sort())
      const left = yield* Effect.promise(() =>
        Promise.all([
          client.exists("qc:{bulk}:lru", "qc:{bulk}:exp", "qc:{bulk}:obj", "qc:{bulk}:locks"),
          client.exists(`qc:{bulk}:lock:${hashOf("locked")}`),
          client.sismember("qc:namespaces", "bulk")
        ])
      )
      assert.deepStrictEqual(left, [0, 0, 0])
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
    }))

  it.scoped("layerConfig builds a working store from variables", () =>
    Effect.gen(function*() {
      const env = new Map([["S3CACHE_REDIS_URL", server().url], ["S3CACHE_REDIS_KEY_PREFIX", "cfg:"]])
      yield* Effect.flatMap(MetadataStore.MetadataStore, (store) =>
        store.commit(makeRecord("cfg", hashOf("cfg")), { maxEntries: 10 })).pipe(
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
        yield* store.commit(makeRecord("owned", hashOf("owned")), { maxEntries: 10 })
      }))
      assert.strictEqual(client.status, "ready")
      assert.strictEqual(yield* Effect.promise(() => client.sismember("qc:namespaces", "owned")), 1)
    }))
})
