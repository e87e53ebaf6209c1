/**
 * The formats of a serializer: how each one turns a value into bytes and bytes back into a value (`v8`, `json`,
 * `bytes`, `schema-json` and the extra codecs), how `auto` picks one, and the errors that say why a format cannot be
 * used. The serializer (`serializer.ts`) runs them between its checksums and its compression.
 *
 * `v8` stores plain data only. Its structured clone keeps no prototypes: a class instance would come back as a
 * plain object that the type system still calls an instance, and fail far from the cache (`p.norm is not a
 * function`). So before serializing, a walk over the value (`plainData.ts`) refuses the first object whose prototype
 * v8 does not give back, naming where it is.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as V8 from "node:v8"
import { SerializationError } from "../CacheError.js"
import type { Codec, Snapshot, SnapshotOptions } from "../Serializer.js"
import { asPlain, messageOf, owned } from "./compression.js"
import { describeForeign, foreignObject, pathTo, plainCounterpart } from "./plainData.js"

const coreFormats: ReadonlyArray<string> = ["auto", "v8", "json", "bytes", "schema-json"]

const textEncoder = new TextEncoder()
// fatal: invalid UTF-8 is a decode error rather than U+FFFD silently spliced into the value
const textDecoder = new TextDecoder("utf-8", { fatal: true })

const describeValue = (value: unknown): string => {
  if (value === null) return "null"
  if (Array.isArray(value)) return "an array"
  if (typeof value === "object") {
    const name = (value as { readonly constructor?: { readonly name?: unknown } }).constructor?.name
    return typeof name === "string" && name !== "Object" ? `an object (${name})` : "an object"
  }
  return `a value of type ${typeof value}`
}

/**
 * Turns stored bytes into a value.
 *
 * @internal
 */
export type Decoder = (raw: Uint8Array) => Effect.Effect<unknown, SerializationError>

/**
 * Why a decoder in plain code could not decode: a wrapper, so that no decoded value is ever taken for a failure.
 *
 * @internal
 */
export class Failed {
  constructor(readonly error: SerializationError) {}
}

/**
 * A decoder in plain code (the core formats read without a schema): the value, or `Failed`.
 *
 * @internal
 */
export type SyncDecoder = (raw: Uint8Array) => unknown

/** @internal */
export interface Formats {
  /** the extra codecs, in the order `auto` tries them */
  readonly codecs: ReadonlyArray<Codec>
  /** encode a value (schema, `auto` or a named format) into bytes of its own */
  readonly encode: (value: unknown, options: SnapshotOptions) => Effect.Effect<Snapshot, SerializationError>
  /**
   * The decoder of a stored format for a reader with or without a schema, resolved before the payload is touched: a
   * record that cannot be read is refused without hashing or inflating it. `copyBytes`: the bytes are not the value's
   * to keep (a `bytes` value, and what a codec decodes, get a copy).
   */
  readonly decoderFor: (
    format: string,
    schema: Schema.Schema<any, any, never> | undefined,
    copyBytes: boolean
  ) => Decoder | SerializationError
  /** `decoderFor` in plain code, for a reader without a schema of a core format; `undefined` for the rest */
  readonly syncDecoderFor: (format: string, copyBytes: boolean) => SyncDecoder | undefined
  readonly unknownCompression: (format: string, compression: string, reading: boolean) => SerializationError
}

/** @internal */
export const make = (extraCodecs: ReadonlyArray<Codec>): Formats => {
  // Names resolve core formats first and the first codec of a name wins. A codec that shadows either would write
  // bytes that read back through another decoder, so it is left out entirely: not listed, never picked by `auto`.
  // (`make` returns a service, not an effect, so it has no channel to refuse such a codec with.)
  const byName = new Map<string, Codec>()
  for (const codec of extraCodecs) {
    if (!coreFormats.includes(codec.name) && !byName.has(codec.name)) {
      byName.set(codec.name, codec)
    }
  }
  const codecs: ReadonlyArray<Codec> = Array.from(byName.values())

  const knownFormats = (): string =>
    ["v8", "json", "bytes", "schema-json", ...codecs.map((codec) => codec.name)].map((name) => `"${name}"`).join(", ")

  const unknownFormat = (format: string, reading: boolean): SerializationError =>
    new SerializationError({
      reason: "UnsupportedFormat",
      format,
      description: `${
        reading ? "the entry was written with" : "no codec is registered for"
      } format "${format}", which this serializer does not know (known: ${knownFormats()}); provide a Serializer layer that registers this codec (for "arrow": the layer of @s3cache/arrow)${
        reading ? "; until then the entry is treated as a miss" : ""
      }`
    })

  const unknownCompression = (format: string, compression: string, reading: boolean): SerializationError =>
    new SerializationError({
      reason: "UnsupportedFormat",
      format,
      description: reading
        ? `the entry was compressed with "${compression}", which this version of s3cache does not know (known: "zstd", "gzip", "none"); upgrade @s3cache/core to read it; until then the entry is treated as a miss`
        : `unknown compression "${compression}"; use "zstd", "gzip" or "none"`
    })

  // --- encoding ---------------------------------------------------------------------------------------------------

  const jsonBytes = (value: unknown, format: string, hint: string): Effect.Effect<Uint8Array, SerializationError> =>
    Effect.try({
      try: (): string | undefined => JSON.stringify(value),
      catch: (cause) =>
        new SerializationError({
          reason: "Encode",
          format,
          description: `JSON.stringify failed (${messageOf(cause)}); ${hint}`,
          cause
        })
    }).pipe(Effect.flatMap((text) =>
      text === undefined
        ? Effect.fail(
          new SerializationError({
            reason: "Encode",
            format,
            description: `nothing to encode: JSON.stringify returned undefined for ${
              describeValue(value)
            }; JSON holds neither undefined, functions nor symbols: cache a JSON value, or use format "v8" (which stores undefined)`
          })
        )
        : Effect.succeed(textEncoder.encode(text))
    ))

  const encodeWithSchema = (
    value: unknown,
    schema: Schema.Schema<any, any, never>
  ): Effect.Effect<Uint8Array, SerializationError> =>
    Schema.encode(schema)(value).pipe(
      Effect.mapError((error) =>
        new SerializationError({
          reason: "Encode",
          format: "schema-json",
          description: `the value does not match the schema: ${error.message}; fix the value or the schema`,
          cause: error
        })
      ),
      Effect.flatMap((encoded) =>
        jsonBytes(
          encoded,
          "schema-json",
          "the schema's encoded side must be JSON: use schemas that encode to JSON values (`Schema.BigInt` rather than `Schema.BigIntFromSelf`, `Schema.Date` rather than `Schema.DateFromSelf`)"
        )
      )
    )

  // `auto` never reaches the store: it resolves to the format that actually encodes the value.
  const pickAuto = (value: unknown): Effect.Effect<string, SerializationError> =>
    Effect.suspend(() => {
      for (const codec of codecs) {
        if (codec.canEncode === undefined) continue
        let accepted: boolean
        try {
          accepted = codec.canEncode(value)
        } catch (cause) {
          return Effect.fail(
            new SerializationError({
              reason: "Encode",
              format: codec.name,
              description: `canEncode of codec "${codec.name}" threw (${
                messageOf(cause)
              }); fix the codec, or pass a format other than "auto"`,
              cause
            })
          )
        }
        if (accepted) return Effect.succeed(codec.name)
      }
      if (isArrowTable(value)) {
        // v8 would store it and give back a plain object (an empty table even "works"): a wrong value, not a miss
        return Effect.fail(
          new SerializationError({
            reason: "UnsupportedFormat",
            format: "auto",
            description: "this is an Apache Arrow Table, which no registered codec handles: provide the layer of " +
              "@s3cache/arrow (ArrowCodec.layer) to store it as Arrow IPC"
          })
        )
      }
      return Effect.succeed(value instanceof Uint8Array ? "bytes" : "v8")
    })

  // Walked before it is serialized, so a class instance fails before v8 spends time on the rest of the value.
  const encodeV8 = (value: unknown): Effect.Effect<Uint8Array, SerializationError> =>
    Effect.suspend(() => {
      let foreign: object | undefined
      try {
        foreign = foreignObject(value)
        if (foreign === undefined) return Effect.succeed(owned(V8.serialize(value)))
        // a promise or a WeakMap is not a class v8 would strip but an object it cannot clone at all: its own
        // refusal is the true reason
        V8.serialize(foreign)
      } catch (cause) {
        return Effect.fail(
          new SerializationError({
            reason: "Encode",
            format: "v8",
            description: `v8 (structured clone) cannot encode this value (${
              messageOf(cause)
            }): functions, symbols, promises and other host objects cannot be cloned; cache plain data, pass \`format: "json"\` with a serializable value, or a \`schema\``,
            cause
          })
        )
      }
      return Effect.fail(
        new SerializationError({
          reason: "Encode",
          format: "v8",
          description: `v8 cannot store ${pathTo(value, foreign)} (${
            describeForeign(foreign)
          }): it would come back as ${
            plainCounterpart(foreign)
          } without its class; pass a \`schema\` (Schema.Class round-trips class instances), use a codec that knows this type, or cache plain data`
        })
      )
    })

  const encodeAs = (format: string, value: unknown): Effect.Effect<Uint8Array, SerializationError> => {
    switch (format) {
      case "v8":
        return encodeV8(value)
      case "json":
        return jsonBytes(
          value,
          format,
          "JSON holds neither bigints nor cycles: use format \"v8\", or a `schema` (`Schema.BigInt` stores a bigint as a string)"
        )
      case "bytes":
        // copied: the caller may reuse its array after the effect completed, and what is stored must not change
        return value instanceof Uint8Array
          ? Effect.succeed(new Uint8Array(value))
          : Effect.fail(
            new SerializationError({
              reason: "Encode",
              format,
              description: `format "bytes" stores a Uint8Array as it is, but got ${
                describeValue(value)
              }; pass a Uint8Array, or use format "auto", "v8" or "json"`
            })
          )
      case "schema-json":
        return Effect.fail(
          new SerializationError({
            reason: "Encode",
            format,
            description: "format \"schema-json\" is chosen by passing a `schema`, which this call does not; pass one"
          })
        )
      default: {
        const codec = byName.get(format)
        return codec === undefined ? Effect.fail(unknownFormat(format, false)) : codec.encode(value)
      }
    }
  }

  const encode = (value: unknown, options: SnapshotOptions): Effect.Effect<Snapshot, SerializationError> =>
    Effect.gen(function*() {
      if (options.schema !== undefined) {
        return { format: "schema-json", bytes: yield* encodeWithSchema(value, options.schema) }
      }
      const format = options.format === "auto" ? yield* pickAuto(value) : options.format
      return { format, bytes: yield* encodeAs(format, value) }
    })

  // --- decoding ---------------------------------------------------------------------------------------------------

  const parseJson = (bytes: Uint8Array, format: string): unknown => {
    try {
      return JSON.parse(textDecoder.decode(bytes)) as unknown
    } catch (cause) {
      return new Failed(
        new SerializationError({
          reason: "Decode",
          format,
          description: `the stored bytes are not JSON (${
            messageOf(cause)
          }); the entry will be treated as a miss and written again`,
          cause
        })
      )
    }
  }

  const deserializeV8 = (raw: Uint8Array): unknown => {
    try {
      return V8.deserialize(raw) as unknown
    } catch (cause) {
      return new Failed(
        new SerializationError({
          reason: "Decode",
          format: "v8",
          description: `v8 could not deserialize the stored bytes (${
            messageOf(cause)
          }); an older Node.js cannot read what a newer one wrote. The entry will be treated as a miss and written again`,
          cause
        })
      )
    }
  }

  const parseJsonAsJson = (raw: Uint8Array): unknown => parseJson(raw, "json")
  const copied = (raw: Uint8Array): unknown => new Uint8Array(raw)

  // v8 gives back typed arrays and Buffers as views of the bytes it reads: bytes that are not the value's to keep are
  // copied first (the copy also lets go of whatever larger buffer they are a view of)
  const deserializeV8Copy = (raw: Uint8Array): unknown => deserializeV8(new Uint8Array(raw))

  const syncDecoderFor: Formats["syncDecoderFor"] = (format, copyBytes) => {
    switch (format) {
      case "v8":
        return copyBytes ? deserializeV8Copy : deserializeV8
      case "json":
        return parseJsonAsJson
      case "bytes":
        return copyBytes ? copied : asPlain
      default:
        return undefined
    }
  }

  /** The Effect of a decoder in plain code. */
  const inEffect = (decode: SyncDecoder): Decoder => (raw) =>
    Effect.suspend(() => {
      const value = decode(raw)
      return value instanceof Failed ? Effect.fail(value.error) : Effect.succeed(value)
    })

  // the Effect decoders of the core formats, made once
  const inEffectOf = new Map<SyncDecoder, Decoder>(
    [deserializeV8, deserializeV8Copy, parseJsonAsJson, copied, asPlain].map((decode) => [decode, inEffect(decode)])
  )

  const readerHasSchema = (format: string): SerializationError =>
    new SerializationError({
      reason: "Decode",
      format,
      description:
        `the entry was stored without a schema (format "${format}"), but this read passes one, so the value cannot be validated; the entry will be treated as a miss and written again with the schema. Give every call that shares this key the same schema`
    })

  const readerLacksSchema = (format: string): SerializationError =>
    new SerializationError({
      reason: "Decode",
      format,
      description:
        "the entry was stored with a schema (format \"schema-json\"), but this read passes none, so it would get the schema's encoded side instead of the value; pass the same `schema` on every call that shares this key"
    })

  // Resolved before the payload is touched: a record that cannot be read is refused without hashing or inflating it.
  const decoderFor = (
    format: string,
    schema: Schema.Schema<any, any, never> | undefined,
    copyBytes: boolean
  ): Decoder | SerializationError => {
    if (schema !== undefined && format !== "schema-json") return readerHasSchema(format)
    const sync = syncDecoderFor(format, copyBytes)
    if (sync !== undefined) return inEffectOf.get(sync)!
    switch (format) {
      case "schema-json": {
        if (schema === undefined) return readerLacksSchema(format)
        const decodeUnknown = Schema.decodeUnknown(schema)
        return (raw) =>
          Effect.suspend(() => {
            const json = parseJson(raw, format)
            if (json instanceof Failed) return Effect.fail(json.error)
            return Effect.mapError(decodeUnknown(json), (error) =>
              new SerializationError({
                reason: "Decode",
                format,
                description:
                  `the stored value no longer matches the schema: ${error.message}; the entry will be treated as a miss and written again (to drop all entries of an old schema at once, change the cache's \`keyVersion\`)`,
                cause: error
              }))
          })
      }
      default: {
        const codec = byName.get(format)
        if (codec === undefined) return unknownFormat(format, true)
        // a codec's value may be views of the bytes it decodes (Arrow's columns are): bytes that are not this call's
        // own (the tier's, a store's record) are copied first, so no caller can change what another gets
        return copyBytes ? (raw) => codec.decode(new Uint8Array(raw)) : (raw) => codec.decode(raw)
      }
    }
  }

  return { codecs, encode, decoderFor, syncDecoderFor, unknownCompression }
}

/** An apache-arrow `Table`, recognized without importing apache-arrow: its brand, or its class's tag. */
const isArrowTable = (value: unknown): boolean => {
  if (typeof value !== "object" || value === null) return false
  if ((value as Record<symbol, unknown>)[Symbol.for("apache-arrow/Table")] === true) return true
  const constructor = (value as { readonly constructor?: unknown }).constructor as
    | { readonly [Symbol.toStringTag]?: unknown }
    | undefined
  return typeof constructor === "function" && constructor[Symbol.toStringTag] === "Table" &&
    "schema" in value && "batches" in value
}
