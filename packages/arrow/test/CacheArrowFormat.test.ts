/**
 * What the cache stores for a table and what it does with a payload it cannot trust: the record's format under
 * `auto` and `format: "arrow"`, the fail-open path without the Arrow layer, and corrupted payloads (always a miss,
 * never a wrong value). The stores are the memory twins, shared with the test so it can read and damage them.
 */
import { assert, describe, it } from "@effect/vitest"
import type * as MetadataStore from "@s3cache/core/MetadataStore"
import * as Serializer from "@s3cache/core/Serializer"
import { counted, type Harness, makeHarness } from "@s3cache/core/test/harness"
import { commitHeld } from "@s3cache/core/test/MetadataStoreSuite"
import * as Arrow from "apache-arrow"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Zlib from "node:zlib"
import { ArrowCodec } from "../src/index.js"
import { catalogue, multiBatchTable } from "./utils/arrowTables.js"
import { assertTablesEqual } from "./utils/tableEquality.js"

const table = () => catalogue().at(-1)!.table

/** a cache on memory stores whose serializer has the Arrow codec */
const arrowHarness = (compression: Serializer.Compression = "zstd") =>
  makeHarness({ cache: { compression } }).pipe(Effect.provide(ArrowCodec.layer))

const recordOf = (harness: Harness, key: string) =>
  Effect.gen(function*() {
    const hash = yield* harness.cache.hashKey(key)
    const [record] = yield* harness.metadata.getMany("default", [hash])
    return Option.getOrThrow(record!)
  })

const mustHit = <A>() => Effect.die("must be served from the cache") as Effect.Effect<A>

const capturingWarnings = <A, E, R>(effect: (warnings: Array<string>) => Effect.Effect<A, E, R>) => {
  const warnings: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    if (logLevel.label === "WARN") warnings.push(String(Array.isArray(message) ? message[0] : message))
  })
  return effect(warnings).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
}

describe("the format of a cached table", () => {
  it.scoped("auto stores a Table as arrow (zstd, sha256), and other values as v8 or bytes", () =>
    Effect.gen(function*() {
      const harness = yield* arrowHarness()
      const { cache } = harness
      const t = table()
      yield* cache.cached(Effect.succeed(t), { key: "table" })
      yield* cache.cached(Effect.succeed({ rows: [1, 2, 3] }), { key: "object" })
      yield* cache.cached(Effect.succeed(new Uint8Array([1, 2, 3])), { key: "bytes" })
      yield* cache.cached(Effect.succeed([t.numRows]), { key: "array" })
      yield* cache.flush
      const record = yield* recordOf(harness, "table")
      assert.strictEqual(record.format, "arrow")
      assert.strictEqual(record.compression, "zstd")
      assert.strictEqual(record.rawSize, Arrow.tableToIPC(t, "stream").byteLength)
      assert.isBelow(record.storedSize, record.rawSize)
      assert.match(record.checksum, /^sha256:[0-9a-f]{64}$/)
      assert.strictEqual((yield* recordOf(harness, "object")).format, "v8")
      assert.strictEqual((yield* recordOf(harness, "bytes")).format, "bytes")
      assert.strictEqual((yield* recordOf(harness, "array")).format, "v8")
      assertTablesEqual(yield* cache.cached(mustHit<Arrow.Table>(), { key: "table" }), t)
      assert.deepStrictEqual(yield* cache.cached(mustHit(), { key: "object" }), { rows: [1, 2, 3] })
    }))

  it.scoped("format \"arrow\" asks for it explicitly; the stored object is an IPC stream under the compression", () =>
    Effect.gen(function*() {
      const harness = yield* arrowHarness("gzip")
      const t = multiBatchTable()
      yield* harness.cache.cached(Effect.succeed(t), { key: "t", format: "arrow" })
      yield* harness.cache.flush
      const record = yield* recordOf(harness, "t")
      assert.strictEqual(record.format, "arrow")
      assert.strictEqual(record.compression, "gzip")
      const stored = Option.getOrThrow(yield* harness.blobs.get(record.objectKey))
      // what a reader outside Node does: gunzip, then read an Arrow IPC stream
      assert.deepStrictEqual(new Uint8Array(Zlib.gunzipSync(stored)), Arrow.tableToIPC(t, "stream"))
      assertTablesEqual(yield* harness.cache.cached(mustHit<Arrow.Table>(), { key: "t", format: "arrow" }), t)
    }))

  it.scoped("format \"arrow\" without the Arrow layer: the call returns its value, nothing is stored, the warning names the layer", () =>
    capturingWarnings((warnings) =>
      Effect.gen(function*() {
        const { cache, metadata } = yield* makeHarness()
        const t = table()
        const query = counted(t)
        assert.strictEqual(yield* cache.cached(query.effect, { key: "t", format: "arrow" }), t)
        yield* cache.flush
        assert.strictEqual(yield* metadata.size("default"), 0)
        assert.strictEqual(yield* cache.cached(query.effect, { key: "t", format: "arrow" }), t)
        assert.strictEqual(query.runs, 2)
        const stats = yield* cache.stats
        assert.strictEqual(stats.writeFailures, 2)
        assert.isTrue(
          warnings.some((warning) => warning.includes("UnsupportedFormat") && warning.includes("@s3cache/arrow")),
          warnings.join("\n")
        )
      })
    ))

  it.scoped("format \"arrow\" for a value that is not a Table: the call returns it, the warning says what to pass", () =>
    capturingWarnings((warnings) =>
      Effect.gen(function*() {
        const { cache, metadata } = yield* arrowHarness()
        assert.deepStrictEqual(yield* cache.cached(Effect.succeed({ a: 1 }), { key: "k", format: "arrow" }), { a: 1 })
        yield* cache.flush
        assert.strictEqual(yield* metadata.size("default"), 0)
        assert.isTrue(warnings.some((warning) => warning.includes("pass a Table")), warnings.join("\n"))
      })
    ))
})

/** A valid stream cut after its first `n` messages: apache-arrow alone would read it as a shorter table. */
const cutAfterMessages = (ipc: Uint8Array, n: number): Uint8Array => {
  const view = new DataView(ipc.buffer, ipc.byteOffset, ipc.byteLength)
  let offset = 0
  for (let i = 0; i < n; i++) {
    const metadataLength = view.getInt32(offset + 4, true)
    offset += 8 + metadataLength +
      Arrow.Message.decode(ipc.subarray(offset + 8, offset + 8 + metadataLength)).bodyLength
  }
  return ipc.slice(0, offset)
}

/** Replace an entry's payload with `bytes`, sealed with a checksum that matches them (written with compression none). */
const replacePayload = (harness: Harness, record: MetadataStore.EntryRecord, bytes: Uint8Array) =>
  Effect.gen(function*() {
    const sealed = yield* Serializer.make({}).encode(bytes, { format: "bytes", compression: "none" })
    yield* harness.blobs.put(record.objectKey, sealed.bytes)
    yield* commitHeld(harness.metadata, {
      ...record,
      format: "arrow",
      compression: "none",
      checksum: sealed.checksum,
      rawSize: sealed.rawSize,
      storedSize: sealed.bytes.byteLength
    }, 1000)
  })

/** The entry is a miss: the effect runs again, its (right) value comes back, the error is counted, the entry is rewritten. */
const assertMissThenRewritten = (harness: Harness, t: Arrow.Table, runsBefore: { readonly runs: number }) =>
  Effect.gen(function*() {
    const { cache } = harness
    const before = yield* cache.stats
    const again = counted(t)
    assert.strictEqual(yield* cache.cached(again.effect, { key: "t" }), t, "the effect's own value, not the stored one")
    assert.strictEqual(again.runs, 1, "a miss")
    assert.strictEqual(runsBefore.runs, 1)
    const after = yield* cache.stats
    assert.strictEqual(after.errors, before.errors + 1)
    assert.strictEqual(after.hits, before.hits)
    yield* cache.flush
    const record = yield* recordOf(harness, "t")
    assert.strictEqual(record.format, "arrow")
    assertTablesEqual(yield* cache.cached(mustHit<Arrow.Table>(), { key: "t" }), t)
  })

describe("a corrupted Arrow payload is a miss, never a wrong value", () => {
  it.scoped("bytes flipped in the blob store (the checksum catches them)", () =>
    Effect.gen(function*() {
      for (const where of [0, 0.5, 0.999]) {
        const harness = yield* arrowHarness()
        const t = table()
        const first = counted(t)
        yield* harness.cache.cached(first.effect, { key: "t" })
        yield* harness.cache.flush
        const record = yield* recordOf(harness, "t")
        const stored = Option.getOrThrow(yield* harness.blobs.get(record.objectKey))
        const at = Math.floor(where * (stored.byteLength - 1))
        stored[at] = stored[at]! ^ 0x5a
        yield* harness.blobs.put(record.objectKey, stored)
        yield* assertMissThenRewritten(harness, t, first)
      }
    }))

  it.scoped("a payload whose checksum is right but whose Arrow bytes are not one complete stream", () =>
    Effect.gen(function*() {
      const t = multiBatchTable()
      const ipc = Arrow.tableToIPC(t, "stream")
      const payloads: Array<[string, Uint8Array]> = [
        ["random bytes", Uint8Array.from({ length: 2048 }, (_, i) => (i * 2654435761) >>> 24)],
        ["zeros", new Uint8Array(256)],
        ["empty", new Uint8Array(0)],
        ["JSON text", new TextEncoder().encode(JSON.stringify({ not: "arrow" }))],
        ["the stream without its end-of-stream marker", ipc.slice(0, ipc.byteLength - 8)],
        ["the stream cut after its first record batch", cutAfterMessages(ipc, 3)],
        ["half the stream", ipc.slice(0, ipc.byteLength >> 1)]
      ]
      for (const [label, bytes] of payloads) {
        const harness = yield* arrowHarness()
        const first = counted(t)
        yield* harness.cache.cached(first.effect, { key: "t" })
        yield* harness.cache.flush
        yield* replacePayload(harness, yield* recordOf(harness, "t"), bytes)
        yield* assertMissThenRewritten(harness, t, first).pipe(
          Effect.catchAllDefect((defect) => Effect.dieMessage(`${label}: ${String(defect)}`))
        )
      }
    }))
})
