/**
 * A careful equality of two Arrow tables: the schema (names, types with all their parameters, nullability, field and
 * schema metadata), the layout (rows per record batch, null counts) and every value in its raw representation.
 *
 * Values are compared as stored, not as `get()` returns them: `get()` turns a nanosecond timestamp into a float of
 * milliseconds and a Float16 into a number, which would hide exactly the losses this check is for. Fixed-width values
 * are compared word by word (BigInt words as `123n`, numbers with `Object.is` semantics, so NaN equals NaN and -0 is
 * not 0), decimals as their little-endian words, dictionaries as index plus value, lists and structs recursively.
 */
import { assert } from "@effect/vitest"
import * as Arrow from "apache-arrow"

const entries = (metadata: Map<string, string> | undefined): Array<[string, string]> =>
  [...(metadata ?? new Map<string, string>())].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))

/** Every parameter of a type, recursively, as a plain value. */
export const describeType = (type: Arrow.DataType): unknown => {
  const base: Record<string, unknown> = { typeId: type.typeId, text: String(type) }
  const t = type as any
  for (const key of ["bitWidth", "isSigned", "precision", "scale", "unit", "timezone", "byteWidth", "listSize"]) {
    if (key in t && t[key] !== undefined) base[key] = t[key]
  }
  if (Arrow.DataType.isDictionary(type)) {
    base.indices = describeType(type.indices)
    base.dictionary = describeType(type.dictionary)
    base.isOrdered = type.isOrdered
    base.id = type.id
  } else if (type.children !== undefined && type.children !== null && type.children.length > 0) {
    base.children = type.children.map(describeField)
  }
  return base
}

export const describeField = (field: Arrow.Field): unknown => ({
  name: field.name,
  nullable: field.nullable,
  metadata: entries(field.metadata),
  type: describeType(field.type)
})

export const describeSchema = (schema: Arrow.Schema): unknown => ({
  metadata: entries(schema.metadata),
  fields: schema.fields.map(describeField)
})

const word = (value: number | bigint): string =>
  typeof value === "bigint" ? `${value}n` : Object.is(value, -0) ? "-0" : String(value)

const hex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")

/** The raw value at local index `i` of one chunk. */
const cell = (data: Arrow.Data, i: number): unknown => {
  const type = data.type
  if (Arrow.DataType.isNull(type) || !data.getValid(i)) return null
  if (Arrow.DataType.isDictionary(type)) {
    const index = Number(data.values[i])
    return { index, value: vectorCell(data.dictionary!, index) }
  }
  if (
    Arrow.DataType.isInt(type) || Arrow.DataType.isFloat(type) || Arrow.DataType.isDate(type) ||
    Arrow.DataType.isTime(type) || Arrow.DataType.isTimestamp(type) || Arrow.DataType.isDecimal(type) ||
    Arrow.DataType.isDuration(type) || Arrow.DataType.isInterval(type)
  ) {
    const stride = data.stride
    return Array.from(data.values.subarray(i * stride, (i + 1) * stride) as ArrayLike<number | bigint>, word).join(",")
  }
  if (Arrow.DataType.isFixedSizeBinary(type)) {
    return hex(data.values.subarray(i * type.byteWidth, (i + 1) * type.byteWidth))
  }
  if (Arrow.DataType.isBool(type)) return new Arrow.Vector([data]).get(i)
  if (Arrow.DataType.isUtf8(type) || Arrow.DataType.isLargeUtf8(type)) return new Arrow.Vector([data]).get(i)
  if (Arrow.DataType.isBinary(type) || Arrow.DataType.isLargeBinary(type)) {
    return hex(new Arrow.Vector([data]).get(i) as Uint8Array)
  }
  if (Arrow.DataType.isList(type) || Arrow.DataType.isLargeList(type)) {
    const offsets = data.valueOffsets as ArrayLike<number | bigint>
    const child = data.children[0]!
    const cells: Array<unknown> = []
    for (let j = Number(offsets[i]); j < Number(offsets[i + 1]); j++) cells.push(cell(child, j))
    return cells
  }
  if (Arrow.DataType.isFixedSizeList(type)) {
    const child = data.children[0]!
    return Array.from({ length: type.listSize }, (_, j) => cell(child, i * type.listSize + j))
  }
  if (Arrow.DataType.isStruct(type)) {
    return Object.fromEntries(data.children.map((child, k) => [type.children[k]!.name, cell(child, i)]))
  }
  throw new Error(`tableEquality: no raw comparison for type ${String(type)}; add one`)
}

/** The raw value at global index `i` of a (possibly chunked) vector. */
export const vectorCell = (vector: Arrow.Vector, i: number): unknown => {
  let index = i
  for (const data of vector.data) {
    if (index < data.length) return cell(data, index)
    index -= data.length
  }
  throw new RangeError(`row ${i} is past the end of a vector of ${vector.length}`)
}

// apache-arrow reports -1 ("unknown") for a sliced column of type Null, whose every value is null
const nullCountOf = (vector: Arrow.Vector): number =>
  Arrow.DataType.isNull(vector.type) ? vector.length : vector.nullCount

export interface EqualityOptions {
  /** compare only these rows (the large tables); default every row */
  readonly rows?: ReadonlyArray<number> | undefined
}

/** Assert that `actual` is an apache-arrow Table equal to `expected` in schema, layout and values. */
export const assertTablesEqual = (actual: unknown, expected: Arrow.Table, options: EqualityOptions = {}): void => {
  assert.instanceOf(actual, Arrow.Table, "the cached value is an apache-arrow Table")
  const table = actual as Arrow.Table
  assert.deepStrictEqual(describeSchema(table.schema), describeSchema(expected.schema), "schema")
  assert.strictEqual(table.numRows, expected.numRows, "numRows")
  assert.strictEqual(table.numCols, expected.numCols, "numCols")
  // An empty table is written as a schema and no batch; apache-arrow reads it back with one empty batch.
  if (expected.numRows > 0) {
    assert.deepStrictEqual(
      table.batches.map((batch) => batch.numRows),
      expected.batches.map((batch) => batch.numRows),
      "rows per record batch"
    )
  }
  const rows = options.rows ?? Array.from({ length: expected.numRows }, (_, i) => i)
  for (let c = 0; c < expected.numCols; c++) {
    const name = expected.schema.fields[c]!.name
    const got = table.getChildAt(c)!
    const want = expected.getChildAt(c)!
    assert.strictEqual(got.length, want.length, `length of column ${name}`)
    assert.strictEqual(nullCountOf(got), nullCountOf(want), `null count of column ${name}`)
    for (const row of rows) {
      const a = vectorCell(got, row)
      const b = vectorCell(want, row)
      // a full deep comparison only where the cheap one fails, so that the message names the cell
      if (JSON.stringify(a) !== JSON.stringify(b)) {
        assert.deepStrictEqual(a, b, `column ${name}, row ${row}`)
      }
    }
  }
}
