/**
 * The codec and the serializer it extends, without a cache: format selection, the stored bytes, refusal of
 * anything that is not one complete Arrow IPC stream, and tables of a second copy of apache-arrow.
 */
import { assert, describe, it } from "@effect/vitest"
import { SerializationError } from "@s3cache/core/CacheError"
import * as Serializer from "@s3cache/core/Serializer"
import * as Arrow from "apache-arrow"
import * as Effect from "effect/Effect"
import * as Zlib from "node:zlib"
import { ArrowCodec } from "../src/index.js"
import { catalogue, multiBatchTable } from "./utils/arrowTables.js"
import { importSecondCopy } from "./utils/secondArrow.js"
import { assertTablesEqual } from "./utils/tableEquality.js"

const withArrow = Serializer.make({ codecs: [ArrowCodec.codec] })
const coreOnly = Serializer.make({})

const roundTrip = (serializer: Serializer.Service, value: unknown, options: Serializer.EncodeOptions) =>
  Effect.gen(function*() {
    const encoded = yield* serializer.encode(value, options)
    const decoded = yield* serializer.decode(encoded.bytes, encoded)
    return { encoded, decoded }
  })

const sampleTable = () => catalogue().at(-1)!.table

const ipcOf = (table: Arrow.Table) => Arrow.tableToIPC(table, "stream")

describe("ArrowCodec", () => {
  it("isTable: tables yes; records, bytes, batches, schemas and look-alike plain objects no", () => {
    const table = sampleTable()
    assert.isTrue(ArrowCodec.isTable(table))
    assert.isTrue(ArrowCodec.isTable(new Arrow.Table()))
    const others = [
      null,
      undefined,
      42,
      "table",
      { rows: [1, 2] },
      new Uint8Array(4),
      [table],
      table.batches[0],
      table.schema,
      table.getChildAt(0),
      { schema: { fields: [] }, batches: [] } // a plain object shaped like a table: not a Table
    ]
    others.forEach((other, i) => assert.isFalse(ArrowCodec.isTable(other), `value ${i}`))
  })

  it.effect("auto picks arrow for a Table and the core formats for everything else", () =>
    Effect.gen(function*() {
      const table = sampleTable()
      const { decoded, encoded } = yield* roundTrip(withArrow, table, { format: "auto", compression: "zstd" })
      assert.strictEqual(encoded.format, "arrow")
      assert.strictEqual(encoded.rawSize, ipcOf(table).byteLength)
      assertTablesEqual(decoded, table)
      const object = yield* withArrow.encode({ schema: { fields: [] }, batches: [] }, {
        format: "auto",
        compression: "zstd"
      })
      assert.strictEqual(object.format, "v8")
      const bytes = yield* withArrow.encode(new Uint8Array([1, 2, 3]), { format: "auto", compression: "zstd" })
      assert.strictEqual(bytes.format, "bytes")
      const array = yield* withArrow.encode([1, 2, 3], { format: "auto", compression: "zstd" })
      assert.strictEqual(array.format, "v8")
      // the same table without the codec: auto does not know it, and v8 would read back a plain object
      assert.strictEqual((yield* coreOnly.encode({ a: 1 }, { format: "auto", compression: "none" })).format, "v8")
    }))

  it.effect("format \"arrow\" without the codec is UnsupportedFormat, and the message names the layer", () =>
    Effect.gen(function*() {
      const table = sampleTable()
      const error = yield* Effect.flip(coreOnly.encode(table, { format: "arrow", compression: "zstd" }))
      assert.instanceOf(error, SerializationError)
      assert.strictEqual(error.reason, "UnsupportedFormat")
      assert.include(error.message, "@s3cache/arrow")
      // and an entry written as arrow is refused on read, before its bytes are touched
      const encoded = yield* withArrow.encode(table, { format: "arrow", compression: "zstd" })
      const readError = yield* Effect.flip(coreOnly.decode(encoded.bytes, encoded))
      assert.strictEqual(readError.reason, "UnsupportedFormat")
      assert.include(readError.message, "@s3cache/arrow")
    }))

  it.effect("format \"arrow\" for a value that is not a Table is an Encode error that says what to pass", () =>
    Effect.gen(function*() {
      for (const value of [{ a: 1 }, [1, 2], new Uint8Array(2), "text"]) {
        const error = yield* Effect.flip(withArrow.encode(value, { format: "arrow", compression: "zstd" }))
        assert.strictEqual(error.reason, "Encode")
        assert.strictEqual(error.format, "arrow")
        assert.include(error.message, "pass a Table")
      }
    }))

  it.effect("the stored bytes are zstd or gzip around a plain Arrow IPC stream, with no Arrow-level compression", () =>
    Effect.gen(function*() {
      const table = multiBatchTable()
      const ipc = ipcOf(table)
      const zstd = yield* withArrow.encode(table, { format: "auto", compression: "zstd" })
      // a zstd frame (magic 0xFD2FB528, little-endian), what `zstandard` and the `zstd` CLI read
      assert.deepStrictEqual(Array.from(zstd.bytes.subarray(0, 4)), [0x28, 0xb5, 0x2f, 0xfd])
      const gzip = yield* withArrow.encode(table, { format: "auto", compression: "gzip" })
      const inflated = new Uint8Array(Zlib.gunzipSync(gzip.bytes))
      assert.deepStrictEqual(inflated, ipc, "gunzip gives the IPC stream, byte for byte")
      const none = yield* withArrow.encode(table, { format: "auto", compression: "none" })
      assert.deepStrictEqual(none.bytes, ipc)
      // (a byte flipped inside a message can still parse, as another valid table: that is the checksum's job, tested
      // through the cache)
      // every message of the stream: a schema, then batches whose bodies carry no compression codec
      const reader = new Arrow.MessageReader(ipc)
      const kinds: Array<string> = []
      for (let message = reader.readMessage(); message !== null; message = reader.readMessage()) {
        kinds.push(Arrow.MessageHeader[message.headerType]!)
        if (message.isRecordBatch() || message.isDictionaryBatch()) {
          // a dictionary batch wraps a record batch; the record batch names the body's compression, if any
          const header = message.header() as any
          const batch: { readonly compression?: unknown } = message.isDictionaryBatch() ? header.data : header
          assert.isTrue("compression" in batch, "apache-arrow exposes the body compression of the message")
          assert.isTrue(batch.compression == null, "no Arrow-level body compression")
        }
        reader.readMessageBody(message.bodyLength)
      }
      assert.strictEqual(kinds[0], "Schema")
      assert.strictEqual(kinds.filter((kind) => kind === "RecordBatch").length, 3)
    }))

  it.effect("decoded columns are views into the decompressed bytes, not copies", () =>
    Effect.gen(function*() {
      const table = sampleTable()
      const ipc = ipcOf(table)
      const decoded = (yield* ArrowCodec.codec.decode(ipc)) as Arrow.Table
      const values = decoded.getChild("i64")!.data[0]!.values
      assert.strictEqual(values.buffer, ipc.buffer)
      assertTablesEqual(decoded, table)
    }))

  it.effect("bytes at an odd offset (a slice of a pooled buffer) are realigned, not refused", () =>
    Effect.gen(function*() {
      const table = sampleTable()
      const ipc = ipcOf(table)
      const holder = new Uint8Array(ipc.byteLength + 3)
      holder.set(ipc, 3)
      assertTablesEqual(yield* ArrowCodec.codec.decode(holder.subarray(3)), table)
    }))

  it.effect("anything but exactly one complete IPC stream is a Decode error, never a table", () =>
    Effect.gen(function*() {
      const ipc = ipcOf(multiBatchTable())
      const flipped = (at: number) => {
        const copy = ipc.slice()
        copy[at] = copy[at]! ^ 0xff
        return copy
      }
      const concat = (...parts: Array<Uint8Array>) => {
        const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
        let offset = 0
        for (const part of parts) {
          out.set(part, offset)
          offset += part.byteLength
        }
        return out
      }
      const cases: Array<[string, Uint8Array]> = [
        ["empty", new Uint8Array(0)],
        ["zeros (a legacy end-of-stream marker: apache-arrow reads an empty table)", new Uint8Array(64)],
        ["text", new TextEncoder().encode("this is not an arrow stream at all, sorry")],
        ["random bytes", Uint8Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24)],
        ["without its end-of-stream marker (apache-arrow reads every row)", ipc.subarray(0, ipc.byteLength - 8)],
        ["cut after the first batch (apache-arrow reads a shorter table)", cutAfterMessages(ipc, 3)],
        ["cut in the middle of a body", ipc.subarray(0, Math.floor(ipc.byteLength / 2))],
        ["with bytes after the end-of-stream marker", concat(ipc, new Uint8Array(8).fill(7))],
        ["two streams back to back", concat(ipc, ipc)],
        ["a metadata length flipped", flipped(4)],
        ["a file-format payload (ARROW1 magic)", Arrow.tableToIPC(multiBatchTable(), "file")]
      ]
      for (const [label, bytes] of cases) {
        const exit = yield* Effect.exit(ArrowCodec.codec.decode(bytes))
        assert.isTrue(exit._tag === "Failure", label)
        const error = yield* Effect.flip(ArrowCodec.codec.decode(bytes))
        assert.instanceOf(error, SerializationError, label)
        assert.strictEqual(error.reason, "Decode", label)
        assert.strictEqual(error.format, "arrow", label)
        assert.include(error.message, "treated as a miss", label)
      }
    }))

  it.scoped("tables of a second copy of apache-arrow are recognized, stored and read back, every type", () =>
    Effect.gen(function*() {
      const other = yield* importSecondCopy
      assert.notStrictEqual(other.Table, Arrow.Table, "a distinct copy")
      const inferred = other.tableFromArrays({ id: BigInt64Array.from([1n, 2n, 3n]), name: ["a", "b", "c"] })
      assert.isTrue(ArrowCodec.isTable(inferred))
      const expected = Arrow.tableFromIPC(other.tableToIPC(inferred, "stream"))
      const { decoded, encoded } = yield* roundTrip(withArrow, inferred, { format: "auto", compression: "zstd" })
      assert.strictEqual(encoded.format, "arrow")
      assertTablesEqual(decoded, expected)
      // every type of the catalogue, as the other copy's classes (and a sliced one: offsets that do not start at 0)
      for (const { name, table } of catalogue()) {
        const foreign = other.tableFromIPC(ipcOf(table))
        assert.isFalse(foreign.schema.fields.some((field) => field.type instanceof Arrow.DataType), name)
        const result = yield* roundTrip(withArrow, foreign, { format: "auto", compression: "zstd" })
        assertTablesEqual(result.decoded, table)
        const sliced = yield* roundTrip(withArrow, foreign.slice(2, 7), { format: "arrow", compression: "none" })
        assertTablesEqual(sliced.decoded, table.slice(2, 7))
      }
    }))

  it.scoped("canary: apache-arrow's own writer turns a table of another copy into an unreadable stream", () =>
    Effect.gen(function*() {
      // why the codec rebuilds foreign tables (src/internal/adopt.ts); when this fails, apache-arrow fixed it
      const other = yield* importSecondCopy
      const foreign = other.tableFromArrays({ id: Int32Array.from([1, 2, 3]) })
      const written = Arrow.tableToIPC(foreign, "stream")
      assert.notDeepEqual(written, other.tableToIPC(foreign, "stream"))
      const error = yield* Effect.flip(ArrowCodec.codec.decode(written))
      assert.strictEqual(error.reason, "Decode")
    }))

  it.effect("a table of another copy whose types this copy cannot rebuild is refused with advice to dedupe", () =>
    Effect.gen(function*() {
      // what a newer apache-arrow's table with a type unknown here looks like: a class tagged "Table", no brand
      class Table {
        static readonly [Symbol.toStringTag] = "Table"
        readonly schema = { fields: [{ name: "x", nullable: true, metadata: new Map(), type: { typeId: 99 } }] }
        readonly batches = []
      }
      const future = new Table()
      assert.isTrue(ArrowCodec.isTable(future))
      const error = yield* Effect.flip(withArrow.encode(future, { format: "auto", compression: "zstd" }))
      assert.strictEqual(error.reason, "Encode")
      assert.include(error.message, "another copy of apache-arrow")
      assert.include(error.message, "dedupe")
    }))

  it.effect("layer and layerWith provide a serializer with Arrow first, then the other codecs", () =>
    Effect.gen(function*() {
      const other: Serializer.Codec = {
        name: "everything",
        canEncode: () => true,
        encode: () => Effect.succeed(new Uint8Array(0)),
        decode: () => Effect.succeed(null)
      }
      const names = Effect.map(Serializer.Serializer, (serializer) => serializer.codecs.map((codec) => codec.name))
      assert.deepStrictEqual(yield* names, [], "the default serializer has core codecs only")
      assert.deepStrictEqual(yield* Effect.provide(names, ArrowCodec.layer), ["arrow"])
      assert.deepStrictEqual(
        yield* Effect.provide(names, ArrowCodec.layerWith({ codecs: [other], zstdLevel: 9 })),
        ["arrow", "everything"]
      )
      // Arrow first: a catch-all codec after it does not take tables away from it
      const serializer = yield* Effect.provide(Serializer.Serializer, ArrowCodec.layerWith({ codecs: [other] }))
      const encoded = yield* serializer.encode(sampleTable(), { format: "auto", compression: "none" })
      assert.strictEqual(encoded.format, "arrow")
      assert.strictEqual(
        (yield* serializer.encode({ a: 1 }, { format: "auto", compression: "none" })).format,
        "everything"
      )
      assert.strictEqual(ArrowCodec.codec.name, ArrowCodec.format)
    }))
})

/** The first `n` messages of a stream (schema, dictionaries, batches), cut at a message boundary. */
function cutAfterMessages(ipc: Uint8Array, n: number): Uint8Array {
  const view = new DataView(ipc.buffer, ipc.byteOffset, ipc.byteLength)
  let offset = 0
  for (let i = 0; i < n; i++) {
    const metadataLength = view.getInt32(offset + 4, true)
    const message = Arrow.Message.decode(ipc.subarray(offset + 8, offset + 8 + metadataLength))
    offset += 8 + metadataLength + message.bodyLength
  }
  return ipc.subarray(0, offset)
}
