/**
 * The port for cache metadata: entry records with their TTL, the LRU index, stampede locks and the namespace
 * registry. Payload bytes never pass through it.
 *
 * Every implementation must pass the conformance suite in `test/utils/MetadataStoreSuite.ts`. The semantics
 * below are the contract; the in-memory twin (`layerMemory`) is the reference implementation.
 *
 * Time: the memory store reads Effect's `Clock` (so `TestClock` drives TTL and lock expiry); a server-side store
 * uses its server's clock (Redis `PEXPIRE`), so a record may still be seen at exactly commit time + TTL.
 *
 * Callers validate what reaches a store: namespaces (`CacheKey.validateNamespace`), 64-hex hashes, and `ttlMs`,
 * `lockTtlMs` and `maxEntries` of at least 1. The order of returned object keys is unspecified.
 *
 * Also part of the contract (the conformance suite checks each): a `Hit` does not extend the TTL; `remove` removes
 * the locks of the removed hashes and `removeIf` leaves them; a namespace is registered by the first lock taken in
 * it (so that `clear` reaches computations in flight in a namespace that has no record yet) and stays registered
 * after its records are removed or expired, until `clearNamespace` is done; a commit happens only under the lock's
 * token.
 *
 * Object keys returned by `commit` (`obsolete`), `remove` and `clearNamespace` stand one for each record concerned; a
 * record whose payload was inline stands as `""`, which names no object (the caller deletes the others).
 *
 * @since 0.1.0
 */
import "./internal/effectVersion.js"
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Stream from "effect/Stream"
import type { MetadataStoreError } from "./CacheError.js"
import * as internal from "./internal/memoryMetadataStore.js"

/**
 * What the cache knows about one stored value. Times are epoch milliseconds.
 *
 * @since 0.1.0
 * @category models
 */
export const EntryRecord = Schema.Struct({
  /** sha256 of the normalized key, hex */
  hash: Schema.String,
  namespace: Schema.String,
  /** the payload's key in the `BlobStore`, unique per write; `""` when the payload is inline (`payload`) */
  objectKey: Schema.String,
  /** the codec that wrote the payload (`v8`, `json`, `bytes`, `schema-json`, `arrow`, …) */
  format: Schema.String,
  /** `zstd`, `gzip` or `none` */
  compression: Schema.String,
  /** encoded size before compression, bytes */
  rawSize: Schema.Number,
  /** size of the stored object, bytes */
  storedSize: Schema.Number,
  /** `sha256:<hex>` of the stored object's bytes */
  checksum: Schema.String,
  createdAt: Schema.Number,
  ttlMs: Schema.Number,
  /**
   * How long the store keeps the record after `ttlMs`, stale: its lifetime in the store is `ttlMs + graceMs` from the
   * commit. The cache serves a stale record only to calls that accept it (`grace`). Absent: 0.
   */
  graceMs: Schema.optional(Schema.Number),
  codecVersion: Schema.Number,
  /** the first characters of the normalized key, for humans */
  keyPreview: Schema.String,
  /**
   * The stored bytes themselves, for a small payload kept in the record (then `objectKey` is `""`): a hit is one
   * round trip to the metadata store and no call to the blob store.
   */
  payload: Schema.optional(Schema.Uint8ArrayFromSelf)
})

/**
 * @since 0.1.0
 * @category models
 */
export interface EntryRecord extends Schema.Schema.Type<typeof EntryRecord> {}

/**
 * The answer of `lookup`:
 *
 * - `Hit`: a live record; its LRU score was set to now (best effort: a store that cannot write, e.g. Redis at
 *   `maxmemory` under `noeviction`, still answers `Hit`).
 * - `Acquired`: no live record, and the caller now holds the stampede lock under its token.
 * - `Busy`: no live record, and another token holds the lock.
 *
 * @since 0.1.0
 * @category models
 */
export type LookupResult =
  | { readonly _tag: "Hit"; readonly record: EntryRecord }
  | { readonly _tag: "Acquired" }
  | { readonly _tag: "Busy" }

/**
 * @since 0.1.0
 * @category models
 */
export interface LockOptions {
  /** the caller's random lock token */
  readonly token: string
  /** how long the lock lives if it is neither renewed nor released, milliseconds */
  readonly lockTtlMs: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface CommitOptions {
  /** the token of the stampede lock the writer holds; the commit happens only while the lock is held under it */
  readonly token: string
  /** after writing, keep at most this many live entries in the namespace, dropping the least recently accessed */
  readonly maxEntries: number
}

/**
 * The answer of `commit`:
 *
 * - `Committed`: the record is written and the lock released. `obsolete` holds the object keys that no record
 *   references any more because of this commit: the replaced record's object and the objects of evicted entries, and
 *   it may include those of expired entries the store still knew (the memory store does; Redis keeps them in an
 *   index). The caller deletes them from the `BlobStore` (record first, then object); objects of expired entries it
 *   does not learn of are orphans for `Cache.cleanupOrphanedObjects`. `evicted` counts the entries evicted to stay
 *   within `maxEntries` (not the replaced one, not expired ones).
 * - `LockLost`: the lock is not held under the token (it lapsed, another process took it, or an invalidation removed
 *   it): nothing was written, and the caller's object is referenced by no record.
 *
 * @since 0.1.0
 * @category models
 */
export type CommitResult =
  | { readonly _tag: "Committed"; readonly obsolete: ReadonlyArray<string>; readonly evicted: number }
  | { readonly _tag: "LockLost" }

/**
 * One step of `clearNamespace`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClearStep {
  /** true when the namespace is empty and forgotten; false when more steps are needed */
  readonly done: boolean
  /** object keys of the records removed by this step, for the caller to delete */
  readonly objectKeys: ReadonlyArray<string>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class MetadataStore extends Context.Tag("@s3cache/core/MetadataStore")<MetadataStore, {
  /**
   * A stable identifier of this store's contents: 8 to 64 characters of `[A-Za-z0-9_-]`, the same for every client
   * of the same data (a Redis server and key prefix), different for different data. The cache puts it at the start
   * of every object key it writes, so `cleanupOrphanedObjects` judges only objects whose records live here. A store
   * that loses its data (a Redis `FLUSHALL`) gets a new id.
   */
  readonly id: Effect.Effect<string, MetadataStoreError>

  /**
   * True when every call settles by the `StoreDeadline` in its context, succeeding or failing with a `Timeout` error
   * (see `StoreDeadline`): the cache then runs the call in the caller's fiber. Otherwise (or absent) the cache runs
   * each call in a fiber of its own and stops waiting at the deadline.
   */
  readonly honoursDeadline?: boolean | undefined

  /**
   * One round trip: read the live record of `hash`; if present, set its LRU score to now and return `Hit`;
   * otherwise try to take the stampede lock with `token` for `lockTtlMs` (`Acquired`), or report that another
   * token holds it (`Busy`). A caller that already holds the lock under the same token gets `Acquired` again.
   * A record that the store cannot read back (a missing or malformed field) is a bad entry: it is removed and the
   * lookup goes on as for a missing record.
   */
  readonly lookup: (
    namespace: string,
    hash: string,
    options: LockOptions
  ) => Effect.Effect<LookupResult, MetadataStoreError>

  /**
   * Optional: a hit in one promise step, for a store whose common hit is a plain read (Redis: a `GET` while the
   * entry's LRU score is fresh). The cache calls it outside the Effect runtime before `lookup`, for a store that
   * honours deadlines (`honoursDeadline`; the promise is not watched), on the live clock, without inner spans, when
   * the in-process tier has no answer and no computation of the key is in flight; then `lookup` whenever it gives no
   * record. A wrapper of a store that changes `lookup` must wrap or drop `tryHit` too, or hits skip its `lookup`.
   *
   * Returns `undefined` at once when the store would rather be asked through `lookup` (a hit would have to write
   * something, as an LRU score that is due). Otherwise a promise of the live record of `hash`, with everything
   * `lookup` does for a hit done (a `Hit` result of `lookup` would carry the same record), or of `undefined` when
   * there is none or it does not read back (then `lookup` takes the lock, or drops the bad record). It must never
   * take a lock, and must settle by `deadline` (epoch ms). A rejection (with the `MetadataStoreError` that `lookup`
   * would fail with) counts as the lookup's failure: it is reported and the call runs uncached, without waiting for
   * the store a second time. `now`: the cache's clock (ms), for a store that keeps time by it.
   *
   * @since 0.2.0
   */
  readonly tryHit?:
    | ((
      namespace: string,
      hash: string,
      options: { readonly now: number; readonly deadline: number }
    ) => Promise<EntryRecord | undefined> | undefined)
    | undefined

  /**
   * Take the stampede lock of `hash` with `token` for `lockTtlMs` whether or not a record exists: true when the lock
   * is now held under `token` (it was free, expired, or already held under `token`), false when another token holds
   * it. For a writer that replaces a live record.
   */
  readonly acquireLock: (namespace: string, hash: string, options: LockOptions) => Effect.Effect<
    boolean,
    MetadataStoreError
  >

  /**
   * Extend the lock to `lockTtlMs` from now if, and only if, it is still held under `token`; false otherwise (it
   * lapsed, was released, or was removed by an invalidation). Never takes a lock that is not held.
   */
  readonly renewLock: (namespace: string, hash: string, options: LockOptions) => Effect.Effect<
    boolean,
    MetadataStoreError
  >

  /** Release the stampede lock of `hash` if, and only if, it is held under `token`. */
  readonly releaseLock: (namespace: string, hash: string, token: string) => Effect.Effect<void, MetadataStoreError>

  /**
   * Atomically, only while the lock of the record's hash is held under `token`: write the record to live `ttlMs` plus
   * `graceMs` (if any) from now, set its LRU score to now, register the namespace, drop expired and then least-recently-accessed
   * entries beyond `maxEntries`, and release the lock. A store may bound the work of one commit (Redis drops at most
   * 100 expired entries and evicts at most 100 per commit; later commits go on), so an index never blocks it for long.
   */
  readonly commit: (record: EntryRecord, options: CommitOptions) => Effect.Effect<CommitResult, MetadataStoreError>

  /** Read live records without touching their LRU score; the result is aligned with `hashes`. */
  readonly getMany: (
    namespace: string,
    hashes: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<Option.Option<EntryRecord>>, MetadataStoreError>

  /**
   * Invalidate entries: remove their records and their stampede locks (so a computation in flight cannot commit a
   * value computed before the invalidation). Returns the object keys of the records that existed (and may include
   * those of records that had expired but were still known), for the caller to delete.
   */
  readonly remove: (
    namespace: string,
    hashes: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<string>, MetadataStoreError>

  /**
   * Drop a bad entry: remove the record of `hash` if, and only if, it still names `objectKey` (`""` matches a record
   * without one). A record written meanwhile by another writer survives. The lock is left alone. True when a record
   * was removed.
   */
  readonly removeIf: (
    namespace: string,
    hash: string,
    objectKey: string
  ) => Effect.Effect<boolean, MetadataStoreError>

  /**
   * One bounded step of invalidating a whole namespace. Every step first removes every stampede lock of the
   * namespace (computations in flight cannot commit afterwards), then up to a batch of records; the step that finds
   * the namespace empty forgets it (`done`). Other namespaces are untouched. Call it until `done`.
   */
  readonly clearNamespace: (namespace: string) => Effect.Effect<ClearStep, MetadataStoreError>

  /** The namespaces that have had a lock taken or a record committed, and not been cleared since. */
  readonly namespaces: Effect.Effect<ReadonlyArray<string>, MetadataStoreError>

  /** How many live entries a namespace holds. */
  readonly size: (namespace: string) => Effect.Effect<number, MetadataStoreError>

  /**
   * Optional: the live records of a namespace, page by page, without touching their LRU score, for tools that look
   * inside a cache (the `s3cache` CLI's `stats`). In no order; a record written or removed while the stream runs may
   * or may not be seen, and a store may yield a record more than once (Redis `ZSCAN`): count by hash. A store without
   * it cannot be listed.
   *
   * @since 0.2.0
   */
  readonly scan?: ((namespace: string) => Stream.Stream<EntryRecord, MetadataStoreError>) | undefined
}>() {}

/**
 * An in-process metadata store: records, LRU order and locks in maps. It is the metadata half of
 * `Cache.layerEmbedded` and the reference implementation of the port; its contents die with the process.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<MetadataStore["Type"]> = internal.make

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<MetadataStore> = Layer.effect(MetadataStore, makeMemory)
