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

// v8 gives back the same kind of object, not just equal fields: compared constructor by constructor
const assertSameData = (actual: unknown, expected: unknown, path = "value"): void => {
  if (typeof expected !== "object" || expected === null) {
    assert.deepStrictEqual(actual, expected, path)
    return
  }
  assert.isTrue(typeof actual === "object" && actual !== null, path)
  // the one prototype v8 does not keep, harmlessly: a null-prototype object comes back an ordinary object
  const prototype: unknown = Object.getPrototypeOf(expected) ?? Object.prototype
  assert.strictEqual(Object.getPrototypeOf(actual), prototype, path)
  if (expected instanceof Error) {
    const error = actual as Error
    assert.strictEqual(error.message, expected.message, path)
    assertSameData(error.cause, expected.cause, `${path}.cause`)
  } else if (expected instanceof Map) {
    assert.deepStrictEqual(actual, expected, path)
  } else if (expected instanceof DataView || expected instanceof ArrayBuffer) {
    assert.strictEqual((actual as ArrayBuffer).byteLength, expected.byteLength, path)
  } else if (Array.isArray(expected)) {
    const array = actual as ReadonlyArray<unknown>
    assert.strictEqual(array.length, expected.length, path)
    expected.forEach((item, i) => assertSameData(array[i], item, `${path}[${i}]`))
  } else if (Object.getPrototypeOf(expected) === Object.prototype || Object.getPrototypeOf(expected) === null) {
    assert.deepStrictEqual(Object.keys(actual as object), Object.keys(expected), path)
    for (const key of Object.keys(expected)) {
      assertSameData(
        (actual as Record<string, unknown>)[key],
        (expected as Record<string, unknown>)[key],
        `${path}.${key}`
      )
    }
  } else {
    assert.deepStrictEqual(actual, expected, path)
  }
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

    it.effect("a record of a newer codec version is UnsupportedFormat: not damage, another process reads it", () =>
      Effect.gen(function*() {
        const encoded = yield* serializer.encode("x", { format: "v8", compression: "none" })
        const error = yield* Effect.flip(serializer.decode(encoded.bytes, {
          ...recordOf(encoded),
          codecVersion: Serializer.codecVersion + 1
        }))
        assertFailure(error, "UnsupportedFormat", "v8")
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

    it.live("a payload hashed in slices (over 4 MiB) has the same checksum, and a flipped bit in any slice is found", () =>
      Effect.gen(function*() {
        const payload = new Uint8Array(9 * 1024 * 1024 + 17)
        for (let i = 0; i < payload.length; i += 4096) payload[i] = i % 251
        const encoded = yield* serializer.encode(payload, { format: "bytes", compression: "none" })
        assert.strictEqual(encoded.checksum, sha256(encoded.bytes))
        // the event loop turns between slices: a timer due meanwhile runs before the hash is done
        let turned = false
        setTimeout(() => (turned = true), 0)
        assert.deepStrictEqual(yield* serializer.decode(encoded.bytes, recordOf(encoded)), payload)
        assert.isTrue(turned)
        for (const at of [0, 4 * 1024 * 1024 + 3, encoded.bytes.length - 1]) {
          const corrupt = encoded.bytes.slice()
          corrupt[at]! ^= 1
          assertFailure(yield* Effect.flip(serializer.decode(corrupt, recordOf(encoded))), "Checksum", "bytes")
        }
      }))
  })

  describe("snapshot, seal, unseal, restore", () => {
    const Event = Schema.Struct({ at: Schema.Date, n: Schema.BigInt })
    const cases: ReadonlyArray<{ readonly value: unknown; readonly options: Serializer.SnapshotOptions }> = [
      { value: makeRich(), options: { format: "v8" } },
      { value: { a: [1, "two", null], b: { c: true } }, options: { format: "json" } },
      { value: bytesOf(5_000, 1), options: { format: "bytes" } },
      { value: { at: new Date("2020-01-02T03:04:05.006Z"), n: 10n ** 20n }, options: { format: "auto", schema: Event } }
    ]

    for (const compression of Serializer.compressions) {
      it.effect(`round-trip every core format with ${compression}`, () =>
        Effect.gen(function*() {
          for (const { options, value } of cases) {
            const snapshot = yield* serializer.snapshot(value, options)
            const encoded = yield* serializer.seal(snapshot, compression)
            assert.strictEqual(encoded.format, snapshot.format)
            assert.strictEqual(encoded.compression, compression)
            assert.strictEqual(encoded.rawSize, snapshot.bytes.byteLength)
            assert.strictEqual(encoded.checksum, sha256(encoded.bytes))
            // the same bytes as the one-step encode
            assert.deepStrictEqual(encoded, yield* serializer.encode(value, { ...options, compression }))

            const unsealed = yield* serializer.unseal(encoded.bytes, { ...recordOf(encoded), schema: options.schema })
            assert.strictEqual(unsealed.format, snapshot.format)
            assert.deepStrictEqual(unsealed.bytes, snapshot.bytes)
            const restored = yield* serializer.restore(unsealed, { schema: options.schema })
            assert.deepStrictEqual(restored, value, snapshot.format)
          }
        }))
    }

    it.effect("snapshot resolves auto and never stores it", () =>
      Effect.gen(function*() {
        assert.strictEqual((yield* serializer.snapshot({ a: 1 }, { format: "auto" })).format, "v8")
        assert.strictEqual((yield* serializer.snapshot(new Uint8Array(1), { format: "auto" })).format, "bytes")
      }))

    it.effect("a snapshot of bytes is a copy: the caller may reuse its array", () =>
      Effect.gen(function*() {
        for (const format of ["bytes", "auto"] as const) {
          for (const value of [bytesOf(64, 5), Buffer.from(bytesOf(64, 5))]) {
            const snapshot = yield* serializer.snapshot(value, { format })
            assert.strictEqual(snapshot.format, "bytes")
            assert.notStrictEqual(snapshot.bytes.buffer, value.buffer)
            // a plain Uint8Array of exactly the payload, whatever the caller passed
            assert.strictEqual(snapshot.bytes.constructor, Uint8Array)
            assert.strictEqual(snapshot.bytes.buffer.byteLength, 64)
            value.fill(0)
            assert.deepStrictEqual(snapshot.bytes, bytesOf(64, 5))
            const encoded = yield* serializer.seal(snapshot, "none")
            assert.deepStrictEqual(yield* serializer.decode(encoded.bytes, recordOf(encoded)), bytesOf(64, 5))
          }
        }
      }))

    it.effect("a snapshot of v8 or json is taken when it is made: later mutations do not reach it", () =>
      Effect.gen(function*() {
        for (const format of ["v8", "json", "auto"] as const) {
          const value = { list: [1, 2], nested: { name: "ada" } }
          const snapshot = yield* serializer.snapshot(value, { format })
          value.list.push(3)
          value.nested.name = "grace"
          assert.deepStrictEqual(yield* serializer.restore(snapshot, {}), { list: [1, 2], nested: { name: "ada" } })
        }
      }))

    it.effect("restore gives every caller a value of its own", () =>
      Effect.gen(function*() {
        const bytes = yield* serializer.snapshot(bytesOf(32, 9), { format: "bytes" })
        const first = (yield* serializer.restore(bytes, {})) as Uint8Array
        const second = (yield* serializer.restore(bytes, {})) as Uint8Array
        assert.notStrictEqual(first, second)
        assert.notStrictEqual(first.buffer, second.buffer)
        assert.notStrictEqual(first.buffer, bytes.bytes.buffer)
        first.fill(0)
        assert.deepStrictEqual(second, bytesOf(32, 9))
        assert.deepStrictEqual(bytes.bytes, bytesOf(32, 9))

        const object = yield* serializer.snapshot({ list: [1, 2] }, { format: "v8" })
        const a = (yield* serializer.restore(object, {})) as { list: Array<number> }
        const b = (yield* serializer.restore(object, {})) as { list: Array<number> }
        assert.notStrictEqual(a, b)
        assert.notStrictEqual(a.list, b.list)
        a.list.push(3)
        assert.deepStrictEqual(b, { list: [1, 2] })
      }))

    it.effect("decode, the hit path, hands over the decompressed bytes without a copy", () =>
      Effect.gen(function*() {
        const encoded = yield* serializer.encode(bytesOf(32, 2), { format: "bytes", compression: "none" })
        const decoded = (yield* serializer.decode(encoded.bytes, recordOf(encoded))) as Uint8Array
        assert.strictEqual(decoded.buffer, encoded.bytes.buffer)
      }))

    it.effect("restore applies the schema rules of decode", () =>
      Effect.gen(function*() {
        const plain = yield* serializer.snapshot({ at: new Date(0), n: 1n }, { format: "v8" })
        const withSchema = yield* Effect.flip(serializer.restore(plain, { schema: Event }))
        assertFailure(withSchema, "Decode", "v8")
        assert.include(withSchema.description, "stored without a schema")

        const schemaJson = yield* serializer.snapshot({ at: new Date(0), n: 1n }, { format: "auto", schema: Event })
        const withoutSchema = yield* Effect.flip(serializer.restore(schemaJson, {}))
        assertFailure(withoutSchema, "Decode", "schema-json")

        const unknown = yield* Effect.flip(serializer.restore({ format: "arrow", bytes: new Uint8Array(1) }, {}))
        assertFailure(unknown, "UnsupportedFormat", "arrow")
      }))

    it.effect("seal refuses an unknown compression", () =>
      Effect.gen(function*() {
        const snapshot = yield* serializer.snapshot("x", { format: "v8" })
        const error = yield* Effect.flip(serializer.seal(snapshot, "brotli" as Serializer.Compression))
        assertFailure(error, "UnsupportedFormat", "v8")
        assert.include(error.description, "brotli")
      }))

    it.effect("unseal verifies the checksum before it decompresses", () =>
      Effect.gen(function*() {
        for (const compression of Serializer.compressions) {
          const encoded = yield* serializer.encode(makeRich(), { format: "v8", compression })
          // truncated and flipped bytes would fail to decompress: a Checksum error shows they never got that far
          const truncated = encoded.bytes.slice(0, Math.floor(encoded.bytes.length / 2))
          const corrupt = encoded.bytes.slice()
          corrupt[Math.floor(corrupt.length / 2)]! ^= 0b0000_0100
          for (const bytes of [truncated, corrupt]) {
            const error = yield* Effect.flip(serializer.unseal(bytes, recordOf(encoded)))
            assertFailure(error, "Checksum", "v8")
            assert.include(error.description, encoded.checksum.slice(0, 19))
          }
          const unsealed = yield* serializer.unseal(encoded.bytes, recordOf(encoded))
          assert.strictEqual(unsealed.bytes.byteLength, encoded.rawSize)
        }
      }))

    it.effect("unseal refuses what the record rules out before it reads the payload", () =>
      Effect.gen(function*() {
        // the checksum does not match either: these errors come first, without hashing or inflating anything
        const bytes = new Uint8Array([1, 2, 3])
        const record = { format: "v8", compression: "zstd", checksum: "sha256:0", codecVersion: 1 }
        const format = yield* Effect.flip(serializer.unseal(bytes, { ...record, format: "arrow" }))
        assertFailure(format, "UnsupportedFormat", "arrow")
        const compression = yield* Effect.flip(serializer.unseal(bytes, { ...record, compression: "brotli" }))
        assertFailure(compression, "UnsupportedFormat", "v8")
        const version = yield* Effect.flip(serializer.unseal(bytes, { ...record, codecVersion: 2 }))
        assertFailure(version, "UnsupportedFormat", "v8")
        assert.include(version.description, "newer s3cache")
        const schema = yield* Effect.flip(serializer.unseal(bytes, { ...record, schema: Event }))
        assertFailure(schema, "Decode", "v8")
        assert.include(schema.description, "stored without a schema")
      }))
  })

  describe("v8 stores plain data only", () => {
    class Point {
      constructor(readonly x: number, readonly y: number) {}
      norm(): number {
        return Math.hypot(this.x, this.y)
      }
    }
    class MyArray<A> extends Array<A> {}
    class MyError extends Error {}
    class Bytes extends Uint8Array {}
    const point = new Point(3, 4)

    const refusals: ReadonlyArray<
      { readonly label: string; readonly value: unknown; readonly path: string; readonly name: string }
    > = [
      { label: "at the top", value: point, path: "v8 cannot store value (", name: "Point" },
      {
        label: "nested in objects and arrays",
        value: { rows: [0, 1, 2, { id: 3, owner: point }].map((row) => typeof row === "number" ? { id: row } : row) },
        path: "value.rows[3].owner",
        name: "Point"
      },
      { label: "in an array", value: [1, "two", point], path: "value[2]", name: "Point" },
      { label: "under a key that is no identifier", value: { "a b": point }, path: "value[\"a b\"]", name: "Point" },
      {
        label: "as a Map value",
        value: { byId: new Map([["p1", point]]) },
        path: "value.byId.get(\"p1\")",
        name: "Point"
      },
      {
        label: "as a Map value under an object key",
        value: new Map([[{ id: 1 }, point]]),
        path: "value <Map value #0>",
        name: "Point"
      },
      { label: "as a Map key", value: new Map([[point, 1]]), path: "value <Map key #0>", name: "Point" },
      { label: "as a Set member", value: new Set([1, point]), path: "value <Set member #1>", name: "Point" },
      {
        label: "as the cause of an error",
        value: new Error("x", { cause: point }),
        path: "value.cause",
        name: "Point"
      },
      { label: "an Array subclass", value: { list: MyArray.from([1, 2]) }, path: "value.list", name: "MyArray" },
      { label: "an Error subclass", value: { error: new MyError("x") }, path: "value.error", name: "MyError" },
      { label: "a Uint8Array subclass", value: { data: new Bytes(4) }, path: "value.data", name: "Bytes" }
    ]

    for (const { label, name, path, value } of refusals) {
      it.effect(`refuses a class instance ${label}`, () =>
        Effect.gen(function*() {
          for (const format of ["v8", "auto"] as const) {
            const error = yield* Effect.flip(serializer.encode(value, { format, compression: "none" }))
            assertFailure(error, "Encode", "v8")
            assert.include(error.description, path)
            assert.include(error.description, `an instance of ${name}`)
            assert.include(error.description, "without its class")
            assert.include(error.description, "`schema`")
            const snapshot = yield* Effect.flip(serializer.snapshot(value, { format }))
            assert.strictEqual(snapshot.message, error.message)
          }
        }))
    }

    it.effect("says what the value would have come back as", () =>
      Effect.gen(function*() {
        const expected: ReadonlyArray<readonly [unknown, string]> = [
          [point, "a plain object"],
          [MyArray.from([1]), "an Array"],
          [new MyError("x"), "an Error"],
          [new Bytes(1), "a Uint8Array"],
          [Object.create({ greet: () => "hi" }), "an object whose prototype is not Object.prototype"]
        ]
        for (const [value, text] of expected) {
          const error = yield* Effect.flip(serializer.encode(value, { format: "v8", compression: "none" }))
          assertFailure(error, "Encode", "v8")
          assert.include(error.description, text)
        }
      }))

    it.effect("the refusal names the path in a deep value, shortened", () =>
      Effect.gen(function*() {
        // deeper than v8 itself can serialize: the walk is iterative, so it finds the instance without a RangeError
        let deep: unknown = { leaf: point }
        for (let i = 0; i < 20_000; i++) deep = { next: deep }
        const error = yield* Effect.flip(serializer.encode(deep, { format: "v8", compression: "none" }))
        assertFailure(error, "Encode", "v8")
        assert.include(error.description, "value.next.next")
        assert.include(error.description, "more)…")
        assert.include(error.description, ".next.leaf (an instance of Point)")
        assert.isBelow(error.description.length, 1_000)
      }))

    it.effect("the schema the refusal points at round-trips the class", () =>
      Effect.gen(function*() {
        class PointS extends Schema.Class<PointS>("PointS")({ x: Schema.Number, y: Schema.Number }) {
          norm(): number {
            return Math.hypot(this.x, this.y)
          }
        }
        const { decoded } = yield* roundTrip(serializer, { at: new PointS({ x: 3, y: 4 }) }, {
          format: "auto",
          compression: "zstd",
          schema: Schema.Struct({ at: PointS })
        })
        const value = decoded as { readonly at: PointS }
        assert.instanceOf(value.at, PointS)
        assert.strictEqual(value.at.norm(), 5)
      }))

    it.effect("what v8 cannot clone at all keeps v8's own refusal", () =>
      Effect.gen(function*() {
        for (
          const value of [
            { p: Promise.resolve(1) },
            { w: new WeakMap() },
            Object.assign(new Point(1, 2), { f: () => 1 })
          ]
        ) {
          const error = yield* Effect.flip(serializer.encode(value, { format: "v8", compression: "none" }))
          assertFailure(error, "Encode", "v8")
          assert.include(error.description, "could not be cloned")
          assert.include(error.description, "cannot be cloned")
        }
      }))

    it.effect("an Arrow Table under auto keeps its own refusal", () =>
      Effect.gen(function*() {
        class Table {
          static readonly [Symbol.toStringTag] = "Table"
          readonly schema = { fields: [] }
          readonly batches = []
        }
        const auto = yield* Effect.flip(serializer.encode(new Table(), { format: "auto", compression: "none" }))
        assertFailure(auto, "UnsupportedFormat", "auto")
        assert.include(auto.message, "ArrowCodec.layer")
        const v8Error = yield* Effect.flip(serializer.encode(new Table(), { format: "v8", compression: "none" }))
        assertFailure(v8Error, "Encode", "v8")
        assert.include(v8Error.description, "an instance of Table")
      }))

    const typedArrays = [
      new Uint8Array([1, 255]),
      new Int8Array([-1, 1]),
      new Uint8ClampedArray([0, 255]),
      new Int16Array([-300, 300]),
      new Uint16Array([60_000]),
      new Int32Array([-70_000]),
      new Uint32Array([4_000_000_000]),
      new Float32Array([1.5]),
      new Float64Array([Math.PI]),
      new BigInt64Array([-(2n ** 63n)]),
      new BigUint64Array([2n ** 64n - 1n])
    ]
    const accepted: ReadonlyArray<readonly [string, unknown]> = [
      ["a plain object", { a: 1, b: "two", c: [true, null, undefined] }],
      ["a null-prototype object", Object.assign(Object.create(null) as object, { a: 1, nested: { b: 2 } })],
      ["nested arrays", [[1, [2, [3, []]]], [], [{ a: [4] }]]],
      ["a Date", new Date("2024-02-29T12:34:56.789Z")],
      ["a RegExp", /a+b/giu],
      ["a Map", new Map<unknown, unknown>([["a", { b: 1 }], [{ k: 1 }, [2]]])],
      ["a Set", new Set<unknown>([1, "two", { three: 3 }])],
      ["a bigint", 2n ** 100n],
      ["boxed primitives", [Object(1), Object("s"), Object(true), Object(1n)]],
      ["typed arrays", typedArrays],
      ["an ArrayBuffer and a DataView", [new ArrayBuffer(4), new DataView(new ArrayBuffer(2))]],
      ["a Buffer", Buffer.from("hello")],
      ["built-in errors", [new TypeError("x"), new RangeError("y", { cause: { code: 1 } })]],
      ["a value 1,000 levels deep", Array.from({ length: 1_000 }).reduce<unknown>((next) => ({ next }), null)]
    ]

    for (const [label, value] of accepted) {
      it.effect(`accepts ${label}`, () =>
        Effect.gen(function*() {
          for (const format of ["v8", "auto"] as const) {
            const { decoded, encoded } = yield* roundTrip(serializer, value, { format, compression: "zstd" })
            if (value instanceof Uint8Array && format === "auto") {
              assert.strictEqual(encoded.format, "bytes")
              continue
            }
            assert.strictEqual(encoded.format, "v8")
            assertSameData(decoded, value)
          }
        }))
    }

    it.effect("accepts a cycle and a shared object", () =>
      Effect.gen(function*() {
        const shared = { n: 1 }
        const cyclic: { self?: unknown; a: unknown; b: unknown; list: Array<unknown> } = {
          a: shared,
          b: shared,
          list: []
        }
        cyclic.self = cyclic
        cyclic.list.push(cyclic, shared, cyclic.list)
        const { decoded } = yield* roundTrip(serializer, cyclic, { format: "v8", compression: "none" })
        const value = decoded as typeof cyclic
        assert.strictEqual(value.self, value)
        assert.strictEqual(value.a, value.b)
        assert.strictEqual(value.list[0], value)
        assert.strictEqual(value.list[1], value.a)
        assert.strictEqual(value.list[2], value.list)
      }))

    it.effect("the walk itself survives 20,000 levels; v8 then refuses the depth with its own error", () =>
      Effect.gen(function*() {
        let deep: unknown = null
        for (let i = 0; i < 20_000; i++) deep = { next: deep }
        const error = yield* Effect.flip(serializer.encode(deep, { format: "v8", compression: "none" }))
        assertFailure(error, "Encode", "v8")
        assert.include(error.description, "Maximum call stack size exceeded")
        assert.include(error.description, "v8 (structured clone) cannot encode this value")
      }))
  })

  describe("json", () => {
    it.effect("is lossy as documented: a Date comes back as its ISO string, a Map as {}", () =>
      Effect.gen(function*() {
        const at = new Date("2024-02-29T12:34:56.789Z")
        const { decoded } = yield* roundTrip(serializer, { at, map: new Map([["a", 1]]), gone: undefined }, {
          format: "json",
          compression: "none"
        })
        assert.deepStrictEqual(decoded, { at: "2024-02-29T12:34:56.789Z", map: {} })
      }))
  })
})
