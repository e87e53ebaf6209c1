/**
 * The equality the round-trip tests rely on must see every difference they claim to check: each case changes one
 * detail of a table (a type parameter, a flag, a metadata entry, one value by one unit) and must be told apart.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Arrow from "apache-arrow"
import { catalogue, decimalWords, tableOf } from "./utils/arrowTables.js"
import { assertTablesEqual } from "./utils/tableEquality.js"

const one = (type: Arrow.DataType, data: ArrayLike<number | bigint> & object, nullable = true) =>
  tableOf([{
    field: new Arrow.Field("x", type, nullable),
    vector: Arrow.makeVector(Arrow.makeData({ type, length: 1, data } as any)) as Arrow.Vector
  }])

/** the difference is found, by an assertion (not by a crash of the comparison) */
const differs = (label: string, a: Arrow.Table, b: Arrow.Table) => {
  let error: unknown
  try {
    assertTablesEqual(a, b)
  } catch (e) {
    error = e
  }
  assert.strictEqual((error as Error | undefined)?.name, "AssertionError", label)
}

describe("assertTablesEqual", () => {
  it("accepts a table and itself, and its IPC round trip", () => {
    for (const { table } of catalogue()) {
      assertTablesEqual(table, table)
      assertTablesEqual(Arrow.tableFromIPC(Arrow.tableToIPC(table, "stream")), table)
    }
  })

  it("tells apart every detail it claims to compare", () => {
    const ns = (tz: string | null, v: bigint) => one(new Arrow.TimestampNanosecond(tz), BigInt64Array.of(v))
    differs("a nanosecond", ns("UTC", 1_000_000_001n), ns("UTC", 1_000_000_000n))
    differs("a time zone", ns("UTC", 1n), ns("Europe/Paris", 1n))
    differs("a unit", one(new Arrow.TimestampMicrosecond("UTC"), BigInt64Array.of(1n)), ns("UTC", 1n))
    differs(
      "nullability",
      one(new Arrow.Int32(), Int32Array.of(1), true),
      one(new Arrow.Int32(), Int32Array.of(1), false)
    )
    differs("an int width", one(new Arrow.Int16(), Int16Array.of(1)), one(new Arrow.Int32(), Int32Array.of(1)))
    differs("signedness", one(new Arrow.Uint32(), Uint32Array.of(1)), one(new Arrow.Int32(), Int32Array.of(1)))
    differs("-0 and 0", one(new Arrow.Float64(), Float64Array.of(-0)), one(new Arrow.Float64(), Float64Array.of(0)))
    differs(
      "two NaN payloads of Float16",
      one(new Arrow.Float16(), Uint16Array.of(0x7e00)),
      one(new Arrow.Float16(), Uint16Array.of(0x7e01))
    )
    differs(
      "a decimal's lowest word",
      one(new Arrow.Decimal(2, 38, 128), decimalWords([-1n], 128)),
      one(new Arrow.Decimal(2, 38, 128), decimalWords([-2n], 128))
    )
    differs(
      "a decimal's scale",
      one(new Arrow.Decimal(2, 38, 128), decimalWords([1n], 128)),
      one(new Arrow.Decimal(3, 38, 128), decimalWords([1n], 128))
    )
    differs(
      "a decimal's bit width",
      one(new Arrow.Decimal(2, 38, 256), decimalWords([1n], 256)),
      one(new Arrow.Decimal(2, 38, 128), decimalWords([1n], 128))
    )
    const dict = (indices: Arrow.Int8 | Arrow.Int32, ordered: boolean) =>
      tableOf([{
        field: new Arrow.Field("d", new Arrow.Dictionary(new Arrow.Utf8(), indices, 0, ordered), true),
        vector: Arrow.vectorFromArray(["a", "b"], new Arrow.Dictionary(new Arrow.Utf8(), indices, 0, ordered))
      }])
    differs("a dictionary's index type", dict(new Arrow.Int8(), false), dict(new Arrow.Int32(), false))
    differs("a dictionary's order flag", dict(new Arrow.Int8(), true), dict(new Arrow.Int8(), false))
    const base = catalogue().at(-1)!.table
    differs(
      "schema metadata",
      new Arrow.Table(
        new Arrow.Schema(base.schema.fields, new Map([["other", "1"]])),
        base.batches.map((b) =>
          new Arrow.RecordBatch(new Arrow.Schema(base.schema.fields, new Map([["other", "1"]])), b.data)
        )
      ),
      base
    )
    const renamed = base.schema.fields.map((f, i) =>
      i === 0 ? new Arrow.Field(f.name, f.type, f.nullable, new Map()) : f
    )
    differs(
      "field metadata",
      new Arrow.Table(
        new Arrow.Schema(renamed, base.schema.metadata),
        base.batches.map((b) => new Arrow.RecordBatch(new Arrow.Schema(renamed, base.schema.metadata), b.data))
      ),
      base
    )
    differs("one row fewer", base.slice(0, base.numRows - 1), base)
    differs(
      "a list item",
      tableOf([{
        field: new Arrow.Field("l", new Arrow.List(new Arrow.Field("item", new Arrow.Int32(), true)), true),
        vector: Arrow.vectorFromArray([[1, 2]], new Arrow.List(new Arrow.Field("item", new Arrow.Int32(), true)))
      }]),
      tableOf([{
        field: new Arrow.Field("l", new Arrow.List(new Arrow.Field("item", new Arrow.Int32(), true)), true),
        vector: Arrow.vectorFromArray([[1, 3]], new Arrow.List(new Arrow.Field("item", new Arrow.Int32(), true)))
      }])
    )
  })
})
