/**
 * The Redis keys of the metadata store. A namespace is spread over `slots` shards (default 1), each with the keys of
 * `scripts.ts` under a hash tag of its own: `{ns}` for the first, `{ns/1}`, `{ns/2}`, … for the others (`/` is not
 * allowed in a namespace, so no other namespace has these tags). An entry lives in the shard its hash picks; each
 * shard is one slot on a Redis Cluster, so one script may touch all of a shard's keys, and a hot namespace spreads
 * over up to as many nodes as it has shards (the slots fall where their tags hash: unevenly over few shards).
 *
 * @since 0.2.0
 */

/** @internal */
export interface NamespaceKeys {
  readonly entryPrefix: string
  readonly entry: (hash: string) => string
  readonly lru: string
  readonly exp: string
  readonly obj: string
  readonly lockPrefix: string
  readonly lock: (hash: string) => string
  readonly locked: string
  /** written by earlier versions only; clearNamespace removes it */
  readonly legacyLocks: string
}

const keysOf = (prefix: string, namespace: string, shard: number): NamespaceKeys => {
  const base = shard === 0 ? `${prefix}{${namespace}}:` : `${prefix}{${namespace}/${shard}}:`
  return {
    entryPrefix: `${base}r:`,
    entry: (hash) => `${base}r:${hash}`,
    lru: `${base}lru`,
    exp: `${base}exp`,
    obj: `${base}obj`,
    lockPrefix: `${base}lock:`,
    lock: (hash) => `${base}lock:${hash}`,
    locked: `${base}locked`,
    legacyLocks: `${base}locks`
  }
}

/** @internal */
export interface Keys {
  /** shards per namespace */
  readonly slots: number
  /** the keys of the shard that holds `hash` */
  readonly of: (namespace: string, hash: string) => NamespaceKeys
  /** the keys of every shard of the namespace */
  readonly all: (namespace: string) => ReadonlyArray<NamespaceKeys>
  /** `hashes` by shard, each with its positions in `hashes` */
  readonly group: (
    namespace: string,
    hashes: ReadonlyArray<string>
  ) => ReadonlyArray<{ readonly keys: NamespaceKeys; readonly hashes: Array<string>; readonly at: Array<number> }>
}

/**
 * The shard of an entry: its hash's first 32 bits (the hash is sha256, so shards fill evenly), modulo `slots`.
 *
 * @internal
 */
export const shardOf = (hash: string, slots: number): number =>
  slots === 1 ? 0 : Number.parseInt(hash.slice(0, 8), 16) % slots

/**
 * The keys under `prefix`, made once per namespace rather than on every call (a hit would build ten strings for the
 * two it uses).
 *
 * @internal
 */
export const make = (prefix: string, slots = 1): Keys => {
  // each shard's keys are made when first used: with many shards, a hit builds one shard's, not all of them
  const made = new Map<string, Array<NamespaceKeys | undefined>>()
  const shardsOf = (namespace: string) => {
    let shards = made.get(namespace)
    if (shards === undefined) {
      if (made.size >= 1024) made.clear()
      shards = new Array<NamespaceKeys | undefined>(slots)
      made.set(namespace, shards)
    }
    return shards
  }
  const shard = (namespace: string, index: number): NamespaceKeys => {
    const shards = shardsOf(namespace)
    return shards[index] ??= keysOf(prefix, namespace, index)
  }
  return {
    slots,
    all: (namespace) => Array.from({ length: slots }, (_, index) => shard(namespace, index)),
    of: (namespace, hash) => shard(namespace, shardOf(hash, slots)),
    group: (namespace, hashes) => {
      const groups = new Map<number, { keys: NamespaceKeys; hashes: Array<string>; at: Array<number> }>()
      hashes.forEach((hash, i) => {
        const index = shardOf(hash, slots)
        let group = groups.get(index)
        if (group === undefined) {
          group = { keys: shard(namespace, index), hashes: [], at: [] }
          groups.set(index, group)
        }
        group.hashes.push(hash)
        group.at.push(i)
      })
      return Array.from(groups.values())
    }
  }
}
