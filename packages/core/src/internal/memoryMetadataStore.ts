/**
 * The in-memory `MetadataStore`, the reference implementation of the port.
 *
 * Every operation reads the clock and mutates the maps inside one synchronous step, so it is atomic with respect to
 * other fibers, as a Lua script is on Redis.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { ClearStep, CommitResult, EntryRecord, LookupResult, MetadataStore } from "../MetadataStore.js"
import { randomId } from "./random.js"

interface Entry {
  readonly record: EntryRecord
  readonly expiresAt: number
}

interface Lock {
  readonly token: string
  readonly expiresAt: number
}

interface Namespace {
  /**
   * Insertion order is the LRU order, least recently accessed first: an access deletes and re-inserts the entry, so
   * accesses within the same millisecond still keep their order, which a score alone would not.
   */
  readonly entries: Map<string, Entry>
  /**
   * A lower bound of the entries' expiry times (removals may leave it too low, never too high), so that a commit
   * skips the expiry sweep while nothing can have expired.
   */
  nextExpiry: number
}

const acquired: LookupResult = { _tag: "Acquired" }
const busy: LookupResult = { _tag: "Busy" }
const lockLost: CommitResult = { _tag: "LockLost" }

/** Records removed per `clearNamespace` step: small enough to keep one step short, as on Redis. */
const clearBatchSize = 1000

/**
 * Expired records stay in the maps until a commit in their namespace sweeps them, rather than being dropped by the
 * reads that find them expired: the sweep hands their object keys back to the caller as `obsolete`, so their payloads
 * are deleted promptly instead of waiting for the orphan cleanup.
 *
 * @since 0.1.0
 * @internal
 */
export const make: Effect.Effect<MetadataStore["Type"]> = Effect.sync(() => {
  // Also the namespace registry: a namespace is registered while it has a map, even an empty one.
  const namespaces = new Map<string, Namespace>()
  const locks = new Map<string, Map<string, Lock>>()
  // The data lives as long as this store, so one id per store: caches that share it share their objects.
  const id = randomId()

  const sweepExpired = (namespace: Namespace, now: number, obsolete: Array<string>): void => {
    let nextExpiry = Infinity
    for (const [hash, entry] of namespace.entries) {
      if (now >= entry.expiresAt) {
        namespace.entries.delete(hash)
        obsolete.push(entry.record.objectKey)
      } else if (entry.expiresAt < nextExpiry) {
        nextExpiry = entry.expiresAt
      }
    }
    namespace.nextExpiry = nextExpiry
  }

  const liveLock = (namespace: string, hash: string, now: number): Lock | undefined => {
    const lock = locks.get(namespace)?.get(hash)
    return lock !== undefined && now < lock.expiresAt ? lock : undefined
  }

  const setLock = (namespace: string, hash: string, token: string, expiresAt: number): void => {
    let held = locks.get(namespace)
    if (held === undefined) {
      held = new Map()
      locks.set(namespace, held)
    }
    held.set(hash, { token, expiresAt })
  }

  const deleteLock = (namespace: string, hash: string): void => {
    const held = locks.get(namespace)
    if (held === undefined) return
    held.delete(hash)
    if (held.size === 0) locks.delete(namespace)
  }

  /** Dead locks of crashed holders would otherwise stay until someone looks their hash up again. */
  const pruneLocks = (namespace: string, now: number): void => {
    const held = locks.get(namespace)
    if (held === undefined) return
    for (const [hash, lock] of held) {
      if (now >= lock.expiresAt) held.delete(hash)
    }
    if (held.size === 0) locks.delete(namespace)
  }

  const withClock = <A>(f: (now: number) => A): Effect.Effect<A> =>
    Effect.clockWith((clock) => Effect.sync(() => f(clock.unsafeCurrentTimeMillis())))

  const register = (name: string): Namespace => {
    let namespace = namespaces.get(name)
    if (namespace === undefined) {
      namespace = { entries: new Map(), nextExpiry: Infinity }
      namespaces.set(name, namespace)
    }
    return namespace
  }

  // Taking a lock registers the namespace: `clear` must reach a computation in flight even in a namespace that has
  // no record yet, or its value, computed before the clear, would be committed after it.
  const tryLock = (namespace: string, hash: string, token: string, lockTtlMs: number, now: number): boolean => {
    const lock = liveLock(namespace, hash, now)
    if (lock !== undefined && lock.token !== token) return false
    pruneLocks(namespace, now)
    setLock(namespace, hash, token, now + lockTtlMs)
    register(namespace)
    return true
  }

  const store: MetadataStore["Type"] = {
    id: Effect.succeed(id),
    // every call answers at once
    honoursDeadline: true,

    lookup: (namespace, hash, options) =>
      withClock((now): LookupResult => {
        const entries = namespaces.get(namespace)?.entries
        const entry = entries?.get(hash)
        if (entries !== undefined && entry !== undefined && now < entry.expiresAt) {
          entries.delete(hash)
          entries.set(hash, entry)
          return { _tag: "Hit", record: entry.record }
        }
        return tryLock(namespace, hash, options.token, options.lockTtlMs, now) ? acquired : busy
      }),

    acquireLock: (namespace, hash, options) =>
      withClock((now) => tryLock(namespace, hash, options.token, options.lockTtlMs, now)),

    renewLock: (namespace, hash, options) =>
      withClock((now) => {
        if (liveLock(namespace, hash, now)?.token !== options.token) return false
        setLock(namespace, hash, options.token, now + options.lockTtlMs)
        return true
      }),

    releaseLock: (namespace, hash, token) =>
      Effect.sync(() => {
        if (locks.get(namespace)?.get(hash)?.token === token) deleteLock(namespace, hash)
      }),

    commit: (record, options) =>
      withClock((now): CommitResult => {
        if (liveLock(record.namespace, record.hash, now)?.token !== options.token) return lockLost
        const namespace = register(record.namespace)
        const obsolete: Array<string> = []
        const previous = namespace.entries.get(record.hash)
        if (previous !== undefined) {
          namespace.entries.delete(record.hash)
          if (previous.record.objectKey !== record.objectKey) {
            obsolete.push(previous.record.objectKey)
          }
        }
        // The TTL runs from the commit, like PEXPIRE, not from `createdAt`, which the writer's clock set.
        const expiresAt = now + record.ttlMs + (record.graceMs ?? 0)
        namespace.entries.set(record.hash, { record, expiresAt })
        if (expiresAt < namespace.nextExpiry) {
          namespace.nextExpiry = expiresAt
        }
        if (now >= namespace.nextExpiry) {
          sweepExpired(namespace, now, obsolete)
        }
        let evicted = 0
        for (const [hash, entry] of namespace.entries) {
          if (namespace.entries.size <= options.maxEntries) {
            break
          }
          namespace.entries.delete(hash)
          obsolete.push(entry.record.objectKey)
          evicted++
        }
        deleteLock(record.namespace, record.hash)
        pruneLocks(record.namespace, now)
        return { _tag: "Committed", obsolete, evicted }
      }),

    getMany: (namespace, hashes) =>
      withClock((now) => {
        const entries = namespaces.get(namespace)?.entries
        return hashes.map((hash): Option.Option<EntryRecord> => {
          const entry = entries?.get(hash)
          return entry !== undefined && now < entry.expiresAt ? Option.some(entry.record) : Option.none()
        })
      }),

    // Expired records are returned too: no record references their objects any more, so the caller may delete them.
    remove: (namespace, hashes) =>
      Effect.sync(() => {
        const entries = namespaces.get(namespace)?.entries
        const removed: Array<string> = []
        for (const hash of hashes) {
          deleteLock(namespace, hash)
          const entry = entries?.get(hash)
          if (entries !== undefined && entry !== undefined) {
            entries.delete(hash)
            removed.push(entry.record.objectKey)
          }
        }
        return removed
      }),

    removeIf: (namespace, hash, objectKey) =>
      Effect.sync(() => {
        const entries = namespaces.get(namespace)?.entries
        if (entries === undefined || entries.get(hash)?.record.objectKey !== objectKey) return false
        entries.delete(hash)
        return true
      }),

    clearNamespace: (namespace) =>
      Effect.sync((): ClearStep => {
        locks.delete(namespace)
        const entries = namespaces.get(namespace)?.entries
        const objectKeys: Array<string> = []
        if (entries !== undefined) {
          for (const [hash, entry] of entries) {
            if (objectKeys.length >= clearBatchSize) return { done: false, objectKeys }
            entries.delete(hash)
            objectKeys.push(entry.record.objectKey)
          }
        }
        namespaces.delete(namespace)
        return { done: true, objectKeys }
      }),

    namespaces: Effect.sync(() => Array.from(namespaces.keys())),

    size: (namespace) =>
      withClock((now) => {
        let live = 0
        for (const entry of namespaces.get(namespace)?.entries.values() ?? []) {
          if (now < entry.expiresAt) {
            live++
          }
        }
        return live
      }),

    scan: (namespace) =>
      Stream.unwrap(withClock((now) => {
        const live: Array<EntryRecord> = []
        for (const entry of namespaces.get(namespace)?.entries.values() ?? []) {
          if (now < entry.expiresAt) live.push(entry.record)
        }
        return Stream.fromIterable(live)
      }))
  }
  return store
})
