/**
 * Arrow tables in s3cache: an apache-arrow `Table` is stored as one Arrow IPC stream, then compressed like every
 * payload (zstd by default) and sealed with the record's sha256.
 *
 * Provide `layer` to the cache layer and format `auto` (the default) stores every `Table` this way; other values keep
 * the core formats. `format: "arrow"` asks for it explicitly. Without the layer, asking for `arrow` is an
 * `UnsupportedFormat` error that names this package (the call itself still returns, through fail-open).
 *
 * The stored object is readable outside Node: zstd (or gzip) on top of an Arrow IPC stream, which
 * `pyarrow.ipc.open_stream` reads; see the README.
 *
 * @example
 * import { ArrowCodec } from "@s3cache/arrow"
 * import { Cache } from "@s3cache/core"
 * import type { Table } from "apache-arrow"
 * import * as Effect from "effect/Effect"
 * import * as Layer from "effect/Layer"
 *
 * declare const duckdb: { arrowQuery(sql: string): Promise<Table> }
 *
 * const CacheLive = Cache.layerEmbedded().pipe(Layer.provide(ArrowCodec.layer))
 *
 * const orders = Effect.promise(() => duckdb.arrowQuery("SELECT * FROM orders")).pipe(
 *   Cache.cached({ key: "SELECT * FROM orders", namespace: "reports" })
 * )
 * const program = orders.pipe(Effect.provide(CacheLive))
 *
 * @since 0.1.0
 */
import * as Serializer from "@s3cache/core/Serializer"
import type { Table } from "apache-arrow"
import type * as Layer from "effect/Layer"
import * as internal from "./internal/arrowCodec.js"

/**
 * The format name stored in every entry record this codec writes. It never changes: a record names the decoder
 * that reads it.
 *
 * @since 0.1.0
 * @category models
 */
export const format: typeof internal.name = internal.name

/**
 * Is `u` an apache-arrow `Table`? This is the codec's `canEncode`, so `auto` picks `arrow` exactly for these values.
 *
 * `instanceof Table` first; then the `Symbol.for("apache-arrow/Table")` brand, then the shape (a class tagged
 * `"Table"` with `schema.fields` and `batches`), so a table made by another copy of apache-arrow (a database client
 * that bundles its own) is recognized too. Such a table is rebuilt with this package's apache-arrow around the same
 * buffers before it is written: apache-arrow's writer silently writes an unreadable stream for a table of another
 * copy, even of the same version.
 *
 * @since 0.1.0
 * @category models
 */
export const isTable: (u: unknown) => u is Table = internal.isTable

/**
 * The Arrow codec: `Table` ⇄ Arrow IPC stream (no Arrow-level buffer compression; the cache compresses the whole
 * stream). Decoding checks that the bytes are exactly one complete stream before reading them, so a truncated or
 * foreign payload is a `Decode` error (a miss), never a shorter table; the decoded table's columns are views into the
 * decompressed bytes, not copies.
 *
 * Use it to build a serializer with other extra codecs:
 * `Serializer.layer({ codecs: [ArrowCodec.codec, myCodec] })` (the first codec that accepts a value wins in `auto`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const codec: Serializer.Codec = internal.codec

/**
 * A serializer with the Arrow codec plus any `Serializer.Options` (other codecs, tried after Arrow; `zstdLevel`).
 *
 * @example
 * import { ArrowCodec } from "@s3cache/arrow"
 * import { Cache, type Serializer } from "@s3cache/core"
 * import * as Layer from "effect/Layer"
 *
 * const makeCacheLive = (myCodec: Serializer.Codec) =>
 *   Cache.layerEmbedded().pipe(
 *     Layer.provide(ArrowCodec.layerWith({ codecs: [myCodec], zstdLevel: 9 }))
 *   )
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (options: Serializer.Options = {}): Layer.Layer<Serializer.Serializer> =>
  Serializer.layer({ ...options, codecs: [codec, ...(options.codecs ?? [])] })

/**
 * The serializer of `@s3cache/core` extended with the Arrow codec. Provide it to the cache layer (the cache reads
 * its serializer when the layer is built, so providing it to the program instead has no effect).
 *
 * @example
 * import { ArrowCodec } from "@s3cache/arrow"
 * import { Cache } from "@s3cache/core"
 * import { RedisMetadataStore } from "@s3cache/redis"
 * import { S3BlobStore } from "@s3cache/s3"
 * import * as Layer from "effect/Layer"
 *
 * const StoresLive = Layer.merge(
 *   RedisMetadataStore.layer({ url: "redis://localhost:6379/0" }),
 *   S3BlobStore.layer({ bucket: "my-cache-bucket", region: "eu-west-1" })
 * )
 *
 * const CacheLive = Cache.layer({ namespace: "reports" }).pipe(
 *   Layer.provide(ArrowCodec.layer),
 *   Layer.provide(StoresLive)
 * )
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Serializer.Serializer> = layerWith()
