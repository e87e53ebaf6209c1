/**
 * The Arrow codec behind `ArrowCodec.codec`: an apache-arrow `Table` ⇄ one Arrow IPC stream.
 *
 * @since 0.1.0
 */
import { SerializationError } from "@s3cache/core/CacheError"
import type * as Serializer from "@s3cache/core/Serializer"
import { Table, tableFromIPC, tableToIPC } from "apache-arrow"
import * as Effect from "effect/Effect"
import { adoptTable, isOwnTable } from "./adopt.js"
import * as ipcStream from "./ipcStream.js"

/**
 * @since 0.1.0
 */
export const name = "arrow" as const

const tableBrand: unique symbol = Symbol.for("apache-arrow/Table") as any

const messageOf = (u: unknown): string => u instanceof Error ? u.message : String(u)

const isObject = (u: unknown): u is Record<PropertyKey, unknown> => typeof u === "object" && u !== null

/**
 * A table of another copy of apache-arrow, recognized by its shape. Every apache-arrow since 0.4 sets
 * `Table[Symbol.toStringTag] = "Table"` on the class (not on instances, so `Object.prototype.toString` does not
 * show it), which survives minification where `constructor.name` does not.
 */
const looksLikeTable = (u: unknown): boolean => {
  if (!isObject(u)) return false
  const constructor: unknown = Object.getPrototypeOf(u)?.constructor
  if (typeof constructor !== "function") return false
  if ((constructor as unknown as Record<PropertyKey, unknown>)[Symbol.toStringTag] !== "Table") return false
  const schema = u.schema
  return isObject(schema) && Array.isArray(schema.fields) && Array.isArray(u.batches)
}

/**
 * Is `u` an apache-arrow `Table`, from this copy of apache-arrow or another one?
 *
 * 1. `instanceof Table`: this copy's tables; since apache-arrow 21 also those of any other copy that carries the
 *    `Symbol.for("apache-arrow/Table")` brand (apache-arrow defines `Symbol.hasInstance` for that).
 * 2. The brand itself: when this copy is older than the copy that made the table.
 * 3. The shape (class tagged `"Table"`, `schema.fields`, `batches`): copies too old to carry the brand.
 *
 * Tables of another copy are rebuilt with this copy's classes before they are written (see `adopt.ts`).
 *
 * @since 0.1.0
 */
export const isTable = (u: unknown): u is Table =>
  u instanceof Table || (isObject(u) && u[tableBrand] === true) || looksLikeTable(u)

const describeValue = (value: unknown): string => {
  if (value === null) return "null"
  if (Array.isArray(value)) return "an array"
  if (isObject(value)) {
    const constructorName = Object.getPrototypeOf(value)?.constructor?.name
    return typeof constructorName === "string" && constructorName !== "Object"
      ? `an object (${constructorName})`
      : "an object"
  }
  return `a value of type ${typeof value}`
}

/**
 * @since 0.1.0
 */
export const encode = (value: unknown): Effect.Effect<Uint8Array, SerializationError> =>
  Effect.suspend(() => {
    if (!isTable(value)) {
      return Effect.fail(
        new SerializationError({
          reason: "Encode",
          format: name,
          description: `format "arrow" stores an apache-arrow Table, but got ${
            describeValue(value)
          }; pass a Table (from tableFromArrays, tableFromIPC, or your database client), or use format "auto", which stores other values with v8`
        })
      )
    }
    let table: Table
    try {
      table = isOwnTable(value) ? value : adoptTable(value)
    } catch (cause) {
      return Effect.fail(
        new SerializationError({
          reason: "Encode",
          format: name,
          description:
            `this Table comes from another copy of apache-arrow than the one @s3cache/arrow imports, and it could not be rebuilt with this one (${
              messageOf(cause)
            }); make your package manager install a single apache-arrow (\`pnpm dedupe\`, \`npm dedupe\`, or an override), or cache it with another format`,
          cause
        })
      )
    }
    return Effect.try({
      // The stream format (not the file format): it is what `pyarrow.ipc.open_stream` reads, and it needs no footer,
      // so the bytes are complete as they are written. No Arrow-level buffer compression: the cache compresses the
      // whole stream, and a reader with plain zstd/gzip and pyarrow opens it.
      try: () => tableToIPC(table, "stream"),
      catch: (cause) =>
        new SerializationError({
          reason: "Encode",
          format: name,
          description: `apache-arrow could not write the table as an Arrow IPC stream (${
            messageOf(cause)
          }); check that its columns are valid (a vector built by hand must match its type), or cache it with another format`,
          cause
        })
    })
  })

const decodeError = (problem: string, cause?: unknown): SerializationError =>
  new SerializationError({
    reason: "Decode",
    format: name,
    description:
      `the stored bytes are not a complete Arrow IPC stream (${problem}); the entry will be treated as a miss and written again`,
    ...(cause === undefined ? {} : { cause })
  })

/**
 * @since 0.1.0
 */
export const decode = (bytes: Uint8Array): Effect.Effect<unknown, SerializationError> =>
  Effect.suspend(() => {
    let shape: ipcStream.StreamShape | string
    try {
      shape = ipcStream.check(bytes)
    } catch (cause) {
      return Effect.fail(decodeError(`a message header does not parse: ${messageOf(cause)}`, cause))
    }
    if (typeof shape === "string") return Effect.fail(decodeError(shape))
    // The table's columns are views into `bytes`, not copies; typed arrays need their natural alignment, which a
    // view at an odd offset (a slice of a pooled Buffer) would break, so only such bytes are copied first.
    const source = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice()
    return Effect.try({
      try: () => tableFromIPC(source),
      catch: (cause) => decodeError(`apache-arrow could not read it: ${messageOf(cause)}`, cause)
    }).pipe(Effect.flatMap((table) =>
      table.batches.length === shape.recordBatches || (shape.recordBatches === 0 && table.numRows === 0)
        ? Effect.succeed(table)
        : Effect.fail(
          decodeError(`${shape.recordBatches} record batches were written but ${table.batches.length} were read`)
        )
    ))
  })

/**
 * @since 0.1.0
 */
export const codec: Serializer.Codec = {
  name,
  canEncode: isTable,
  encode,
  decode
}
