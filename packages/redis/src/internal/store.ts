/**
 * The `MetadataStore` port on Redis: one script call per operation (the key layout is in `keys.ts`, the record codec
 * in `record.ts`, the scripts in `scripts.ts`, reply checks in `replies.ts`).
 *
 * @since 0.1.0
 */
import { MetadataStoreError } from "@s3cache/core/CacheError"
import * as CacheKey from "@s3cache/core/CacheKey"
import type { ClearStep, CommitResult, EntryRecord, MetadataStore } from "@s3cache/core/MetadataStore"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as crypto from "node:crypto"
import type { Client, Scripted } from "./client.js"
import * as RedisClient from "./client.js"
import { Either } from "./effect3.js"
import * as Keys from "./keys.js"
import * as Lookup from "./lookup.js"
import { decode, encode } from "./record.js"
import * as Replies from "./replies.js"

/** @internal */
export interface StoreOptions {
  readonly keyPrefix: string
  readonly removeBatchSize: number
  /** a hit writes the LRU score only when it is older than this, µs (0: every hit) */
  readonly lruResolutionUs: number
  /** shards per namespace (`keys.ts`); default 1 */
  readonly slotsPerNamespace?: number | undefined
}

const lockLost: CommitResult = { _tag: "LockLost" }

/** @internal */
export const make = (client: Client & Scripted, options: StoreOptions): MetadataStore["Type"] => {
  const server = RedisClient.describeServer(client)
  const commandTimeoutMs = RedisClient.commandTimeoutOf(client)
  // each command of this client is bounded by its commandTimeout, which spares the deadline's timer where it ends first
  const call = <A>(method: string, run: () => Promise<A>) => RedisClient.call(method, server, run, commandTimeoutMs)
  const prefix = options.keyPrefix

  const keys = Keys.make(prefix, options.slotsPerNamespace ?? 1)
  const namespacesKey = `${prefix}namespaces`
  const idKey = `${prefix}id`

  const invalid = (method: string, description: string) =>
    new MetadataStoreError({ reason: "InvalidArgument", method, description })

  // The cache validates what it passes; the store checks again because it may be called directly, and a namespace or
  // hash with `{`, `}` or `:` could reach another namespace's keys.
  const checkNamespace = (method: string, namespace: string) =>
    Either.mapLeft(
      CacheKey.validateNamespace(namespace, `MetadataStore.${method}`),
      (error) => invalid(method, error.description)
    )
  const checkHashes = (method: string, hashes: ReadonlyArray<string>) => {
    const bad = hashes.find((hash) => !CacheKey.isHash(hash))
    return bad === undefined
      ? Either.right(hashes)
      : Either.left(invalid(method, `${JSON.stringify(bad.slice(0, 80))} is not an entry hash (64 lowercase hex)`))
  }
  const lockTtl = (lockTtlMs: number) => Math.max(1, Math.ceil(lockTtlMs))

  const { strings, tuple, unexpected, warnMalformed } = Replies.make(server)

  let storeId: string | undefined
  const readId = call("id", () => client.s3cacheStoreId(1, idKey, crypto.randomBytes(12).toString("base64url")))
    .pipe(
      Effect.flatMap((reply) => {
        if (typeof reply === "string" && CacheKey.isStoreId(reply)) {
          storeId = reply
          return Effect.succeed(reply)
        }
        return Effect.fail(
          new MetadataStoreError({
            reason: "Protocol",
            method: "id",
            description:
              `Redis at ${server}: ${idKey} holds ${
                JSON.stringify(String(reply).slice(0, 80))
              }, which is not a store id (8 to 64 of [A-Za-z0-9_-]); delete the key to let the store create a new id ` +
              "(objects written under the old one are then left to be removed by hand)"
          })
        )
      }),
      RedisClient.withSpan("id", server, undefined)
    )
  // Read once, then memoized: every client of this server and prefix reads the same value, which only a lost
  // database would change. Not read at build time, so the layer builds while Redis is down.
  const id: MetadataStore["Type"]["id"] = Effect.suspend(() => storeId !== undefined ? Effect.succeed(storeId) : readId)

  const removeIfRaw = (namespace: string, hash: string, objectKey: string) => {
    const k = keys.of(namespace, hash)
    return call(
      "removeIf",
      () => client.s3cacheRemoveIf(4, k.entry(hash), k.lru, k.exp, k.obj, hash, objectKey)
    ).pipe(Effect.map((removed) => Number(removed) === 1))
  }

  // Taking a lock registers the namespace first (see `takeLock` in the scripts): the scripts answer "unregistered"
  // (4) where the namespace shows no sign of being registered, and the caller registers it and asks again. Once a
  // namespace has records or locks, a lookup stays one round trip.
  const register = (method: string, namespace: string) => call(method, () => client.sadd(namespacesKey, namespace))

  // Registering and taking the lock are two steps (two slots), and so are clearing a namespace's keys and forgetting
  // it: a clear may forget the namespace between this caller's SADD and its lock. Looking once more after taking the
  // lock closes that window from this side (the clear side re-registers a namespace that still has keys).
  const confirmRegistered = (method: string, namespace: string) =>
    call(method, () => client.sismember(namespacesKey, namespace)).pipe(
      Effect.flatMap((member) => Number(member) === 1 ? Effect.void : register(method, namespace))
    )

  const { lookup: lookupRecord, tryHit } = Lookup.make({
    client,
    server,
    keys,
    call,
    commandTimeoutMs,
    lruResolutionUs: options.lruResolutionUs,
    checkNamespace,
    checkHashes,
    register,
    confirmRegistered,
    removeIf: removeIfRaw,
    warnMalformed
  })
  const lookup: MetadataStore["Type"]["lookup"] = (namespace, hash, options) =>
    lookupRecord(namespace, hash, options).pipe(RedisClient.withSpan("lookup", server, namespace))

  const acquireLock: MetadataStore["Type"]["acquireLock"] = (namespace, hash, { lockTtlMs, token }) =>
    Effect.gen(function*() {
      yield* checkNamespace("acquireLock", namespace)
      yield* checkHashes("acquireLock", [hash])
      const k = keys.of(namespace, hash)
      const attempt = (registered: boolean) =>
        call("acquireLock", () =>
          client.s3cacheAcquireLock(
            3,
            k.lock(hash),
            k.locked,
            k.lru,
            hash,
            token,
            lockTtl(lockTtlMs),
            registered ? "1" : "0"
          )).pipe(Effect.map(Number))
      let answer = yield* attempt(false)
      if (answer === 4) {
        yield* register("acquireLock", namespace)
        answer = yield* attempt(true)
        if (answer === 2) yield* confirmRegistered("acquireLock", namespace)
      }
      return answer === 2
    }).pipe(RedisClient.withSpan("acquireLock", server, namespace))

  const renewLock: MetadataStore["Type"]["renewLock"] = (namespace, hash, { lockTtlMs, token }) =>
    Effect.gen(function*() {
      yield* checkNamespace("renewLock", namespace)
      yield* checkHashes("renewLock", [hash])
      const k = keys.of(namespace, hash)
      const renewed = yield* call(
        "renewLock",
        () => client.s3cacheRenewLock(2, k.lock(hash), k.locked, hash, token, lockTtl(lockTtlMs))
      )
      return Number(renewed) === 1
    }).pipe(RedisClient.withSpan("renewLock", server, namespace))

  const releaseLock: MetadataStore["Type"]["releaseLock"] = (namespace, hash, token) =>
    Effect.gen(function*() {
      yield* checkNamespace("releaseLock", namespace)
      yield* checkHashes("releaseLock", [hash])
      const k = keys.of(namespace, hash)
      yield* call("releaseLock", () => client.s3cacheReleaseLock(2, k.lock(hash), k.locked, hash, token))
    }).pipe(RedisClient.withSpan("releaseLock", server, namespace))

  const commit: MetadataStore["Type"]["commit"] = (record, { maxEntries, token }) =>
    Effect.gen(function*() {
      yield* checkNamespace("commit", record.namespace)
      yield* checkHashes("commit", [record.hash])
      const k = keys.of(record.namespace, record.hash)
      // Taking the lock registered the namespace already; registering it again before the record exists covers a
      // registry that lost it (an operator, an allkeys-* eviction). The registry lives in another slot, so it cannot
      // be part of the script. Both commands are sent at once: one round trip, and the script is on the wire even if
      // the caller stops waiting for the registry's answer (a commit that is cut off half-sent is a commit lost for
      // no reason). A commit that then finds its lock lost leaves at worst an empty namespace registered, which the
      // next clear forgets in one step.
      // one call for both (no fiber each): they are on the wire together, and either failing fails the commit call
      const [, replied] = yield* call("commit", () =>
        Promise.all([
          client.sadd(namespacesKey, record.namespace),
          client.s3cacheCommit(
            6,
            k.entry(record.hash),
            k.lru,
            k.exp,
            k.obj,
            k.lock(record.hash),
            k.locked,
            record.hash,
            token,
            // each shard keeps its share of the namespace's entries
            keys.slots === 1 ? maxEntries : Math.max(1, Math.ceil(maxEntries / keys.slots)),
            // a stale record is kept for its grace
            Math.max(1, Math.ceil(record.ttlMs + (record.graceMs ?? 0))),
            k.entryPrefix,
            record.objectKey,
            encode(record)
          )
        ]))
      const reply = yield* tuple("commit", replied)
      if (Number(reply[0]) !== 1) return lockLost
      const evicted = Number(reply[1])
      if (!Number.isSafeInteger(evicted)) return yield* unexpected("commit", replied)
      return { _tag: "Committed", obsolete: yield* strings("commit", reply[2]), evicted } satisfies CommitResult
    }).pipe(RedisClient.withSpan("commit", server, record.namespace))

  const getMany: MetadataStore["Type"]["getMany"] = (namespace, hashes) =>
    Effect.gen(function*() {
      yield* checkNamespace("getMany", namespace)
      yield* checkHashes("getMany", hashes)
      if (hashes.length === 0) return []
      // one script per shard the hashes fall in (each shard is a slot of its own), answers put back in order
      const replies: Array<unknown> = new Array(hashes.length)
      yield* Effect.forEach(keys.group(namespace, hashes), (group) =>
        call("getMany", () =>
          client.s3cacheGetManyBuffer(group.hashes.length, ...group.hashes.map(group.keys.entry)))
          .pipe(
            Effect.flatMap((reply) => tuple("getMany", reply)),
            Effect.map((answers) => group.at.forEach((at, i) => (replies[at] = answers[i])))
          ), { concurrency: "unbounded", discard: true })
      // A malformed record reads as missing, so that one bad record cannot stop a whole cleanup; the lookup of its
      // hash drops it.
      return yield* Effect.forEach(hashes, (hash, i) => {
        const reply = replies[i]
        if (!(reply instanceof Uint8Array)) {
          return Effect.succeedNone
        }
        const read = decode(namespace, reply)
        return read._tag === "Record"
          ? Effect.succeedSome(read.record)
          : Effect.as(warnMalformed("getMany", namespace, hash, read), Option.none<EntryRecord>())
      })
    }).pipe(RedisClient.withSpan("getMany", server, namespace))

  const remove: MetadataStore["Type"]["remove"] = (namespace, hashes) =>
    Effect.gen(function*() {
      yield* checkNamespace("remove", namespace)
      yield* checkHashes("remove", hashes)
      if (hashes.length === 0) return []
      const removed = yield* Effect.forEach(keys.group(namespace, hashes), ({ hashes, keys: k }) =>
        call("remove", () =>
          client.s3cacheRemove(
            4 + 2 * hashes.length,
            k.lru,
            k.exp,
            k.obj,
            k.locked,
            ...hashes.map(k.entry),
            ...hashes.map(k.lock),
            ...hashes
          )).pipe(Effect.flatMap((reply) =>
            strings("remove", reply)
          )), { concurrency: "unbounded" })
      return removed.flat()
    }).pipe(RedisClient.withSpan("remove", server, namespace))

  const removeIf: MetadataStore["Type"]["removeIf"] = (namespace, hash, objectKey) =>
    Effect.gen(function*() {
      yield* checkNamespace("removeIf", namespace)
      yield* checkHashes("removeIf", [hash])
      return yield* removeIfRaw(namespace, hash, objectKey)
    }).pipe(RedisClient.withSpan("removeIf", server, namespace))

  const clearNamespace: MetadataStore["Type"]["clearNamespace"] = (namespace) =>
    Effect.gen(function*() {
      yield* checkNamespace("clearNamespace", namespace)
      const shards = keys.all(namespace)
      // one step on every shard; the namespace is done when each of them is
      const steps = yield* Effect.forEach(shards, (k) =>
        call("clearNamespace", () =>
          client.s3cacheClearNamespace(
            5,
            k.lru,
            k.exp,
            k.obj,
            k.locked,
            k.legacyLocks,
            k.entryPrefix,
            k.lockPrefix,
            options.removeBatchSize
          )).pipe(
            Effect.flatMap((reply) => tuple("clearNamespace", reply)),
            Effect.flatMap((reply) =>
              Effect.map(strings("clearNamespace", reply[1]), (objectKeys) => ({
                done: Number(reply[0]) === 1,
                objectKeys
              }))
            )
          ), { concurrency: "unbounded" })
      const objectKeys = steps.flatMap((step) => step.objectKeys)
      if (!steps.every((step) => step.done)) return { done: false, objectKeys } satisfies ClearStep
      yield* call("clearNamespace", () => client.srem(namespacesKey, namespace))
      // a lock (or a record) taken between the last step and the SREM registered the namespace just before it:
      // register it again, or `clear` would never reach that computation (each shard is a slot: one EXISTS each)
      const live = yield* Effect.forEach(
        shards,
        (k) => call("clearNamespace", () => client.exists(k.lru, k.locked)),
        { concurrency: "unbounded" }
      )
      if (live.some((count) => Number(count) > 0)) yield* register("clearNamespace", namespace)
      return { done: true, objectKeys } satisfies ClearStep
    }).pipe(RedisClient.withSpan("clearNamespace", server, namespace))

  const namespaces: MetadataStore["Type"]["namespaces"] = call(
    "namespaces",
    () => client.smembers(namespacesKey)
  )
    // a SET reply: an array in RESP2, and in RESP3 under either `replyMapping` of ioredis 6
    .pipe(
      Effect.flatMap((reply) => strings("namespaces", reply)),
      RedisClient.withSpan("namespaces", server, undefined)
    )

  const size: MetadataStore["Type"]["size"] = (namespace) =>
    Effect.gen(function*() {
      yield* checkNamespace("size", namespace)
      const sizes = yield* Effect.forEach(
        keys.all(namespace),
        (k) => call("size", () => client.s3cacheSize(2, k.lru, k.exp)),
        { concurrency: "unbounded" }
      )
      return sizes.reduce<number>((sum, size) => sum + Number(size), 0)
    }).pipe(RedisClient.withSpan("size", server, namespace))

  // a page of ZSCAN on a shard's LRU index, then one getMany of its hashes: records that expired since are skipped
  const scanPageSize = 500
  const scanShard = (namespace: string, k: Keys.NamespaceKeys) =>
    Stream.paginateChunkEffect(
      "0",
      (cursor: string) =>
        call("scan", () => client.zscan(k.lru, cursor, "COUNT", scanPageSize)).pipe(
          Effect.flatMap((reply) => tuple("scan", reply)),
          Effect.flatMap((reply) =>
            Effect.flatMap(strings("scan", reply[1]), (flat) => {
              const next = String(reply[0])
              // members and scores alternate; an index member that is not a hash names no record
              const hashes = flat.filter((member, i) => i % 2 === 0 && CacheKey.isHash(member))
              return Effect.map(getMany(namespace, hashes), (found) =>
                [
                  Chunk.fromIterable(found.flatMap(Option.toArray)),
                  next === "0" ? Option.none<string>() : Option.some(next)
                ] as const)
            })
          )
        )
    )

  const scan: NonNullable<MetadataStore["Type"]["scan"]> = (namespace) =>
    Stream.unwrap(Effect.map(
      checkNamespace("scan", namespace),
      () => Stream.flatMap(Stream.fromIterable(keys.all(namespace)), (k) => scanShard(namespace, k))
    ))

  return {
    id,
    // every command races the cache's deadline (`call`), on top of its commandTimeout
    honoursDeadline: true,
    lookup,
    tryHit,
    acquireLock,
    renewLock,
    releaseLock,
    commit,
    getMany,
    remove,
    removeIf,
    clearNamespace,
    namespaces,
    size,
    scan
  }
}
