/**
 * Tables of every type the Arrow codec promises to keep, built with explicit fields (types, nullability, field and
 * schema metadata) and nulls everywhere, plus a large mixed table for the 1M-row test and the benchmark.
 *
 * Fixed-width columns (integers, floats, dates, timestamps, decimals) are built from raw typed arrays with
 * `makeData`, so the test controls every bit (a nanosecond timestamp that is not a whole millisecond, a Float16 NaN,
 * the words of a negative decimal); variable-width and nested columns go through `vectorFromArray`.
 */
import * as Arrow from "apache-arrow"

export interface Column {
  readonly field: Arrow.Field
  readonly vector: Arrow.Vector
}

export interface TableCase {
  readonly name: string
  readonly table: Arrow.Table
}

/** the number of rows of every catalogue table */
export const rows = 8

const meta = (entries: Record<string, string>): Map<string, string> => new Map(Object.entries(entries))

/** A validity bitmap (LSB first, as Arrow lays it out) and its null count. */
export const validity = (valid: ReadonlyArray<boolean>): { nullBitmap: Uint8Array; nullCount: number } => {
  const nullBitmap = new Uint8Array(Math.ceil(valid.length / 8))
  let nullCount = 0
  valid.forEach((ok, i) => {
    if (ok) nullBitmap[i >> 3]! |= 1 << (i & 7)
    else nullCount++
  })
  return { nullBitmap, nullCount }
}

/** rows 2 and 5 are null in every nullable column of the catalogue */
const someNulls: ReadonlyArray<boolean> = Array.from({ length: rows }, (_, i) => i !== 2 && i !== 5)

const fixed = <T extends Arrow.DataType>(
  type: T,
  values: T["TArray"],
  valid: ReadonlyArray<boolean> | undefined = someNulls
): Arrow.Vector<T> => {
  const length = values.length / Math.max(1, strideOf(type))
  const bits = valid === undefined ? { nullBitmap: new Uint8Array(0), nullCount: 0 } : validity(valid)
  return Arrow.makeVector(
    Arrow.makeData({ type, length, data: values, nullBitmap: bits.nullBitmap, nullCount: bits.nullCount } as any)
  ) as Arrow.Vector<T>
}

const strideOf = (type: Arrow.DataType): number =>
  Arrow.DataType.isDecimal(type) ? type.bitWidth / 32 : Arrow.DataType.isFixedSizeBinary(type) ? type.byteWidth : 1

const column = (
  name: string,
  vector: Arrow.Vector,
  nullable = true,
  type: Arrow.DataType = vector.type
): Column => ({
  field: new Arrow.Field(name, type, nullable, meta({ column: name, "ünïcode": "✓" })),
  vector
})

/** the words of signed little-endian two's-complement integers of `bitWidth` bits */
export const decimalWords = (values: ReadonlyArray<bigint>, bitWidth: 128 | 256): Uint32Array => {
  const words = bitWidth / 32
  const out = new Uint32Array(values.length * words)
  values.forEach((value, i) => {
    let v = BigInt.asUintN(bitWidth, value)
    for (let w = 0; w < words; w++) {
      out[i * words + w] = Number(v & 0xffffffffn)
      v >>= 32n
    }
  })
  return out
}

// --- the catalogue ------------------------------------------------------------------------------------------------

const signed = (): Array<Column> => [
  column("i8", fixed(new Arrow.Int8(), Int8Array.from([-128, 127, 0, -1, 1, 0, 42, -42]))),
  column("i16", fixed(new Arrow.Int16(), Int16Array.from([-32768, 32767, 0, -1, 1, 0, 4242, -4242]))),
  column("i32", fixed(new Arrow.Int32(), Int32Array.from([-(2 ** 31), 2 ** 31 - 1, 0, -1, 1, 0, 424242, -424242]))),
  column(
    "i64",
    fixed(
      new Arrow.Int64(),
      BigInt64Array.from([-(2n ** 63n), 2n ** 63n - 1n, 0n, -1n, 2n ** 53n + 1n, 0n, 9007199254740993n, -42n])
    )
  ),
  column("i32_required", fixed(new Arrow.Int32(), Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), undefined), false)
]

const unsigned = (): Array<Column> => [
  column("u8", fixed(new Arrow.Uint8(), Uint8Array.from([0, 255, 0, 1, 128, 0, 7, 254]))),
  column("u16", fixed(new Arrow.Uint16(), Uint16Array.from([0, 65535, 0, 1, 32768, 0, 7, 65534]))),
  column("u32", fixed(new Arrow.Uint32(), Uint32Array.from([0, 2 ** 32 - 1, 0, 1, 2 ** 31, 0, 7, 2 ** 32 - 2]))),
  column(
    "u64",
    fixed(new Arrow.Uint64(), BigUint64Array.from([0n, 2n ** 64n - 1n, 0n, 1n, 2n ** 63n, 0n, 2n ** 53n + 1n, 7n]))
  )
]

const floats = (): Array<Column> => [
  // raw half floats: 1, NaN, (null), -0, +Infinity, (null), smallest subnormal, largest finite
  column("f16", fixed(new Arrow.Float16(), Uint16Array.from([0x3c00, 0x7e00, 0, 0x8000, 0x7c00, 0, 0x0001, 0x7bff]))),
  column(
    "f32",
    fixed(new Arrow.Float32(), Float32Array.from([0.1, NaN, 0, -0, -Infinity, 0, 1.4e-45, 3.4028234663852886e38]))
  ),
  column(
    "f64",
    fixed(
      new Arrow.Float64(),
      Float64Array.from([0.1, NaN, 0, -0, Infinity, 0, Number.MIN_VALUE, Number.MAX_VALUE])
    )
  )
]

const strings = ["", "plain", null, "ünïcödé ✓ 😀 汉字", "a\u0000b", null, "x".repeat(1000), "last"]

const texts = (): Array<Column> => [
  column("utf8", Arrow.vectorFromArray(strings, new Arrow.Utf8())),
  column("large_utf8", Arrow.vectorFromArray(strings, new Arrow.LargeUtf8())),
  column("utf8_required", Arrow.vectorFromArray(strings.map((s) => s ?? "not null"), new Arrow.Utf8()), false)
]

const bytesValues = [
  new Uint8Array(0),
  Uint8Array.from([0, 1, 2, 255]),
  null,
  Uint8Array.from({ length: 300 }, (_, i) => i & 0xff),
  Uint8Array.from([0]),
  null,
  Uint8Array.from([0xde, 0xad, 0xbe, 0xef]),
  Uint8Array.from([7])
]

const binaries = (): Array<Column> => [
  column("binary", Arrow.vectorFromArray(bytesValues, new Arrow.Binary())),
  column("large_binary", Arrow.vectorFromArray(bytesValues, new Arrow.LargeBinary())),
  column(
    "fixed_binary",
    Arrow.vectorFromArray(
      bytesValues.map((b) => b === null ? null : Uint8Array.from([1, 2, 3, b.length & 0xff])),
      new Arrow.FixedSizeBinary(4)
    )
  )
]

const booleans = (): Array<Column> => [
  column("bool", Arrow.vectorFromArray([true, false, null, true, true, null, false, true], new Arrow.Bool())),
  column(
    "bool_required",
    Arrow.vectorFromArray([false, false, true, true, false, true, false, true], new Arrow.Bool()),
    false
  )
]

const day = 86_400_000n

const dates = (): Array<Column> => [
  column("date_day", fixed(new Arrow.DateDay(), Int32Array.from([0, -719162, 0, 20_000, 2_932_896, 0, -1, 19_723]))),
  column(
    "date_ms",
    fixed(
      new Arrow.DateMillisecond(),
      BigInt64Array.from([0n, -719162n * day, 0n, 20_000n * day, 1n * day, 0n, -day, 19_723n * day])
    )
  )
]

// not whole milliseconds, negative (before 1970), far future: what a lossy path through JS numbers would change
const instants = BigInt64Array.from([
  0n,
  1_767_225_599_123_456_789n,
  0n,
  -1_000_000_001n,
  9_007_199_254_740_993n,
  0n,
  1n,
  -(2n ** 62n)
])

const timestampUnits: ReadonlyArray<[string, new(timezone?: string | null) => Arrow.DataType]> = [
  ["s", Arrow.TimestampSecond],
  ["ms", Arrow.TimestampMillisecond],
  ["us", Arrow.TimestampMicrosecond],
  ["ns", Arrow.TimestampNanosecond]
]
const timezones: ReadonlyArray<string | null> = [null, "UTC", "America/New_York", "+05:30"]

const timestamps = (): Array<Column> =>
  timestampUnits.flatMap(([unit, Type]) =>
    timezones.map((timezone) =>
      column(`ts_${unit}_${timezone ?? "naive"}`, fixed(new Type(timezone), instants.slice() as any))
    )
  )

const decimalValues = [
  0n,
  1n,
  0n,
  -1n,
  10n ** 37n * 9n,
  0n,
  -(10n ** 37n * 9n),
  123456789012345678901234567890n
]

const decimals = (): Array<Column> => [
  column("dec_38_10", fixed(new Arrow.Decimal(10, 38, 128), decimalWords(decimalValues, 128))),
  column("dec_9_2", fixed(new Arrow.Decimal(2, 9, 128), decimalWords(decimalValues.map((v) => v % 10n ** 9n), 128))),
  column("dec_76_20", fixed(new Arrow.Decimal(20, 76, 256), decimalWords(decimalValues.map((v) => v * v), 256))),
  column(
    "dec_5_neg2",
    fixed(new Arrow.Decimal(-2, 5, 128), decimalWords([1n, 99999n, 0n, -99999n, 5n, 0n, 7n, -7n], 128))
  )
]

const categories = ["red", null, "green", "blue", "red", null, "blue", "ünï ✓"]

const dictionaries = (): Array<Column> => [
  column("dict_i8", Arrow.vectorFromArray(categories, new Arrow.Dictionary(new Arrow.Utf8(), new Arrow.Int8()))),
  column(
    "dict_i16_ordered",
    Arrow.vectorFromArray(categories, new Arrow.Dictionary(new Arrow.Utf8(), new Arrow.Int16(), null, true))
  ),
  column("dict_i32", Arrow.vectorFromArray(categories, new Arrow.Dictionary(new Arrow.Utf8(), new Arrow.Int32()))),
  column(
    "dict_i64_values",
    Arrow.vectorFromArray(
      [1n, 2n, null, 2n ** 62n, 1n, null, -5n, 1n],
      new Arrow.Dictionary(new Arrow.Int64(), new Arrow.Uint32())
    )
  )
]

const childField = (name: string, type: Arrow.DataType, nullable = true) =>
  new Arrow.Field(name, type, nullable, meta({ child: name }))

const lists = (): Array<Column> => [
  column(
    "list_i32",
    Arrow.vectorFromArray(
      [[1, 2, 3], [], null, [null, -1], [2 ** 31 - 1], null, [0], [4, null, 6]],
      new Arrow.List(childField("item", new Arrow.Int32()))
    )
  ),
  column(
    "list_utf8",
    Arrow.vectorFromArray(
      [["a"], ["", null], null, [], ["ü✓", "b", "c"], null, [null], ["z"]],
      new Arrow.List(childField("item", new Arrow.Utf8()))
    )
  ),
  column(
    "list_list_i64",
    Arrow.vectorFromArray(
      [[[1n], [2n, 3n]], [[]], null, [null, [4n]], [], null, [[-(2n ** 63n)]], [[5n, null]]],
      new Arrow.List(childField("inner", new Arrow.List(childField("item", new Arrow.Int64()))))
    )
  )
]

const point = new Arrow.Struct([
  childField("x", new Arrow.Float64()),
  childField("label", new Arrow.Utf8()),
  childField("tags", new Arrow.List(childField("item", new Arrow.Bool())))
])

const structs = (): Array<Column> => [
  column(
    "struct",
    Arrow.vectorFromArray(
      [
        { id: 1, point: { x: 1.5, label: "a", tags: [true] } },
        { id: null, point: null },
        null,
        { id: 3, point: { x: null, label: null, tags: null } },
        { id: -4, point: { x: -0, label: "ü✓", tags: [] } },
        null,
        { id: 6, point: { x: NaN, label: "", tags: [null, false] } },
        { id: 7, point: { x: 7, label: "g", tags: [true, true] } }
      ],
      new Arrow.Struct([childField("id", new Arrow.Int32()), childField("point", point)])
    )
  )
]

/** One column per type, every value null: a nullable column must keep its nulls even when it holds nothing else. */
const allNull = (): Array<Column> => {
  const nulls = Array.from({ length: rows }, () => false)
  return [
    column("null_type", Arrow.vectorFromArray(Array.from({ length: rows }, () => null), new Arrow.Null())),
    column("null_i64", fixed(new Arrow.Int64(), new BigInt64Array(rows), nulls)),
    column("null_f16", fixed(new Arrow.Float16(), new Uint16Array(rows), nulls)),
    column("null_ts_ns", fixed(new Arrow.TimestampNanosecond("UTC"), new BigInt64Array(rows), nulls)),
    column("null_dec", fixed(new Arrow.Decimal(2, 10, 128), new Uint32Array(rows * 4), nulls)),
    column("null_utf8", Arrow.vectorFromArray(Array.from({ length: rows }, () => null), new Arrow.Utf8())),
    column("null_bool", Arrow.vectorFromArray(Array.from({ length: rows }, () => null), new Arrow.Bool())),
    column(
      "null_dict",
      Arrow.vectorFromArray(
        Array.from({ length: rows }, () => null),
        new Arrow.Dictionary(new Arrow.Utf8(), new Arrow.Int32())
      )
    ),
    column(
      "null_list",
      Arrow.vectorFromArray(
        Array.from({ length: rows }, () => null),
        new Arrow.List(childField("item", new Arrow.Int8()))
      )
    ),
    column(
      "null_struct",
      Arrow.vectorFromArray(
        Array.from({ length: rows }, () => null),
        new Arrow.Struct([childField("a", new Arrow.Utf8())])
      )
    )
  ]
}

const schemaMetadata = meta({ source: "s3cache-arrow-test", "ünïcode": "héllo ✓", empty: "" })

/** A table of one record batch from columns of equal length (each a single chunk). */
export const tableOf = (
  columns: ReadonlyArray<Column>,
  metadata: Map<string, string> = schemaMetadata
): Arrow.Table => {
  const schema = new Arrow.Schema(columns.map((c) => c.field), metadata)
  const length = columns[0]?.vector.length ?? 0
  const data = Arrow.makeData({
    type: new Arrow.Struct(schema.fields),
    length,
    nullCount: 0,
    children: columns.map((c) => c.vector.data[0]!)
  })
  return new Arrow.Table(schema, [new Arrow.RecordBatch(schema, data)])
}

const groups: ReadonlyArray<[string, () => Array<Column>]> = [
  ["signed integers Int8…Int64 (BigInt)", signed],
  ["unsigned integers Uint8…Uint64", unsigned],
  ["floats Float16/32/64 (NaN, -0, ±Infinity, subnormals)", floats],
  ["strings Utf8 / LargeUtf8", texts],
  ["binary, LargeBinary, FixedSizeBinary", binaries],
  ["booleans", booleans],
  ["dates (day, millisecond)", dates],
  ["timestamps in 4 units × 4 time zones", timestamps],
  ["decimals (128 and 256 bits, negative scale)", decimals],
  ["dictionaries (Int8/16/32 indices, ordered, bigint values)", dictionaries],
  ["lists (nested, empty, null lists and items)", lists],
  ["structs (nested, nulls at every level)", structs],
  ["all-null columns of every kind", allNull]
]

/** every column of every group */
export const allColumns = (): Array<Column> => groups.flatMap(([, make]) => make())

/** One table per type group, plus one with all of them together. */
export const catalogue = (): ReadonlyArray<TableCase> => [
  ...groups.map(([name, make]) => ({ name, table: tableOf(make()) })),
  { name: "every type in one table", table: tableOf(allColumns()) }
]

/** The schema of every type, with no rows (and no record batch). */
export const emptyTable = (): Arrow.Table => new Arrow.Table(tableOf(allColumns()).schema)

/** No columns: `new Table()`, and a batch of 5 rows that has no columns. */
export const zeroColumnTables = (): ReadonlyArray<TableCase> => {
  const schema = new Arrow.Schema([], meta({ note: "no columns" }))
  const batch = new Arrow.RecordBatch(
    schema,
    Arrow.makeData({ type: new Arrow.Struct([]), length: 5, nullCount: 0, children: [] })
  )
  return [
    { name: "new Table()", table: new Arrow.Table() },
    { name: "5 rows, no columns", table: new Arrow.Table(schema, [batch]) }
  ]
}

/**
 * The "every type" table cut into three record batches by slicing (rows 0–2, 3–5, 6–7): the writer has to write
 * sliced columns (bitmaps and offsets that do not start at 0) and one dictionary shared by the batches.
 */
export const multiBatchTable = (): Arrow.Table => {
  const table = tableOf(allColumns())
  const batches = [[0, 3], [3, 6], [6, rows]].flatMap(([begin, end]) => table.slice(begin, end).batches)
  return new Arrow.Table(table.schema, batches)
}
