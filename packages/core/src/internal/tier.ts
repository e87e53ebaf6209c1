/**
 * The in-process tier (L1): recently read or written entries of this process, in front of the shared stores, bounded
 * in entries and bytes (lru-cache), each living at most `l1Ttl` (or the call's `l1Ttl`) and never past its record's
 * own TTL.
 *
 * What it keeps is the snapshot (the encoded bytes), so every hit decodes a value of its own and no caller can change
 * what another gets; with `l1ShareValues` the user vouches that values are never changed, and the decoded value itself
 * is handed out.
 *
 * Kept coherent by the bus (`CacheBus`): an entry written or removed by another instance, or a namespace cleared, is
 * dropped when its event arrives. While the bus is disconnected (or there is none), an entry is served for at most
 * `l1DisconnectedTtl` after it was stored, and the tier starts empty when the bus connects again. Every drop moves the
 * generation on: a read that began before it cannot put back what it read.
 *
 * @since 0.2.0
 */
import { LRUCache } from "lru-cache"
import type { Snapshot } from "../Serializer.js"

/** @internal */
export interface Entry {
  readonly snapshot: Snapshot
  /** the decoded value, kept only when values are shared */
  readonly value: unknown
  readonly storedAt: number
  readonly expiresAt: number
}

/** @internal */
export interface Options {
  readonly maxEntries: number
  readonly maxBytes: number
  readonly disconnectedTtlMs: number
}

/** @internal */
export interface Tier {
  /** the live entry of `hash`, if the tier may serve it at `now` */
  readonly get: (namespace: string, hash: string, now: number) => Entry | undefined
  /** keep an entry, unless something was dropped since `generation` (then it may be stale) */
  readonly set: (namespace: string, hash: string, entry: Entry, generation: number) => void
  readonly generation: () => number
  readonly drop: (namespace: string, hashes: ReadonlyArray<string>) => void
  /** every entry of `namespace`, or every entry */
  readonly dropNamespace: (namespace: string | undefined) => void
  readonly connected: (connected: boolean) => void
  readonly size: () => number
}

/** Bytes an entry costs beyond its snapshot: the map entry, the objects, the key. */
const entryOverhead = 200

/** @internal */
export const make = (options: Options): Tier => {
  const entries = new LRUCache<string, Entry>({
    max: options.maxEntries,
    maxSize: options.maxBytes,
    sizeCalculation: (entry, key) => entry.snapshot.bytes.byteLength + key.length * 2 + entryOverhead
  })
  let generation = 0
  let isConnected = false
  const keyOf = (namespace: string, hash: string) => `${namespace}\u0000${hash}`

  const dropAll = () => {
    generation++
    entries.clear()
  }

  return {
    get: (namespace, hash, now) => {
      const key = keyOf(namespace, hash)
      const entry = entries.get(key)
      if (entry === undefined) return undefined
      if (now >= entry.expiresAt || (!isConnected && now - entry.storedAt > options.disconnectedTtlMs)) {
        entries.delete(key)
        return undefined
      }
      return entry
    },
    set: (namespace, hash, entry, since) => {
      // an entry larger than the whole tier is not kept (lru-cache would refuse it anyway)
      if (since !== generation || entry.snapshot.bytes.byteLength + entryOverhead > options.maxBytes) return
      entries.set(keyOf(namespace, hash), entry)
    },
    generation: () => generation,
    drop: (namespace, hashes) => {
      generation++
      for (const hash of hashes) entries.delete(keyOf(namespace, hash))
    },
    dropNamespace: (namespace) => {
      if (namespace === undefined) return dropAll()
      generation++
      const prefix = `${namespace}\u0000`
      for (const key of Array.from(entries.keys())) if (key.startsWith(prefix)) entries.delete(key)
    },
    connected: (connected) => {
      // events may have been missed while disconnected: nothing kept from then can be trusted
      if (connected && !isConnected) dropAll()
      isConnected = connected
    },
    size: () => entries.size
  }
}
