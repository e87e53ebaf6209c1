/**
 * The `MetadataStore` port on Redis: key layout, record codec, and one script call per operation.
 *
 * @since 0.1.0
 */
import { MetadataStoreError } from "@s3cache/core/CacheError"
import * as CacheKey from "@s3cache/core/CacheKey"
import type { EntryRecord, LookupResult, MetadataStore } from "@s3cache/core/MetadataStore"
import { EntryRecord as EntryRecordSchema } from "@s3cache/core/MetadataStore"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { Client, Scripted } from "./client.js"
import { call, describeServer } from "./client.js"

/** @internal */
export interface StoreOptions {
  readonly keyPrefix: string
  readonly removeBatchSize: number
}

/** Entries are read and written as strings; numbers are parsed back through the schema. */
const RecordFromStrings = Schema.Struct({
  hash: Schema.String,
  namespace: Schema.String,
  objectKey: Schema.String,
  format: Schema.String,
  compression: Schema.String,
  rawSize: Schema.NumberFromString,
  storedSize: Schema.NumberFromString,
  checksum: Schema.String,
  createdAt: Schema.NumberFromString,
  ttlMs: Schema.NumberFromString,
  codecVersion: Schema.NumberFromString,
  keyPreview: Schema.String
})
const decodeRecord = Schema.decodeUnknownEither(RecordFromStrings)
const fieldNames = Object.keys(EntryRecordSchema.fields) as ReadonlyArray<keyof EntryRecord>

/** @internal */
export const make = (client: Client & Scripted, options: StoreOptions): MetadataStore["Type"] => {
  const server = describeServer(client)
  const prefix = options.keyPrefix

  // Every key of a namespace carries the hash tag {ns}: one slot on a Redis Cluster, so one script may touch them all.
  const keys = (namespace: string) => {
    const base = `${prefix}{${namespace}}:`
    return {
      entryPrefix: `${base}e:`,
      entry: (hash: string) => `${base}e:${hash}`,
      lru: `${base}lru`,
      exp: `${base}exp`,
      obj: `${base}obj`,
      lockPrefix: `${base}lock:`,
      lock: (hash: string) => `${base}lock:${hash}`,
      locks: `${base}locks`
    }
  }
  const namespacesKey = `${prefix}namespaces`

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

  const parseRecord = (
    method: string,
    reply: unknown
  ): Effect.Effect<Option.Option<EntryRecord>, MetadataStoreError> => {
    if (!Array.isArray(reply) || reply.length === 0) return Effect.succeedNone
    const fields: Record<string, unknown> = {}
    for (let i = 0; i + 1 < reply.length; i += 2) fields[String(reply[i])] = reply[i + 1]
    return Either.match(decodeRecord(fields), {
      onLeft: (error) =>
        Effect.fail(
          new MetadataStoreError({
            reason: "Protocol",
            method,
            description: `Redis at ${server}: a malformed entry record: ${error.message}`
          })
        ),
      onRight: (record) => Effect.succeedSome(record)
    })
  }

  const lookup: MetadataStore["Type"]["lookup"] = (namespace, hash, { lockTtlMs, token }) =>
    Effect.gen(function*() {
      yield* checkNamespace("lookup", namespace)
      yield* checkHashes("lookup", [hash])
      const k = keys(namespace)
      const reply = yield* call(
        "lookup",
        server,
        () => client.s3cacheLookup(4, k.entry(hash), k.lru, k.lock(hash), k.locks, hash, token, Math.ceil(lockTtlMs))
      )
      const [tag, fields] = reply as [number, unknown]
      if (tag === 2) return { _tag: "Acquired" } as LookupResult
      if (tag === 3) return { _tag: "Busy" } as LookupResult
      const record = yield* parseRecord("lookup", fields)
      if (Option.isNone(record)) {
        return yield* new MetadataStoreError({
          reason: "Protocol",
          method: "lookup",
          description: "a hit without fields"
        })
      }
      return { _tag: "Hit", record: record.value } as LookupResult
    }).pipe(withSpan("lookup", server, namespace))

  const commit: MetadataStore["Type"]["commit"] = (record, { maxEntries, token }) =>
    Effect.gen(function*() {
      yield* checkNamespace("commit", record.namespace)
      yield* checkHashes("commit", [record.hash])
      const k = keys(record.namespace)
      const fields = fieldNames.flatMap((name) => [name, String(record[name])])
      // the registry of namespaces lives in another slot, so it cannot be part of the script
      yield* call("commit", server, () => client.sadd(namespacesKey, record.namespace))
      const reply = yield* call("commit", server, () =>
        client.s3cacheCommit(
          6,
          k.entry(record.hash),
          k.lru,
          k.exp,
          k.obj,
          k.lock(record.hash),
          k.locks,
          record.hash,
          token ?? "",
          maxEntries,
          Math.max(1, Math.ceil(record.ttlMs)),
          k.entryPrefix,
          record.objectKey,
          ...fields
        ))
      const [evicted, obsolete] = reply as [number, Array<string>]
      return { evicted, obsolete }
    }).pipe(withSpan("commit", server, record.namespace))

  const releaseLock: MetadataStore["Type"]["releaseLock"] = (namespace, hash, token) =>
    Effect.gen(function*() {
      yield* checkNamespace("releaseLock", namespace)
      yield* checkHashes("releaseLock", [hash])
      const k = keys(namespace)
      yield* call("releaseLock", server, () => client.s3cacheReleaseLock(2, k.lock(hash), k.locks, hash, token))
    }).pipe(withSpan("releaseLock", server, namespace))

  const getMany: MetadataStore["Type"]["getMany"] = (namespace, hashes) =>
    Effect.gen(function*() {
      yield* checkNamespace("getMany", namespace)
      yield* checkHashes("getMany", hashes)
      if (hashes.length === 0) return []
      const k = keys(namespace)
      const replies = yield* call(
        "getMany",
        server,
        () => client.s3cacheGetMany(hashes.length, ...hashes.map(k.entry))
      )
      return yield* Effect.forEach(replies as Array<unknown>, (reply) => parseRecord("getMany", reply))
    }).pipe(withSpan("getMany", server, namespace))

  const remove: MetadataStore["Type"]["remove"] = (namespace, hashes) =>
    Effect.gen(function*() {
      yield* checkNamespace("remove", namespace)
      yield* checkHashes("remove", hashes)
      if (hashes.length === 0) return []
      const k = keys(namespace)
      return (yield* call("remove", server, () =>
        client.s3cacheRemove(
          3 + hashes.length,
          k.lru,
          k.exp,
          k.obj,
          ...hashes.map(k.entry),
          ...hashes
        ))) as Array<string>
    }).pipe(withSpan("remove", server, namespace))

  const removeNamespace: MetadataStore["Type"]["removeNamespace"] = (namespace) =>
    Effect.gen(function*() {
      yield* checkNamespace("removeNamespace", namespace)
      const k = keys(namespace)
      const objectKeys: Array<string> = []
      // batch after batch, so a namespace of millions never blocks Redis in one script
      while (true) {
        const [done, batch] = (yield* call("removeNamespace", server, () =>
          client.s3cacheRemoveNamespaceBatch(
            4,
            k.lru,
            k.exp,
            k.obj,
            k.locks,
            k.entryPrefix,
            k.lockPrefix,
            options.removeBatchSize
          ))) as [number, Array<string>]
        for (const key of batch) objectKeys.push(key)
        if (done === 1) break
      }
      yield* call("removeNamespace", server, () => client.srem(namespacesKey, namespace))
      return objectKeys
    }).pipe(withSpan("removeNamespace", server, namespace))

  const namespaces: MetadataStore["Type"]["namespaces"] = call(
    "namespaces",
    server,
    () => client.smembers(namespacesKey)
  )
    .pipe(withSpan("namespaces", server, undefined))

  const size: MetadataStore["Type"]["size"] = (namespace) =>
    Effect.gen(function*() {
      yield* checkNamespace("size", namespace)
      const k = keys(namespace)
      return Number(yield* call("size", server, () => client.s3cacheSize(2, k.lru, k.exp)))
    }).pipe(withSpan("size", server, namespace))

  return { lookup, commit, releaseLock, getMany, remove, removeNamespace, namespaces, size }
}

const withSpan =
  (operation: string, server: string, namespace: string | undefined) => <A, E, R>(self: Effect.Effect<A, E, R>) =>
    Effect.withSpan(self, `MetadataStore.${operation}`, {
      kind: "client",
      attributes: {
        "db.system": "redis",
        "db.operation": operation,
        "server.address": server,
        ...(namespace !== undefined ? { "s3cache.namespace": namespace } : {})
      }
    })
