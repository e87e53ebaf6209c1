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
 * Also part of the contract (the conformance suite checks each): a `Hit` does not extend the TTL; `remove` leaves
 * locks in place; a namespace stays registered after its records are removed or expired, until `removeNamespace`;
 * a commit without a token, or with another token, keeps the lock.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import * as Schema from "effect/Schema"
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
  /** the payload's key in the `BlobStore`; unique per write */
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
  codecVersion: Schema.Number,
  /** the first characters of the normalized key, for humans */
  keyPreview: Schema.String
})

/**
 * @since 0.1.0
 * @category models
 */
export interface EntryRecord extends Schema.Schema.Type<typeof EntryRecord> {}

/**
 * The answer of `lookup`:
 *
 * - `Hit`: a live record; its LRU score was set to now.
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
  /** how long the lock lives if it is never released, milliseconds */
  readonly lockTtlMs: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface CommitOptions {
  /** release the stampede lock of this entry if it is held under this token */
  readonly token?: string | undefined
  /** after writing, keep at most this many live entries in the namespace, dropping the least recently accessed */
  readonly maxEntries: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface CommitResult {
  /**
   * Object keys that no record references any more because of this commit: the replaced record's object and the
   * objects of evicted entries, and it may include those of expired entries the store still knew (the memory store
   * does; Redis cannot, its expired records are gone). The caller deletes them from the `BlobStore` (record first,
   * then object); objects of expired entries it does not learn of are orphans for `Cache.cleanupOrphanedObjects`.
   */
  readonly obsolete: ReadonlyArray<string>
  /** how many entries were evicted to stay within `maxEntries` */
  readonly evicted: number
}

/**
 * @since 0.1.0
 * @category tags
 */
export class MetadataStore extends Context.Tag("@s3cache/core/MetadataStore")<MetadataStore, {
  /**
   * One round trip: read the live record of `hash`; if present, set its LRU score to now and return `Hit`;
   * otherwise try to take the stampede lock with `token` for `lockTtlMs` (`Acquired`), or report that another
   * token holds it (`Busy`). A caller that already holds the lock under the same token gets `Acquired` again.
   */
  readonly lookup: (
    namespace: string,
    hash: string,
    options: LockOptions
  ) => Effect.Effect<LookupResult, MetadataStoreError>

  /**
   * Atomically: write the record with its TTL (`ttlMs`), set its LRU score to now, register the namespace, drop
   * expired and then least-recently-accessed entries beyond `maxEntries`, and release the lock if `token`
   * matches. A record replaced by this one is not counted as evicted; its object key is in `obsolete`.
   */
  readonly commit: (record: EntryRecord, options: CommitOptions) => Effect.Effect<CommitResult, MetadataStoreError>

  /** Release the stampede lock of `hash` if, and only if, it is held under `token`. */
  readonly releaseLock: (namespace: string, hash: string, token: string) => Effect.Effect<void, MetadataStoreError>

  /** Read live records without touching their LRU score; the result is aligned with `hashes`. */
  readonly getMany: (
    namespace: string,
    hashes: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<Option.Option<EntryRecord>>, MetadataStoreError>

  /**
   * Remove records; returns the object keys of the records that existed (and may include those of records that had
   * expired but were still known), for the caller to delete.
   */
  readonly remove: (
    namespace: string,
    hashes: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<string>, MetadataStoreError>

  /**
   * Remove every record and lock of a namespace and forget the namespace; returns the object keys of the removed
   * records. Other namespaces are untouched.
   */
  readonly removeNamespace: (namespace: string) => Effect.Effect<ReadonlyArray<string>, MetadataStoreError>

  /** The namespaces that have had a record committed and not been removed since. */
  readonly namespaces: Effect.Effect<ReadonlyArray<string>, MetadataStoreError>

  /** How many live entries a namespace holds. */
  readonly size: (namespace: string) => Effect.Effect<number, MetadataStoreError>
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
