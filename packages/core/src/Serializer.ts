/**
 * Values ⇄ stored bytes: a codec (format) turns a value into bytes, a compression shrinks them, a checksum seals
 * them. The record of an entry names the format and compression that wrote it, so reading never guesses.
 *
 * Formats of core:
 * - `v8`: structured clone via `node:v8` (our counterpart of pickle) of plain data: primitives, plain objects and
 *   arrays, Dates, RegExps, Maps, Sets, BigInts, typed arrays, Buffers and the built-in Errors, cycles included.
 *   A class instance anywhere in the value is refused (`Encode` error naming where it is): v8 would give back a
 *   plain object without its prototype, typed as the class, a wrong value. Cache such values with a `schema`
 *   (`Schema.Class` round-trips), a codec, or as plain data.
 * - `json`: `JSON.stringify` / `JSON.parse`, lossy by design: a Date comes back as its ISO string, a Map or a Set
 *   as `{}`, `undefined` fields vanish, class instances come back as plain objects. Use it for JSON data only.
 * - `bytes`: a `Uint8Array` as it is.
 * - `schema-json`: a value encoded with an `effect/Schema` and stored as JSON, so Dates, BigInts and branded types
 *   round-trip and a value that no longer matches the schema is refused on read. Chosen by passing `schema`.
 * - `auto` (a request, never stored): the first extra codec whose `canEncode` accepts the value, else `bytes` for a
 *   `Uint8Array`, else `v8` (with its refusal of class instances).
 *
 * Writing is two steps: `snapshot` encodes the value into bytes the cache owns, at the moment the effect completed
 * (so a caller that mutates the value afterwards changes neither what is stored nor what other callers get), and
 * `seal` compresses and checksums them, later, in the background write. Reading is `unseal` (checksum, then
 * decompress) and `restore` (decode); `restore` of the same snapshot gives each caller a value of its own.
 *
 * `Serializer` is a `Context.Reference`: without a layer, the default serializer (core codecs) is used. Packages
 * that add codecs (`@s3cache/arrow`) provide a serializer made with `make({ codecs })`.
 *
 * @since 0.1.0
 */
import "./internal/effectVersion.js"
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Schema from "effect/Schema"
import type { SerializationError } from "./CacheError.js"
import * as internal from "./internal/serializer.js"

/**
 * @since 0.1.0
 * @category models
 */
export type Compression = "zstd" | "gzip" | "none"

/**
 * @since 0.1.0
 * @category models
 */
export const compressions: ReadonlyArray<Compression> = ["zstd", "gzip", "none"]

/**
 * A format request: `auto`, a core format, or the name of an extra codec (`"arrow"`). `schema-json` is chosen by
 * passing a `schema`, not by name.
 *
 * @since 0.1.0
 * @category models
 */
export type Format = "auto" | "v8" | "json" | "bytes" | (string & {})

/**
 * A codec that a serializer can be extended with.
 *
 * @since 0.1.0
 * @category models
 */
export interface Codec {
  /**
   * Stored in the entry record; must be stable across releases. A codec named like a core format (`auto`, `v8`,
   * `json`, `bytes`, `schema-json`) or like an earlier codec is left out, so a name always means one decoder.
   */
  readonly name: string
  /** when present, `auto` picks this codec for the values it accepts (tried before the core formats) */
  readonly canEncode?: ((value: unknown) => boolean) | undefined
  readonly encode: (value: unknown) => Effect.Effect<Uint8Array, SerializationError>
  /** receives the bytes after the checksum was verified and they were decompressed */
  readonly decode: (bytes: Uint8Array) => Effect.Effect<unknown, SerializationError>
}

/**
 * An encoded value before compression: what `snapshot` takes at the moment the effect completed, and what `unseal`
 * gives back. The bytes belong to the cache: no view of the caller's value.
 *
 * @since 0.1.0
 * @category models
 */
export interface Snapshot {
  /** the format that encoded the value (never `auto`) */
  readonly format: string
  readonly bytes: Uint8Array
}

/**
 * @since 0.1.0
 * @category models
 */
export interface SnapshotOptions {
  readonly format: Format
  /** when given, the value is encoded with this schema and stored as `schema-json` */
  readonly schema?: Schema.Schema<any, any, never> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface EncodeOptions {
  readonly format: Format
  readonly compression: Compression
  /** when given, the value is encoded with this schema and stored as `schema-json` */
  readonly schema?: Schema.Schema<any, any, never> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Encoded {
  /** the bytes to store: encoded, then compressed */
  readonly bytes: Uint8Array
  /** the format that encoded the value (never `auto`) */
  readonly format: string
  readonly compression: Compression
  /** encoded size before compression */
  readonly rawSize: number
  /** `sha256:<hex>` of `bytes` */
  readonly checksum: string
  readonly codecVersion: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface DecodeOptions {
  /** as recorded when the bytes were written */
  readonly format: string
  readonly compression: string
  readonly checksum: string
  readonly codecVersion: number
  /** the reader's schema; a payload stored without one (or with another format) is refused */
  readonly schema?: Schema.Schema<any, any, never> | undefined
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Serializer extends Context.Reference<Serializer>()("@s3cache/core/Serializer", {
  defaultValue: () => internal.make({})
}) {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** the extra codecs, in the order `auto` tries them */
  readonly codecs: ReadonlyArray<Codec>
  /** encode `value` into bytes of its own (the format resolved, `auto` never stored) */
  readonly snapshot: (value: unknown, options: SnapshotOptions) => Effect.Effect<Snapshot, SerializationError>
  /** compress a snapshot and checksum the result: the bytes to store and what the record says of them */
  readonly seal: (snapshot: Snapshot, compression: Compression) => Effect.Effect<Encoded, SerializationError>
  /** `snapshot`, then `seal` */
  readonly encode: (value: unknown, options: EncodeOptions) => Effect.Effect<Encoded, SerializationError>
  /**
   * Check what the record says (codec version, format, compression, schema rules), verify the checksum, decompress:
   * the snapshot that was stored. Nothing of the payload is decoded yet.
   */
  readonly unseal: (bytes: Uint8Array, options: DecodeOptions) => Effect.Effect<Snapshot, SerializationError>
  /**
   * Decode a snapshot into a value (with a schema: validate it); each call gives a value of its own (`bytes` are
   * copied), so several callers may restore one snapshot. `reuse`: the value may share the snapshot's memory (no
   * copy of `bytes`), for a snapshot nobody restores again.
   */
  readonly restore: (
    snapshot: Snapshot,
    options: {
      readonly schema?: Schema.Schema<any, any, never> | undefined
      readonly reuse?: boolean | undefined
    }
  ) => Effect.Effect<unknown, SerializationError>
  /** `unseal`, then decode (without the copy of `bytes` that `restore` makes) */
  readonly decode: (bytes: Uint8Array, options: DecodeOptions) => Effect.Effect<unknown, SerializationError>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** codecs added to the core formats, tried in this order by `auto` */
  readonly codecs?: ReadonlyArray<Codec> | undefined
  /** zstd level, 1–22; default 3 */
  readonly zstdLevel?: number | undefined
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make: (options: Options) => Service = internal.make

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Serializer> => Layer.succeed(Serializer, make(options))

/**
 * The current codec version, stored in every record; a record written by a newer version is a miss.
 *
 * @since 0.1.0
 * @category models
 */
export const codecVersion: number = internal.codecVersion
