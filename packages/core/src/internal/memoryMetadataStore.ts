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
import type { CommitResult, EntryRecord, LookupResult, MetadataStore } from "../MetadataStore.js"

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

  const deleteLock = (namespace: string, held: Map<string, Lock>, hash: string): void => {
    held.delete(hash)
    if (held.size === 0) {
      locks.delete(namespace)
    }
  }

  return {
    lookup: (namespace, hash, options) =>
      Effect.clockWith((clock) =>
        Effect.sync((): LookupResult => {
          const now = clock.unsafeCurrentTimeMillis()
          const entries = namespaces.get(namespace)?.entries
          const entry = entries?.get(hash)
          if (entries !== undefined && entry !== undefined && now < entry.expiresAt) {
            entries.delete(hash)
            entries.set(hash, entry)
            return { _tag: "Hit", record: entry.record }
          }
          let held = locks.get(namespace)
          const lock = held?.get(hash)
          if (lock !== undefined && now < lock.expiresAt && lock.token !== options.token) {
            return busy
          }
          if (held === undefined) {
            held = new Map()
            locks.set(namespace, held)
          }
          held.set(hash, { token: options.token, expiresAt: now + options.lockTtlMs })
          return acquired
        })
      ),

    commit: (record, options) =>
      Effect.clockWith((clock) =>
        Effect.sync((): CommitResult => {
          const now = clock.unsafeCurrentTimeMillis()
          let namespace = namespaces.get(record.namespace)
          if (namespace === undefined) {
            namespace = { entries: new Map(), nextExpiry: Infinity }
            namespaces.set(record.namespace, namespace)
          }
          const obsolete: Array<string> = []
          const previous = namespace.entries.get(record.hash)
          if (previous !== undefined) {
            namespace.entries.delete(record.hash)
            if (previous.record.objectKey !== record.objectKey) {
              obsolete.push(previous.record.objectKey)
            }
          }
          // The TTL runs from the commit, like PEXPIRE, not from `createdAt`, which the writer's clock set.
          const expiresAt = now + record.ttlMs
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
          const held = locks.get(record.namespace)
          if (held !== undefined) {
            // Dead locks of crashed holders would otherwise stay until someone looks their hash up again.
            for (const [hash, lock] of held) {
              if (now >= lock.expiresAt || (hash === record.hash && lock.token === options.token)) {
                deleteLock(record.namespace, held, hash)
              }
            }
          }
          return { obsolete, evicted }
        })
      ),

    releaseLock: (namespace, hash, token) =>
      Effect.sync(() => {
        const held = locks.get(namespace)
        if (held !== undefined && held.get(hash)?.token === token) {
          deleteLock(namespace, held, hash)
        }
      }),

    getMany: (namespace, hashes) =>
      Effect.clockWith((clock) =>
        Effect.sync(() => {
          const now = clock.unsafeCurrentTimeMillis()
          const entries = namespaces.get(namespace)?.entries
          return hashes.map((hash): Option.Option<EntryRecord> => {
            const entry = entries?.get(hash)
            return entry !== undefined && now < entry.expiresAt ? Option.some(entry.record) : Option.none()
          })
        })
      ),

    // Expired records are returned too: no record references their objects any more, so the caller may delete them.
    remove: (namespace, hashes) =>
      Effect.sync(() => {
        const entries = namespaces.get(namespace)?.entries
        const removed: Array<string> = []
        if (entries === undefined) {
          return removed
        }
        for (const hash of hashes) {
          const entry = entries.get(hash)
          if (entry !== undefined) {
            entries.delete(hash)
            removed.push(entry.record.objectKey)
          }
        }
        return removed
      }),

    removeNamespace: (namespace) =>
      Effect.sync(() => {
        const entries = namespaces.get(namespace)?.entries
        namespaces.delete(namespace)
        locks.delete(namespace)
        return entries === undefined ? [] : Array.from(entries.values(), (entry) => entry.record.objectKey)
      }),

    namespaces: Effect.sync(() => Array.from(namespaces.keys())),

    size: (namespace) =>
      Effect.clockWith((clock) =>
        Effect.sync(() => {
          const now = clock.unsafeCurrentTimeMillis()
          let live = 0
          for (const entry of namespaces.get(namespace)?.entries.values() ?? []) {
            if (now < entry.expiresAt) {
              live++
            }
          }
          return live
        })
      )
  }
})
