/**
 * The Redis keys of the metadata store. Every key of a namespace carries the hash tag `{ns}`: one slot on a Redis
 * Cluster, so one script may touch them all (the layout is described in `scripts.ts`).
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

const keysOf = (prefix: string, namespace: string): NamespaceKeys => {
  const base = `${prefix}{${namespace}}:`
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

/**
 * The keys of a namespace under `prefix`, made once per namespace rather than on every call (a hit would build ten
 * strings for the two it uses).
 *
 * @internal
 */
export const make = (prefix: string): (namespace: string) => NamespaceKeys => {
  const made = new Map<string, NamespaceKeys>()
  return (namespace) => {
    let keys = made.get(namespace)
    if (keys === undefined) {
      if (made.size >= 1024) made.clear()
      keys = keysOf(prefix, namespace)
      made.set(namespace, keys)
    }
    return keys
  }
}
