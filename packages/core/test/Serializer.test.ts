/**
 * @since 0.1.0
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as crypto from "node:crypto"
import * as v8 from "node:v8"
import { SerializationError } from "../src/CacheError.js"
import * as Serializer from "../src/Serializer.js"

const serializer = Serializer.make({})

const sha256 = (bytes: Uint8Array): string => "sha256:" + crypto.createHash("sha256").update(bytes).digest("hex")

const roundTrip = (
  service: Serializer.Service,
  value: unknown,
  options: Serializer.EncodeOptions
): Effect.Effect<{ readonly encoded: Serializer.Encoded; readonly decoded: unknown }, SerializationError> =>
  Effect.gen(function*() {
    const encoded = yield* service.encode(value, options)
    const decoded = yield* service.decode(encoded.bytes, {
      format: encoded.format,
      compression: encoded.compression,
      checksum: encoded.checksum,
      codecVersion: encoded.codecVersion,
      schema: options.schema
    })
    return { encoded, decoded }
  })

const recordOf = (encoded: Serializer.Encoded): Serializer.DecodeOptions => ({
  format: encoded.format,
  compression: encoded.compression,
  checksum: encoded.checksum,
  codecVersion: encoded.codecVersion
})

const assertFailure = (error: SerializationError, reason: SerializationError["reason"], format: string): void => {
  assert.instanceOf(error, SerializationError)
  assert.strictEqual(error.reason, reason, error.message)
  assert.strictEqual(error.format, format)
}

interface Rich {
  readonly map: Map<string, number>
  readonly set: Set<string>
  readonly at: Date
  readonly big: bigint
  readonly nested: { readonly list: ReadonlyArray<unknown>; readonly none: undefined }
  readonly typed: Float64Array
  self?: Rich
}

const makeRich = (): Rich => {
  const rich: Rich = {
    map: new Map([["a", 1], ["b", 2]]),
    set: new Set(["x", "y"]),
    at: new Date("2024-02-29T12:34:56.789Z"),
    big: 2n ** 80n + 1n,
    nested: { list: [1, "two", { three: [3] }, null], none: undefined },
    typed: new Float64Array([1.5, -2.25, Number.NaN])
  }
  rich.self = rich
  return rich
}

const bytesOf = (length: number, seed: number): Uint8Array => {
  const bytes = new Uint8Array(length)
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed) % 256
  return bytes
}

describe("Serializer", () => {
  describe("round trips", () => {
    for (const compression of Serializer.compressions) {
      it.effect(`v8 with ${compression}`, () =>
        Effect.gen(function*() {
          const { decoded, encoded } = yield* roundTrip(serializer, makeRich(), { format: "v8", compression })
          assert.strictEqual(encoded.format, "v8")
          assert.strictEqual(encoded.compression, compression)
          const value = decoded as Rich
          assert.notStrictEqual(value, makeRich())
          assert.instanceOf(value.map, Map)
          assert.deepStrictEqual([...value.map], [["a", 1], ["b", 2]])
          assert.instanceOf(value.set, Set)
          assert.deepStrictEqual([...value.set], ["x", "y"])
          assert.instanceOf(value.at, Date)
          assert.strictEqual(value.at.getTime(), Date.parse("2024-02-29T12:34:56.789Z"))
          assert.strictEqual(value.big, 2n ** 80n + 1n)
          assert.deepStrictEqual(value.nested.list, [1, "two", { three: [3] }, null])
          assert.isTrue("none" in value.nested)
          assert.isUndefined(value.nested.none)
          assert.instanceOf(value.typed, Float64Array)
          assert.deepStrictEqual(Array.from(value.typed), [1.5, -2.25, Number.NaN])
          assert.strictEqual(value.self, value)
        }))

      it.effect(`json with ${compression}`, () =>
        Effect.gen(function*() {
          const value = { name: "ada", tags: ["a", "b"], score: 1.25, ok: true, nothing: null, nested: { n: -3 } }
          const { decoded, encoded } = yield* roundTrip(serializer, value, { format: "json", compression })
          assert.strictEqual(encoded.format, "json")
          assert.deepStrictEqual(decoded, value)
          assert.strictEqual(encoded.rawSize, Buffer.byteLength(JSON.stringify(value)))
        }))

      it.effect(`bytes with ${compression}`, () =>
        Effect.gen(function*() {
          const value = bytesOf(10_000, 7)
          const { decoded, encoded } = yield* roundTrip(serializer, value, { format: "bytes", compression })
          assert.strictEqual(encoded.format, "bytes")
          assert.strictEqual(encoded.rawSize, 10_000)
          assert.instanceOf(decoded, Uint8Array)
          assert.deepStrictEqual(decoded, value)
        }))
    }

    it.effect("auto picks bytes for a Uint8Array (Buffer included) and v8 otherwise", () =>
      Effect.gen(function*() {
        const u8 = yield* roundTrip(serializer, new Uint8Array([1, 2, 3]), { format: "auto", compression: "zstd" })
        assert.strictEqual(u8.encoded.format, "bytes")
        assert.deepStrictEqual(u8.decoded, new Uint8Array([1, 2, 3]))

        const buffer = yield* roundTrip(serializer, Buffer.from("hello"), { format: "auto", compression: "none" })
        assert.strictEqual(buffer.encoded.format, "bytes")
        assert.strictEqual(new TextDecoder().decode(buffer.decoded as Uint8Array), "hello")

        const map = yield* roundTrip(serializer, new Map([[1, "one"]]), { format: "auto", compression: "gzip" })
        assert.strictEqual(map.encoded.format, "v8")
        assert.deepStrictEqual(map.decoded, new Map([[1, "one"]]))

        const text = yield* roundTrip(serializer, "plain", { format: "auto", compression: "none" })
        assert.strictEqual(text.encoded.format, "v8")
        assert.strictEqual(text.decoded, "plain")
      }))

    it.effect("v8 stores undefined, which json refuses", () =>
      Effect.gen(function*() {
        const { decoded, encoded } = yield* roundTrip(serializer, undefined, { format: "v8", compression: "none" })
        assert.strictEqual(encoded.format, "v8")
        assert.isUndefined(decoded)
      }))

    it.effect("decoded bytes are exactly the payload, even when Node pools small results", () =>
      Effect.gen(function*() {
        for (const compression of Serializer.compressions) {
          const { decoded, encoded } = yield* roundTrip(serializer, Buffer.from("abc"), {
            format: "bytes",
            compression
          })
          const bytes = decoded as Uint8Array
          assert.strictEqual(bytes.byteLength, 3)
          assert.deepStrictEqual(Array.from(bytes), [97, 98, 99])
          assert.deepStrictEqual(Array.from(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)), [
            97,
            98,
            99
          ])
          if (compression !== "none") {
            // produced by zlib or zstd: small results must not be views into a pool shared with other data
            assert.strictEqual(bytes.buffer.byteLength, 3, compression)
            assert.strictEqual(encoded.bytes.buffer.byteLength, encoded.bytes.byteLength, compression)
          }
        }
      }))
  })

  describe("schema", () => {
    const UserId = Schema.String.pipe(Schema.brand("UserId"))
    const Event = Schema.Struct({ at: Schema.Date, n: Schema.BigInt, id: UserId })
    const event = { at: new Date("2023-05-06T07:08:09.010Z"), n: 9_007_199_254_740_993n, id: UserId.make("u-42") }

    it.effect("round-trips Dates, bigints and branded strings as schema-json", () =>
      Effect.gen(function*() {
        for (const compression of Serializer.compressions) {
          const { decoded, encoded } = yield* roundTrip(serializer, event, {
            format: "auto",
            compression,
            schema: Event
          })
          assert.strictEqual(encoded.format, "schema-json")
          const value = decoded as typeof Event.Type
          assert.instanceOf(value.at, Date)
          assert.strictEqual(value.at.getTime(), event.at.getTime())
          assert.strictEqual(value.n, 9_007_199_254_740_993n)
          assert.strictEqual(value.id, "u-42")
        }
      }))

    it.effect("stores the schema's encoded side as JSON", () =>
      Effect.gen(function*() {
        const encoded = yield* serializer.encode(event, { format: "v8", compression: "none", schema: Event })
        assert.strictEqual(encoded.format, "schema-json")
        assert.deepStrictEqual(JSON.parse(new TextDecoder().decode(encoded.bytes)), {
          at: "2023-05-06T07:08:09.010Z",
          n: "9007199254740993",
          id: "u-42"
        })
      }))

    it.effect("a value that does not match the schema is an Encode error carrying the parse error", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(
          serializer.encode({ ...event, at: "yesterday" }, { format: "auto", compression: "none", schema: Event })
        )
        assertFailure(error, "Encode", "schema-json")
        assert.include(error.description, "does not match the schema")
        assert.include(error.description, "Expected DateFromSelf")
      }))

    it.effect("a stored payload that no longer matches the schema is a Decode error", () =>
      Effect.gen(function*() {
        const encoded = yield* serializer.encode(event, { format: "auto", compression: "zstd", schema: Event })
        const EventV2 = Schema.Struct({ ...Event.fields, email: Schema.String })
        const error = yield* Effect.flip(serializer.decode(encoded.bytes, { ...recordOf(encoded), schema: EventV2 }))
        assertFailure(error, "Decode", "schema-json")
        assert.include(error.description, "no longer matches the schema")
        assert.include(error.description, "email")
      }))

    it.effect("a schema on read of a record stored without one is a Decode error", () =>
      Effect.gen(function*() {
        const encoded = yield* serializer.encode(event, { format: "v8", compression: "none" })
        const error = yield* Effect.flip(serializer.decode(encoded.bytes, { ...recordOf(encoded), schema: Event }))
        assertFailure(error, "Decode", "v8")
        assert.include(error.description, "stored without a schema")
      }))

    it.effect("a schema-json record read without a schema is a Decode error", () =>
      Effect.gen(function*() {
        const encoded = yield* serializer.encode(event, { format: "auto", compression: "gzip", schema: Event })
        const error = yield* Effect.flip(serializer.decode(encoded.bytes, recordOf(encoded)))
        assertFailure(error, "Decode", "schema-json")
        assert.include(error.description, "schema")
      }))

    it.effect("format schema-json without a schema is an Encode error", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(serializer.encode(event, { format: "schema-json", compression: "none" }))
        assertFailure(error, "Encode", "schema-json")
      }))
  })

  describe("errors", () => {
    it.effect("v8 refuses a function with a description of the fix", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(serializer.encode({ f: () => 1 }, { format: "v8", compression: "zstd" }))
        assertFailure(error, "Encode", "v8")
        assert.include(error.description, "format: \"json\"")
        assert.include(error.description, "schema")
      }))

    it.effect("auto falls back to v8 and so refuses a symbol", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(serializer.encode(Symbol("s"), { format: "auto", compression: "none" }))
        assertFailure(error, "Encode", "v8")
      }))

    it.effect("json refuses a bigint, a cycle, undefined and a top-level function", () =>
      Effect.gen(function*() {
        const bigint = yield* Effect.flip(serializer.encode({ n: 1n }, { format: "json", compression: "none" }))
        assertFailure(bigint, "Encode", "json")
        assert.include(bigint.description, "BigInt")

        const cyclic: { self?: unknown } = {}
        cyclic.self = cyclic
        const cycle = yield* Effect.flip(serializer.encode(cyclic, { format: "json", compression: "none" }))
        assertFailure(cycle, "Encode", "json")

        const nothing = yield* Effect.flip(serializer.encode(undefined, { format: "json", compression: "gzip" }))
        assertFailure(nothing, "Encode", "json")
        assert.include(nothing.description, "nothing to encode")

        const fn = yield* Effect.flip(serializer.encode(() => 1, { format: "json", compression: "none" }))
        assertFailure(fn, "Encode", "json")
        assert.include(fn.description, "nothing to encode")
      }))

    it.effect("bytes refuses anything but a Uint8Array", () =>
      Effect.gen(function*() {
        for (const value of ["abc", [1, 2, 3], new ArrayBuffer(3), null]) {
          const error = yield* Effect.flip(serializer.encode(value, { format: "bytes", compression: "none" }))
          assertFailure(error, "Encode", "bytes")
          assert.include(error.description, "Uint8Array")
        }
      }))

    it.effect("auto refuses an Arrow Table no codec handles, rather than storing it as v8", () =>
      Effect.gen(function*() {
        // stand-ins for apache-arrow's Table: its brand, and (older copies) its class tag with schema and batches
        class Table {
          static readonly [Symbol.toStringTag] = "Table"
          readonly schema = { fields: [] }
          readonly batches = []
        }
        const branded = { [Symbol.for("apache-arrow/Table")]: true, schema: {}, batches: [] }
        for (const table of [new Table(), branded]) {
          const error = yield* Effect.flip(serializer.encode(table, { format: "auto", compression: "none" }))
          assertFailure(error, "UnsupportedFormat", "auto")
          assert.include(error.message, "ArrowCodec.layer")
        }
        // a plain object with the same field names is just an object
        const plain = yield* serializer.encode({ schema: {}, batches: [] }, { format: "auto", compression: "none" })
        assert.strictEqual(plain.format, "v8")
      }))

    it.effect("an unknown format is UnsupportedFormat, pointing at @s3cache/arrow", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(serializer.encode({ a: 1 }, { format: "arrow", compression: "zstd" }))
        assertFailure(error, "UnsupportedFormat", "arrow")
        assert.include(error.message, "@s3cache/arrow")

        const bytes = new Uint8Array([1, 2, 3])
        const read = yield* Effect.flip(serializer.decode(bytes, {
          format: "arrow",
          compression: "none",
          checksum: sha256(bytes),
          codecVersion: Serializer.codecVersion
        }))
        assertFailure(read, "UnsupportedFormat", "arrow")
        assert.include(read.message, "@s3cache/arrow")
      }))

    it.effect("an unknown compression is UnsupportedFormat on write and on read", () =>
      Effect.gen(function*() {
        const write = yield* Effect.flip(
          serializer.encode("x", { format: "v8", compression: "brotli" as Serializer.Compression })
        )
        assertFailure(write, "UnsupportedFormat", "v8")
        assert.include(write.description, "brotli")

        const encoded = yield* serializer.encode("x", { format: "v8", compression: "none" })
        const read = yield* Effect.flip(
          serializer.decode(encoded.bytes, { ...recordOf(encoded), compression: "brotli" })
        )
        assertFailure(read, "UnsupportedFormat", "v8")
        assert.include(read.description, "brotli")
      }))

    it.effect("one flipped bit is a Checksum error", () =>
      Effect.gen(function*() {
        for (const compression of Serializer.compressions) {
          const encoded = yield* serializer.encode(makeRich(), { format: "v8", compression })
          const corrupt = encoded.bytes.slice()
          corrupt[Math.floor(corrupt.length / 2)]! ^= 0b0000_0100
          const error = yield* Effect.flip(serializer.decode(corrupt, recordOf(encoded)))
          assertFailure(error, "Checksum", "v8")
          assert.include(error.description, encoded.checksum.slice(0, 19))
          assert.include(error.description, "miss")
          // the untouched bytes still decode, so the error came from the flipped bit
          yield* serializer.decode(encoded.bytes, recordOf(encoded))
        }
      }))

    it.effect("truncated compressed bytes with a matching checksum are a Compression error", () =>
      Effect.gen(function*() {
        for (const compression of ["zstd", "gzip"] as const) {
          const encoded = yield* serializer.encode(bytesOf(100_000, 3), { format: "bytes", compression })
          const truncated = encoded.bytes.slice(0, Math.floor(encoded.bytes.length / 2))
          const error = yield* Effect.flip(
            serializer.decode(truncated, { ...recordOf(encoded), checksum: sha256(truncated) })
          )
          assertFailure(error, "Compression", "bytes")
          assert.include(error.description, compression)
        }
      }))

    it.effect("bytes that do not decode under their format are a Decode error", () =>
      Effect.gen(function*() {
        const garbage = new TextEncoder().encode("{not json")
        const record = { compression: "none", checksum: sha256(garbage), codecVersion: 1 }
        const json = yield* Effect.flip(serializer.decode(garbage, { ...record, format: "json" }))
        assertFailure(json, "Decode", "json")
        const v8Error = yield* Effect.flip(serializer.decode(garbage, { ...record, format: "v8" }))
        assertFailure(v8Error, "Decode", "v8")
      }))

    it.effect("a record of a newer codec version is a Decode error", () =>
      Effect.gen(function*() {
        const encoded = yield* serializer.encode("x", { format: "v8", compression: "none" })
        const error = yield* Effect.flip(serializer.decode(encoded.bytes, {
          ...recordOf(encoded),
          codecVersion: Serializer.codecVersion + 1
        }))
        assertFailure(error, "Decode", "v8")
        assert.include(error.description, "newer s3cache")
        assert.strictEqual(yield* serializer.decode(encoded.bytes, recordOf(encoded)), "x")
      }))
  })

  describe("extra codecs", () => {
    const encoder = new TextEncoder()
    const decoder = new TextDecoder()
    // stores the text after the prefix, so its bytes show which codec wrote them
    const upper: Serializer.Codec = {
      name: "upper",
      canEncode: (value) => typeof value === "string" && value.startsWith("UP:"),
      encode: (value) => Effect.succeed(encoder.encode(String(value).slice(3).toUpperCase())),
      decode: (bytes) => Effect.succeed("UP:" + decoder.decode(bytes))
    }
    const withUpper = Serializer.make({ codecs: [upper] })

    it.effect("auto picks a codec for the values it accepts", () =>
      Effect.gen(function*() {
        const { decoded, encoded } = yield* roundTrip(withUpper, "UP:hello", { format: "auto", compression: "none" })
        assert.strictEqual(encoded.format, "upper")
        assert.strictEqual(decoder.decode(encoded.bytes), "HELLO")
        assert.strictEqual(decoded, "UP:HELLO")
      }))

    it.effect("auto passes over a codec for the values it refuses", () =>
      Effect.gen(function*() {
        const text = yield* roundTrip(withUpper, "hello", { format: "auto", compression: "zstd" })
        assert.strictEqual(text.encoded.format, "v8")
        assert.strictEqual(text.decoded, "hello")
        const bytes = yield* roundTrip(withUpper, new Uint8Array([9]), { format: "auto", compression: "zstd" })
        assert.strictEqual(bytes.encoded.format, "bytes")
      }))

    it.effect("a codec can be asked for by name", () =>
      Effect.gen(function*() {
        const { decoded, encoded } = yield* roundTrip(withUpper, "UP:abc", { format: "upper", compression: "gzip" })
        assert.strictEqual(encoded.format, "upper")
        assert.strictEqual(decoded, "UP:ABC")
      }))

    it.effect("a serializer without the codec cannot read its records", () =>
      Effect.gen(function*() {
        const encoded = yield* withUpper.encode("UP:abc", { format: "auto", compression: "none" })
        const error = yield* Effect.flip(serializer.decode(encoded.bytes, recordOf(encoded)))
        assertFailure(error, "UnsupportedFormat", "upper")
      }))

    it.effect("codecs named like a core format or an earlier codec are left out", () =>
      Effect.gen(function*() {
        const shadowJson: Serializer.Codec = { ...upper, name: "json", canEncode: () => true }
        const secondUpper: Serializer.Codec = { ...upper, canEncode: () => true, encode: () => Effect.die("unused") }
        const service = Serializer.make({ codecs: [shadowJson, upper, secondUpper] })
        assert.deepStrictEqual(service.codecs, [upper])
        const json = yield* roundTrip(service, { a: 1 }, { format: "json", compression: "none" })
        assert.deepStrictEqual(json.decoded, { a: 1 })
        const auto = yield* roundTrip(service, { a: 1 }, { format: "auto", compression: "none" })
        assert.strictEqual(auto.encoded.format, "v8")
      }))

    it.effect("a throwing canEncode is an Encode error", () =>
      Effect.gen(function*() {
        const broken = Serializer.make({
          codecs: [{
            ...upper,
            canEncode: () => {
              throw new Error("boom")
            }
          }]
        })
        const error = yield* Effect.flip(broken.encode("x", { format: "auto", compression: "none" }))
        assertFailure(error, "Encode", "upper")
        assert.include(error.description, "boom")
      }))
  })

  describe("compression and checksum", () => {
    it.effect("zstd and gzip shrink 1 MB of repetitive data; rawSize is the encoded size", () =>
      Effect.gen(function*() {
        const value = bytesOf(1024 * 1024, 0)
        for (const compression of ["zstd", "gzip"] as const) {
          const { decoded, encoded } = yield* roundTrip(serializer, value, { format: "bytes", compression })
          assert.strictEqual(encoded.rawSize, 1024 * 1024)
          assert.isBelow(encoded.bytes.byteLength, 1024 * 1024 / 50, compression)
          assert.deepStrictEqual(decoded, value)
        }
        const none = yield* serializer.encode(value, { format: "bytes", compression: "none" })
        assert.strictEqual(none.bytes.byteLength, 1024 * 1024)

        const text = "the same sentence, again and again. ".repeat(30_000)
        const v8Encoded = yield* serializer.encode(text, { format: "v8", compression: "zstd" })
        assert.strictEqual(v8Encoded.rawSize, v8.serialize(text).byteLength)
        assert.isBelow(v8Encoded.bytes.byteLength, v8Encoded.rawSize / 50)
      }))

    it.effect("zstdLevel is honoured", () =>
      Effect.gen(function*() {
        const words = ["cache", "read", "through", "entry", "bucket", "redis", "value", "miss", "hit"]
        // pseudo-random but fixed, so that level 19 finds structure level 1 misses and the sizes never tie
        let seed = 1
        const text = Array.from({ length: 50_000 }, () => {
          seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648
          return words[seed % words.length]
        }).join(" ")
        const fast = yield* Serializer.make({ zstdLevel: 1 }).encode(text, { format: "json", compression: "zstd" })
        const strong = yield* Serializer.make({ zstdLevel: 19 }).encode(text, { format: "json", compression: "zstd" })
        assert.strictEqual(fast.rawSize, strong.rawSize)
        assert.isBelow(strong.bytes.byteLength, fast.bytes.byteLength)
        assert.strictEqual(yield* serializer.decode(strong.bytes, recordOf(strong)), text)
      }))

    it.effect("the checksum is sha256 of the stored bytes", () =>
      Effect.gen(function*() {
        for (const compression of Serializer.compressions) {
          const encoded = yield* serializer.encode({ a: [1, 2, 3] }, { format: "json", compression })
          assert.match(encoded.checksum, /^sha256:[0-9a-f]{64}$/)
          assert.strictEqual(encoded.checksum, sha256(encoded.bytes))
          assert.strictEqual(encoded.codecVersion, Serializer.codecVersion)
          assert.strictEqual(encoded.codecVersion, 1)
        }
      }))
  })
})
