/**
 * `MetadataStore.lookup` on Redis: the record, or the stampede lock, in one round trip (two when a record this process
 * saw lately is gone: the GET, then the script).
 *
 * The lookup script reads the record, writes its LRU score when that is older than the resolution, and takes the lock
 * when there is no record. A script call costs Redis 25-35 µs where a GET costs 2-4 µs (redis.bench.ts, on this
 * project's VM); so, while this process knows the entry's LRU score to be younger than the resolution (the script
 * said how old it was), a lookup is a plain GET of the record: nothing it would write is due. A GET that finds nothing
 * goes on with the script (the lock). The LRU order keeps its precision (entries read within one resolution of each
 * other may be evicted in either order).
 *
 * @since 0.2.0
 */
import { MetadataStoreError } from "@s3cache/core/CacheError"
import type { LookupResult, MetadataStore } from "@s3cache/core/MetadataStore"
import * as Effect from "effect/Effect"
import { performance } from "node:perf_hooks"
import { bounded, type Client, failure, type Scripted } from "./client.js"
import { Either } from "./effect3.js"
import type * as Keys from "./keys.js"
import { decode, type Malformed } from "./record.js"

type Unregistered = { readonly _tag: "Unregistered" }

/** @internal */
export interface Dependencies {
  readonly client: Client & Scripted
  readonly server: string
  readonly keys: Keys.Keys
  readonly call: <A>(method: string, run: () => Promise<A>) => Effect.Effect<A, MetadataStoreError>
  /** the client's own bound on each command, ms (`commandTimeoutOf`) */
  readonly commandTimeoutMs: number | undefined
  /** µs; 0: every hit writes the LRU score, so every lookup is a script call */
  readonly lruResolutionUs: number
  readonly checkNamespace: (method: string, namespace: string) => Either.Either<string, MetadataStoreError>
  readonly checkHashes: (
    method: string,
    hashes: ReadonlyArray<string>
  ) => Either.Either<ReadonlyArray<string>, MetadataStoreError>
  readonly register: (method: string, namespace: string) => Effect.Effect<unknown, MetadataStoreError>
  readonly confirmRegistered: (method: string, namespace: string) => Effect.Effect<void, MetadataStoreError>
  readonly removeIf: (namespace: string, hash: string, objectKey: string) => Effect.Effect<boolean, MetadataStoreError>
  readonly warnMalformed: (method: string, namespace: string, hash: string, read: Malformed) => Effect.Effect<void>
}

const acquired: LookupResult = { _tag: "Acquired" }
const busy: LookupResult = { _tag: "Busy" }
const unregistered: Unregistered = { _tag: "Unregistered" }

/** Entries whose LRU score this process tracks, at most; past it, the tracking starts over. */
const trackedMax = 32_768

/** @internal */
export const make = (
  {
    call,
    checkHashes,
    checkNamespace,
    client,
    commandTimeoutMs,
    confirmRegistered,
    keys,
    lruResolutionUs,
    register,
    removeIf,
    server,
    warnMalformed
  }: Dependencies
): Pick<MetadataStore["Type"], "lookup" | "tryHit"> => {
  const resolutionMs = lruResolutionUs / 1000
  // entry key → when (performance.now(), ms) its LRU score was written, as far as this process knows
  const scoredAt = new Map<string, number>()
  const fresh = (entryKey: string): boolean => {
    if (resolutionMs <= 0) return false
    const at = scoredAt.get(entryKey)
    return at !== undefined && performance.now() - at < resolutionMs
  }
  const scored = (entryKey: string, ageUs: unknown): void => {
    const age = Number(String(ageUs))
    if (resolutionMs <= 0 || !(age >= 0)) return
    if (scoredAt.size >= trackedMax) scoredAt.clear()
    scoredAt.set(entryKey, performance.now() - age / 1000)
  }

  const protocol = () =>
    new MetadataStoreError({
      reason: "Protocol",
      method: "lookup",
      description: `Redis at ${server}: an unexpected lookup reply`
    })

  const record = (namespace: string, bytes: Uint8Array): LookupResult | Malformed => {
    const read = decode(namespace, bytes)
    return read._tag === "Record" ? { _tag: "Hit", record: read.record } : read
  }

  const script = (namespace: string, hash: string, token: string, lockTtlMs: number, registered: boolean) => {
    const k = keys.of(namespace, hash)
    const entryKey = k.entry(hash)
    return call("lookup", () =>
      client.s3cacheLookupBuffer(
        4,
        entryKey,
        k.lru,
        k.lock(hash),
        k.locked,
        hash,
        token,
        Math.max(1, Math.ceil(lockTtlMs)),
        registered ? "1" : "0",
        lruResolutionUs
      )).pipe(
        Effect.flatMap((reply): Effect.Effect<LookupResult | Malformed | Unregistered, MetadataStoreError> => {
          // integers arrive as numbers, or as strings under `stringNumbers`
          const [tag, value] = Array.isArray(reply) ? [Number(String(reply[0])), reply[1]] : [Number.NaN, undefined]
          if (tag === 2) return Effect.succeed(acquired)
          if (tag === 3) return Effect.succeed(busy)
          if (tag === 4 && !registered) return Effect.succeed(unregistered)
          if (tag !== 1 || !(value instanceof Uint8Array)) return Effect.fail(protocol())
          scored(entryKey, (reply as ReadonlyArray<unknown>)[2])
          return Effect.succeed(record(namespace, value))
        })
      )
  }

  /** The record by a plain GET, where nothing the script would write is due; the script where there is none. */
  const once = (namespace: string, hash: string, token: string, lockTtlMs: number) =>
    Effect.suspend(() => {
      const entryKey = keys.of(namespace, hash).entry(hash)
      if (!fresh(entryKey)) return script(namespace, hash, token, lockTtlMs, false)
      return Effect.flatMap(
        call("lookup", () => client.getBuffer(entryKey)),
        (value): Effect.Effect<LookupResult | Malformed | Unregistered, MetadataStoreError> => {
          if (value instanceof Uint8Array) return Effect.succeed(record(namespace, value))
          if (value !== null) return Effect.fail(protocol())
          scoredAt.delete(entryKey)
          return script(namespace, hash, token, lockTtlMs, false)
        }
      )
    })

  const again = (
    namespace: string,
    hash: string,
    token: string,
    lockTtlMs: number,
    first: Malformed | Unregistered
  ): Effect.Effect<LookupResult, MetadataStoreError> =>
    Effect.gen(function*() {
      let registered = false
      let dropped = false
      let result: LookupResult | Malformed | Unregistered = first
      // at most three calls: one to register the namespace, one after dropping a malformed record
      while (true) {
        switch (result._tag) {
          case "Unregistered": {
            yield* register("lookup", namespace)
            registered = true
            break
          }
          case "Malformed": {
            // A record that does not decode would fail every lookup until its TTL ends: drop exactly it and look
            // again, so the caller takes the lock and writes a good one.
            if (dropped) {
              return yield* new MetadataStoreError({
                reason: "Protocol",
                method: "lookup",
                description:
                  `Redis at ${server}: the entry record is malformed again after it was dropped: ${result.description}`
              })
            }
            yield* removeIf(namespace, hash, result.objectKey)
            yield* warnMalformed("lookup", namespace, hash, result)
            dropped = true
            break
          }
          default:
            if (registered && result._tag === "Acquired") yield* confirmRegistered("lookup", namespace)
            return result
        }
        result = yield* script(namespace, hash, token, lockTtlMs, registered)
      }
    })

  // The common answers (a hit, the lock, busy) come from one call; the rest (register the namespace, drop a malformed
  // record) go on in `again`.
  const lookup: MetadataStore["Type"]["lookup"] = (namespace, hash, { lockTtlMs, token }) => {
    const namespaceChecked = checkNamespace("lookup", namespace)
    if (Either.isLeft(namespaceChecked)) return Effect.fail(namespaceChecked.left)
    const hashChecked = checkHashes("lookup", [hash])
    if (Either.isLeft(hashChecked)) return Effect.fail(hashChecked.left)
    return Effect.flatMap(
      once(namespace, hash, token, lockTtlMs),
      (result) =>
        result._tag === "Unregistered" || result._tag === "Malformed"
          ? again(namespace, hash, token, lockTtlMs, result)
          : Effect.succeed(result)
    )
  }

  // The plain GET of `once`, as a promise: only while the LRU score is fresh (nothing is due), and only a record that
  // reads back; anything else (nothing there, a malformed record) is `lookup`'s to handle.
  const tryHit: NonNullable<MetadataStore["Type"]["tryHit"]> = (namespace, hash, { deadline }) => {
    const entryKey = keys.of(namespace, hash).entry(hash)
    if (!fresh(entryKey)) return undefined
    const namespaceChecked = checkNamespace("lookup", namespace)
    if (Either.isLeft(namespaceChecked)) return Promise.reject(namespaceChecked.left)
    const hashChecked = checkHashes("lookup", [hash])
    if (Either.isLeft(hashChecked)) return Promise.reject(hashChecked.left)
    return bounded(deadline, () => client.getBuffer(entryKey), commandTimeoutMs).then(
      (value) => {
        if (!(value instanceof Uint8Array)) {
          if (value === null) scoredAt.delete(entryKey)
          return undefined
        }
        const read = decode(namespace, value)
        return read._tag === "Record" ? read.record : undefined
      },
      (cause) => {
        throw failure("lookup", server, cause)
      }
    )
  }

  return { lookup, tryHit }
}
