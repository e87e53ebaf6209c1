/**
 * The serializer behind `Serializer.make`: formats turn values into bytes, a compression shrinks them, a sha256
 * checksum seals what is stored.
 *
 * Writing is split so that the cache can take the value's bytes when the effect completes and compress them later:
 * `snapshot` encodes into bytes the cache owns (a `bytes` value is copied, never kept as the caller's array), `seal`
 * compresses and checksums them. Reading mirrors it: `unseal` checks everything that does not need the payload
 * first (codec version, schema rules, format and compression names), then the checksum, and only then decompresses,
 * so corrupt bytes never reach zstd, zlib or v8; `restore` decodes, giving every caller a value of its own.
 *
 * What each format does with a value is in `formats.ts`; what v8 keeps, in `plainData.ts`.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Schema from "effect/Schema"
import { SerializationError } from "../CacheError.js"
import * as CacheTracing from "../CacheTracing.js"
import type {
  Compression,
  DecodeOptions,
  Encoded,
  EncodeOptions,
  Options,
  Service,
  Snapshot,
  SnapshotOptions
} from "../Serializer.js"
import {
  asPlain,
  checksumNow,
  checksumOf,
  compress,
  decompress,
  defaultZstdLevel,
  isCompression
} from "./compression.js"
import * as Formats from "./formats.js"

/**
 * Bumped when the layout of stored bytes changes; a reader refuses records of a newer version.
 *
 * @since 0.1.0
 */
export const codecVersion: number = 1

/**
 * `unseal` then `restore` in plain code, where no step needs an Effect: the snapshot and a value of its own (the bytes
 * are not the value's: a `bytes` value is a copy), the error the Effect path would fail with, or `undefined` where
 * the payload needs the Effect path (compressed, large, a codec, a schema). Only the built-in serializer has it.
 *
 * @internal
 */
export type DecodeNow = (
  bytes: Uint8Array,
  options: DecodeOptions
) => { readonly snapshot: Snapshot; readonly value: unknown } | SerializationError | undefined

/**
 * `restore` (without `reuse`, without a schema) in plain code: a value of its own, the error the Effect path would fail
 * with, or `undefined` where it needs the Effect path (a codec, a schema).
 *
 * @internal
 */
export type RestoreNow = (snapshot: Snapshot) => { readonly value: unknown } | SerializationError | undefined

/** @internal */
export interface Now {
  readonly decode: DecodeNow
  readonly restore: RestoreNow
}

const nowKey: unique symbol = Symbol.for("@s3cache/core/Serializer/now")

/**
 * The plain-code steps of the serializer, if it is the built-in one.
 *
 * @internal
 */
export const nowOf = (serializer: Service): Now | undefined =>
  (serializer as Partial<Record<typeof nowKey, Now>>)[nowKey]

/**
 * @since 0.1.0
 */
export const make = (options: Options): Service => {
  const zstdLevel = options.zstdLevel ?? defaultZstdLevel

  const formats = Formats.make(options.codecs ?? [])
  const { codecs, decoderFor, syncDecoderFor, unknownCompression } = formats

  const sealSnapshot = (snapshot: Snapshot, compression: string): Effect.Effect<Encoded, SerializationError> =>
    Effect.gen(function*() {
      if (!isCompression(compression)) return yield* unknownCompression(snapshot.format, compression, false)
      const bytes = yield* compress(snapshot.bytes, compression, zstdLevel, snapshot.format)
      yield* CacheTracing.annotateInnerSpan({
        "s3cache.format": snapshot.format,
        "s3cache.raw_size": snapshot.bytes.byteLength,
        "s3cache.stored_size": bytes.byteLength
      })
      return {
        bytes: asPlain(bytes),
        format: snapshot.format,
        compression,
        rawSize: snapshot.bytes.byteLength,
        checksum: yield* checksumOf(bytes),
        codecVersion
      }
    })

  const snapshot = (value: unknown, options: SnapshotOptions): Effect.Effect<Snapshot, SerializationError> =>
    formats.encode(value, options).pipe(
      Effect.tap((snapshot) =>
        CacheTracing.annotateInnerSpan({
          "s3cache.format": snapshot.format,
          "s3cache.raw_size": snapshot.bytes.byteLength
        })
      ),
      CacheTracing.withInnerSpan("Serializer.snapshot", { attributes: { "s3cache.format_requested": options.format } })
    )

  const seal = (snapshot: Snapshot, compression: Compression): Effect.Effect<Encoded, SerializationError> =>
    sealSnapshot(snapshot, compression).pipe(
      CacheTracing.withInnerSpan("Serializer.seal", { attributes: { "s3cache.compression": compression } })
    )

  // Not `snapshot` then `seal`: run back to back, the steps are one span, as before the split, rather than three.
  const encode = (value: unknown, options: EncodeOptions): Effect.Effect<Encoded, SerializationError> =>
    Effect.gen(function*() {
      const compression: string = options.compression
      // checked before encoding, so a typo in the configuration does not cost an encode of every value
      if (!isCompression(compression)) {
        return yield* unknownCompression(
          options.schema === undefined ? options.format : "schema-json",
          compression,
          false
        )
      }
      return yield* sealSnapshot(yield* formats.encode(value, options), compression)
    }).pipe(
      CacheTracing.withInnerSpan("Serializer.encode", {
        attributes: { "s3cache.format_requested": options.format, "s3cache.compression": options.compression }
      })
    )

  /**
   * What the record says, checked before the payload is touched (codec version, schema rules, format and compression
   * names): the payload's decoder, or why the entry cannot be read.
   */
  const check = (options: DecodeOptions, copyBytes: boolean): Formats.Decoder | SerializationError => {
    const { compression, format } = options
    // written so that a missing or NaN version is refused as well
    if (!(options.codecVersion <= codecVersion)) {
      return new SerializationError({
        reason: "UnsupportedFormat",
        format,
        description:
          `the entry was written by a newer s3cache (codec version ${options.codecVersion}; this one reads up to ${codecVersion}); upgrade @s3cache/core here. Until then the entry is treated as a miss`
      })
    }
    const decoder = decoderFor(format, options.schema, copyBytes)
    if (decoder instanceof SerializationError) return decoder
    return isCompression(compression) ? decoder : unknownCompression(format, compression, true)
  }

  const mismatch = (format: string, expected: string, actual: string) =>
    new SerializationError({
      reason: "Checksum",
      format,
      description: `the stored bytes do not match their checksum (expected ${expected.slice(0, 19)}…, got ${
        actual.slice(0, 19)
      }…): they changed after they were written (truncated upload, corruption, another writer). The entry will be treated as a miss and written again`
    })

  // Plain code in one `suspend` rather than a generator: it runs on every hit.
  const unsealWith = (
    bytes: Uint8Array,
    options: DecodeOptions,
    copyBytes: boolean
  ): Effect.Effect<readonly [Snapshot, Formats.Decoder], SerializationError> =>
    Effect.suspend(() => {
      const { compression, format } = options
      const decoder = check(options, copyBytes)
      if (decoder instanceof SerializationError) return Effect.fail(decoder)
      const verified = (actual: string): Effect.Effect<readonly [Snapshot, Formats.Decoder], SerializationError> => {
        if (actual !== options.checksum) return Effect.fail(mismatch(format, options.checksum, actual))
        return compression === "none"
          ? Effect.succeed([{ format, bytes }, decoder] as const)
          : Effect.map(
            decompress(bytes, compression as Compression, format),
            (raw) => [{ format, bytes: raw }, decoder] as const
          )
      }
      // hashed here and now unless the payload is large enough to be hashed in slices
      const now = checksumNow(bytes)
      return now !== undefined ? verified(now) : Effect.flatMap(checksumOf(bytes), verified)
    })

  // `unseal`, then `restore` without `reuse`, in plain code: the same checks in the same order, for the payloads
  // that need no Effect (uncompressed, hashed in one go, a core format read without a schema)
  const decodeNow: DecodeNow = (bytes, options) => {
    if (options.compression !== "none" || options.schema !== undefined) return undefined
    const decode = syncDecoderFor(options.format, true)
    if (decode === undefined) return undefined
    const checked = check(options, true)
    if (checked instanceof SerializationError) return checked
    const actual = checksumNow(bytes)
    if (actual === undefined) return undefined
    if (actual !== options.checksum) return mismatch(options.format, options.checksum, actual)
    const value = decode(bytes)
    return value instanceof Formats.Failed ? value.error : { snapshot: { format: options.format, bytes }, value }
  }

  const restoreNow: RestoreNow = (snapshot) => {
    const decode = syncDecoderFor(snapshot.format, true)
    if (decode === undefined) return undefined
    const value = decode(snapshot.bytes)
    return value instanceof Formats.Failed ? value.error : { value }
  }

  const readAttributes = (bytes: Uint8Array, options: DecodeOptions) => ({
    "s3cache.format": options.format,
    "s3cache.compression": options.compression,
    "s3cache.stored_size": bytes.byteLength
  })

  const unseal = (bytes: Uint8Array, options: DecodeOptions): Effect.Effect<Snapshot, SerializationError> =>
    unsealWith(bytes, options, false).pipe(
      Effect.map(([snapshot]) => snapshot),
      CacheTracing.withInnerSpan("Serializer.unseal", () => ({ attributes: readAttributes(bytes, options) }))
    )

  const restore = (
    snapshot: Snapshot,
    options: {
      readonly schema?: Schema.Schema<any, any, never> | undefined
      readonly reuse?: boolean | undefined
    }
  ): Effect.Effect<unknown, SerializationError> =>
    Effect.suspend(() => {
      const decoder = decoderFor(snapshot.format, options.schema, options.reuse !== true)
      return decoder instanceof SerializationError ? Effect.fail(decoder) : decoder(snapshot.bytes)
    }).pipe(
      CacheTracing.withInnerSpan("Serializer.restore", () => ({
        attributes: { "s3cache.format": snapshot.format, "s3cache.raw_size": snapshot.bytes.byteLength }
      }))
    )

  // The hit path: the decompressed bytes are nobody else's, so `bytes` are handed over without a copy.
  const decode = (bytes: Uint8Array, options: DecodeOptions): Effect.Effect<unknown, SerializationError> =>
    unsealWith(bytes, options, false).pipe(
      Effect.flatMap(([snapshot, decoder]) => decoder(snapshot.bytes)),
      CacheTracing.withInnerSpan("Serializer.decode", () => ({ attributes: readAttributes(bytes, options) }))
    )

  const service: Service & { readonly [nowKey]: Now } = {
    codecs,
    snapshot,
    seal,
    encode,
    unseal,
    restore,
    decode,
    [nowKey]: { decode: decodeNow, restore: restoreNow }
  }
  return service
}
