/**
 * `slotsPerNamespace`: a namespace spread over several hash tags, so a Redis Cluster serves a hot namespace from
 * several nodes. The store's contract holds as with one shard: the whole suite, whose tests of the LRU order keep
 * their entries in one shard (each shard keeps its share of `maxEntries`, and its own order).
 */
import { assert, describe, it } from "@effect/vitest"
import { MetadataStore } from "@s3cache/core"
import {
  commitHeld,
  freshNamespace,
  hashOf,
  makeRecord,
  metadataStoreSuite
} from "@s3cache/core/test/MetadataStoreSuite"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { RedisMetadataStore } from "../src/index.js"
import * as Keys from "../src/internal/keys.js"
import * as RedisServer from "./utils/RedisServer.js"
import { beforeAllScoped } from "./utils/shared.js"

const server = beforeAllScoped(RedisServer.make())
const cluster = beforeAllScoped(RedisServer.makeCluster())

metadataStoreSuite(
  "RedisMetadataStore, 4 slots per namespace (standalone)",
  Layer.suspend(() => RedisMetadataStore.layer({ url: server().url, lruResolution: 0, slotsPerNamespace: 4 })),
  { clock: "live", shards: 4, shardOf: (hash) => Keys.shardOf(hash, 4) }
)

metadataStoreSuite(
  "RedisMetadataStore, 4 slots per namespace (3-master cluster)",
  Layer.suspend(() => RedisMetadataStore.layer({ nodes: cluster().nodes, lruResolution: 0, slotsPerNamespace: 4 })),
  { clock: "live", shards: 4, shardOf: (hash) => Keys.shardOf(hash, 4) }
)

/** The slot of every key holding `needle`, over the cluster's masters (each answers for its own keys). */
const slotsHolding = (needle: string) =>
  Effect.gen(function*() {
    const slots = new Set<number>()
    const nodes = new Set<number>()
    for (const node of cluster().nodes) {
      const client = yield* RedisServer.rawClient(`redis://${node.host}:${node.port}`)
      const keys = yield* Effect.promise(() => client.keys(`*${needle}*`))
      for (const key of keys) {
        slots.add(Number(yield* Effect.promise(() => client.call("CLUSTER", "KEYSLOT", key))))
        nodes.add(node.port)
      }
    }
    return { slots, nodes }
  })

describe("slotsPerNamespace", () => {
  it.scoped("on a cluster, one namespace's entries spread over its slots and nodes; reads, removals and a clear reach every shard", () =>
    Effect.gen(function*() {
      const store = yield* MetadataStore.MetadataStore
      const ns = yield* freshNamespace
      const records = Array.from({ length: 48 }, (_, i) => makeRecord(ns, hashOf(`spread-${i}`)))
      for (const record of records) yield* commitHeld(store, record, 1000)
      assert.strictEqual(yield* store.size(ns), 48)
      const { nodes, slots } = yield* slotsHolding(ns)
      // 8 shards: 8 slots (records, indexes and the namespace's first tag), spread over the 3 masters
      assert.strictEqual(slots.size, 8)
      assert.isAbove(nodes.size, 1)
      // a batch read across shards answers in the order asked, a missing hash included
      const asked = [records[5]!.hash, hashOf("absent"), records[40]!.hash, records[0]!.hash]
      assert.deepStrictEqual(yield* store.getMany(ns, asked), [
        Option.some(records[5]!),
        Option.none(),
        Option.some(records[40]!),
        Option.some(records[0]!)
      ])
      const removed = yield* store.remove(ns, records.slice(0, 10).map((record) => record.hash))
      assert.sameMembers([...removed], records.slice(0, 10).map((record) => record.objectKey))
      assert.strictEqual(yield* store.size(ns), 38)
      const cleared: Array<string> = []
      for (let step = 0; step < 100; step++) {
        const result = yield* store.clearNamespace(ns)
        cleared.push(...result.objectKeys)
        if (result.done) break
      }
      assert.sameMembers(cleared, records.slice(10).map((record) => record.objectKey))
      assert.strictEqual(yield* store.size(ns), 0)
      assert.strictEqual((yield* slotsHolding(ns)).slots.size, 0, "no key of the namespace is left in any shard")
      assert.notInclude(yield* store.namespaces, ns)
    }).pipe(
      Effect.provide(Layer.suspend(() => RedisMetadataStore.layer({ nodes: cluster().nodes, slotsPerNamespace: 8 })))
    ))

  it.scoped("each shard keeps its share of maxEntries", () =>
    Effect.gen(function*() {
      const store = yield* MetadataStore.MetadataStore
      const ns = yield* freshNamespace
      let evicted = 0
      for (let i = 0; i < 60; i++) {
        const result = yield* commitHeld(store, makeRecord(ns, hashOf(`share-${i}`)), 8)
        if (result._tag === "Committed") evicted += result.evicted
      }
      // 4 shards of 2 entries each: at most 8 in all, and every shard that got entries keeps 2 (60 fill them all)
      assert.strictEqual(yield* store.size(ns), 8)
      assert.strictEqual(evicted, 52)
    }).pipe(
      Effect.provide(Layer.suspend(() => RedisMetadataStore.layer({ url: server().url, slotsPerNamespace: 4 })))
    ))

  it.scoped("a store with one shard does not find what four shards wrote, and the reverse (the layout is the setting's)", () =>
    Effect.gen(function*() {
      const ns = yield* freshNamespace
      // a hash whose shard out of 4 is not 0: the first shard's keys are the one-shard layout's
      const hash = Array.from({ length: 100 }, (_, i) => hashOf(`layout-${i}`)).find((h) =>
        Number.parseInt(h.slice(0, 8), 16) % 4 !== 0
      )!
      const record = makeRecord(ns, hash)
      const four = RedisMetadataStore.layer({ url: server().url, slotsPerNamespace: 4 })
      const one = RedisMetadataStore.layer({ url: server().url })
      yield* Effect.flatMap(MetadataStore.MetadataStore, (store) => commitHeld(store, record, 10)).pipe(
        Effect.provide(four)
      )
      const fromOne = yield* Effect.flatMap(MetadataStore.MetadataStore, (store) => store.getMany(ns, [hash])).pipe(
        Effect.provide(one)
      )
      assert.deepStrictEqual(fromOne, [Option.none()])
      const fromFour = yield* Effect.flatMap(MetadataStore.MetadataStore, (store) => store.getMany(ns, [hash])).pipe(
        Effect.provide(four)
      )
      assert.deepStrictEqual(fromFour, [Option.some(record)])
      // and the reverse: what one shard wrote, four shards look for elsewhere
      const other = makeRecord(
        ns,
        Array.from({ length: 100 }, (_, i) => hashOf(`layout-b-${i}`)).find((h) =>
          Number.parseInt(h.slice(0, 8), 16) % 4 !== 0
        )!
      )
      yield* Effect.flatMap(MetadataStore.MetadataStore, (store) => commitHeld(store, other, 10)).pipe(
        Effect.provide(one)
      )
      const otherFromFour = yield* Effect.flatMap(
        MetadataStore.MetadataStore,
        (store) => store.getMany(ns, [other.hash])
      ).pipe(Effect.provide(four))
      assert.deepStrictEqual(otherFromFour, [Option.none()])
    }))

  it.effect("the option is an integer from 1 to 1024, also from S3CACHE_REDIS_SLOTS_PER_NAMESPACE", () =>
    Effect.gen(function*() {
      for (const bad of [0, 1025, 2.5, Number.NaN]) {
        const error = yield* Effect.flip(
          Effect.scoped(RedisMetadataStore.make({ url: server().url, slotsPerNamespace: bad }))
        )
        assert.strictEqual(error._tag, "CacheInputError")
        assert.include(error.description, "slotsPerNamespace must be an integer from 1 to 1024")
      }
      const options = yield* RedisMetadataStore.config.pipe(
        Effect.withConfigProvider(
          ConfigProvider.fromMap(new Map([["S3CACHE_REDIS_SLOTS_PER_NAMESPACE", "16"]]), { pathDelim: "_" })
        )
      )
      assert.strictEqual(options.slotsPerNamespace, 16)
    }))
})
