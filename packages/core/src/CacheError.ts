/**
 * Typed errors of s3cache.
 *
 * Every error names the failing operation (`method`), a literal `reason` to match on, and a message that says
 * what happened and, where the user can do something, what to change. Inside `Cache.cached` these errors never
 * reach the caller: they are logged, counted and the original effect runs instead (fail-open). They reach the
 * caller of the administrative operations (`invalidate`, `clear`, …) and of the stores themselves.
 *
 * @since 0.1.0
 */
import "./internal/effectVersion.js"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("@s3cache/core/CacheError")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * @since 0.1.0
 * @category refinements
 */
export const isCacheError = (u: unknown): u is CacheError => Predicate.hasProperty(u, TypeId)

/**
 * Bad input from the user: a namespace that could reach other namespaces' keys, a TTL that is not positive, a key
 * that cannot be encoded, a malformed option.
 *
 * @since 0.1.0
 * @category errors
 */
export class CacheInputError extends Schema.TaggedError<CacheInputError>("@s3cache/core/CacheInputError")(
  "CacheInputError",
  {
    reason: Schema.Literal("InvalidNamespace", "InvalidTtl", "InvalidKey", "InvalidOption"),
    method: Schema.String,
    description: Schema.String,
    cause: Schema.optional(Schema.Defect)
  }
) {
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.reason} (${this.method}): ${this.description}`
  }
}

/**
 * Why a store operation failed.
 *
 * - `Timeout`: no answer within the operation's deadline.
 * - `Unavailable`: the backend could not be reached or refused the request.
 * - `Protocol`: the backend answered with something the store cannot use (a malformed record, an unexpected reply,
 *   a body that fails the transport's checksum). From a blob store's `get`, the cache takes it as a bad entry: it
 *   drops the entry and writes it again. Every other reason means an unhealthy store: the entry is kept.
 * - `InvalidArgument`: the store refused an argument (an object key that could leave the store's root, …).
 * - `Unknown`: anything else; see `cause`.
 *
 * @since 0.1.0
 * @category models
 */
export const StoreErrorReason = Schema.Literal("Timeout", "Unavailable", "Protocol", "InvalidArgument", "Unknown")

/**
 * @since 0.1.0
 * @category models
 */
export type StoreErrorReason = typeof StoreErrorReason.Type

/**
 * A `MetadataStore` operation failed.
 *
 * @since 0.1.0
 * @category errors
 */
export class MetadataStoreError extends Schema.TaggedError<MetadataStoreError>("@s3cache/core/MetadataStoreError")(
  "MetadataStoreError",
  {
    reason: StoreErrorReason,
    method: Schema.String,
    description: Schema.optional(Schema.String),
    cause: Schema.optional(Schema.Defect)
  }
) {
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.reason}: MetadataStore.${this.method}${this.description ? `: ${this.description}` : ""}`
  }
}

/**
 * A `BlobStore` operation failed. An absent object is not an error (`get` returns `Option.none()`).
 *
 * @since 0.1.0
 * @category errors
 */
export class BlobStoreError extends Schema.TaggedError<BlobStoreError>("@s3cache/core/BlobStoreError")(
  "BlobStoreError",
  {
    reason: StoreErrorReason,
    method: Schema.String,
    key: Schema.optional(Schema.String),
    description: Schema.optional(Schema.String),
    cause: Schema.optional(Schema.Defect)
  }
) {
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.reason}: BlobStore.${this.method}${this.key !== undefined ? ` (${this.key})` : ""}${
      this.description ? `: ${this.description}` : ""
    }`
  }
}

/**
 * A value could not be turned into bytes, or bytes back into a value.
 *
 * - `Encode`: the chosen format cannot encode the value (a function under `v8`, a `bigint` under `json`, …).
 * - `Decode`: the stored bytes do not decode under the recorded format, or do not match the call's schema.
 * - `Checksum`: the stored bytes are not the bytes that were written.
 * - `Compression`: compressing or decompressing failed.
 * - `UnsupportedFormat`: no codec of that name is registered, the record names an unknown compression, or it was
 *   written by a newer s3cache. Not damage: another process may read it, so the cache keeps such an entry.
 *
 * @since 0.1.0
 * @category errors
 */
export class SerializationError extends Schema.TaggedError<SerializationError>("@s3cache/core/SerializationError")(
  "SerializationError",
  {
    reason: Schema.Literal("Encode", "Decode", "Checksum", "Compression", "UnsupportedFormat"),
    format: Schema.String,
    description: Schema.String,
    cause: Schema.optional(Schema.Defect)
  }
) {
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.reason} (${this.format}): ${this.description}`
  }
}

/**
 * @since 0.1.0
 * @category errors
 */
export type CacheError = CacheInputError | MetadataStoreError | BlobStoreError | SerializationError

/**
 * @since 0.1.0
 * @category errors
 */
export const CacheError: Schema.Union<
  [typeof CacheInputError, typeof MetadataStoreError, typeof BlobStoreError, typeof SerializationError]
> = Schema.Union(CacheInputError, MetadataStoreError, BlobStoreError, SerializationError)
