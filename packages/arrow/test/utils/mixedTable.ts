/**
 * A large table of mixed types (10 columns) for the 1M-row test and the benchmark, built straight from typed arrays
 * (a million rows through the builders would take seconds), deterministic so that every run compresses the same.
 */
import * as Arrow from "apache-arrow"
import { decimalWords, validity } from "./arrowTables.js"

export const regions = [
  "north",
  "south",
  "east",
  "west",
  "central",
  "north-east",
  "north-west",
  "south-east",
  "south-west",
  "overseas",
  "online",
  "ünknown ✓"
]

/** ms since epoch of 2025-01-01 */
const base = 1_735_689_600_000

/** A small linear congruential generator: the same data on every run, on every machine. */
const random = (seed: number) => {
  let state = seed >>> 0
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    return state / 2 ** 32
  }
}

const field = (name: string, type: Arrow.DataType, nullable: boolean) =>
  new Arrow.Field(name, type, nullable, new Map([["column", name]]))

const vector = (type: Arrow.DataType, props: Record<string, unknown>): Arrow.Data =>
  Arrow.makeData({ type, ...props } as any)

/**
 * `rows` rows × 10 columns: id Int64, customer_id Int32 (1% null), price Float64, discount Float32 (10% null),
 * in_stock Bool, sku Utf8, region Dictionary<Int8, Utf8>, ordered_at Timestamp<µs, UTC>, ship_date Date<day>,
 * amount Decimal(18, 2).
 */
export const mixedTable = (rows: number): Arrow.Table => {
  const next = random(42)
  const id = new BigInt64Array(rows)
  const customer = new Int32Array(rows)
  const customerValid = new Array<boolean>(rows)
  const price = new Float64Array(rows)
  const discount = new Float32Array(rows)
  const discountValid = new Array<boolean>(rows)
  const inStock = new Uint8Array(Math.ceil(rows / 8))
  const region = new Int8Array(rows)
  const orderedAt = new BigInt64Array(rows)
  const shipDate = new Int32Array(rows)
  const amounts = new Array<bigint>(rows)
  const skuOffsets = new Int32Array(rows + 1)
  const skus = new Array<string>(rows)
  let skuBytes = 0
  for (let i = 0; i < rows; i++) {
    id[i] = BigInt(i)
    customer[i] = Math.floor(next() * 100_000)
    customerValid[i] = next() >= 0.01
    price[i] = Math.round(next() * 100_000) / 100
    discount[i] = Math.round(next() * 50) / 100
    discountValid[i] = next() >= 0.1
    if (next() < 0.8) inStock[i >> 3]! |= 1 << (i & 7)
    region[i] = Math.floor(next() * regions.length)
    const orderedMs = base + Math.floor(next() * 365 * 86_400_000)
    orderedAt[i] = BigInt(orderedMs) * 1000n + BigInt(i % 1000)
    shipDate[i] = Math.floor(orderedMs / 86_400_000) + 1 + Math.floor(next() * 10)
    amounts[i] = BigInt(Math.floor(next() * 10_000_000)) * (i % 17 === 0 ? -1n : 1n)
    skus[i] = `SKU-${Math.floor(next() * 2 ** 31).toString(36)}`
    skuBytes += skus[i]!.length // ASCII
    skuOffsets[i + 1] = skuBytes
  }
  const skuData = new TextEncoder().encode(skus.join(""))
  const customerBits = validity(customerValid)
  const discountBits = validity(discountValid)
  const regionType = new Arrow.Dictionary(new Arrow.Utf8(), new Arrow.Int8())
  const columns: Array<[Arrow.Field, Arrow.Data]> = [
    [field("id", new Arrow.Int64(), false), vector(new Arrow.Int64(), { length: rows, data: id })],
    [
      field("customer_id", new Arrow.Int32(), true),
      vector(new Arrow.Int32(), { length: rows, data: customer, ...customerBits })
    ],
    [field("price", new Arrow.Float64(), false), vector(new Arrow.Float64(), { length: rows, data: price })],
    [
      field("discount", new Arrow.Float32(), true),
      vector(new Arrow.Float32(), { length: rows, data: discount, ...discountBits })
    ],
    [field("in_stock", new Arrow.Bool(), false), vector(new Arrow.Bool(), { length: rows, data: inStock })],
    [
      field("sku", new Arrow.Utf8(), false),
      vector(new Arrow.Utf8(), { length: rows, valueOffsets: skuOffsets, data: skuData })
    ],
    [
      field("region", regionType, false),
      vector(regionType, {
        length: rows,
        data: region,
        dictionary: Arrow.vectorFromArray(regions, new Arrow.Utf8())
      })
    ],
    [
      field("ordered_at", new Arrow.TimestampMicrosecond("UTC"), false),
      vector(new Arrow.TimestampMicrosecond("UTC"), { length: rows, data: orderedAt })
    ],
    [field("ship_date", new Arrow.DateDay(), false), vector(new Arrow.DateDay(), { length: rows, data: shipDate })],
    [
      field("amount", new Arrow.Decimal(2, 18, 128), false),
      vector(new Arrow.Decimal(2, 18, 128), { length: rows, data: decimalWords(amounts, 128) })
    ]
  ]
  const schema = new Arrow.Schema(columns.map(([f]) => f), new Map([["generator", "s3cache mixedTable v1"]]))
  const data = Arrow.makeData({
    type: new Arrow.Struct(schema.fields),
    length: rows,
    nullCount: 0,
    children: columns.map(([, d]) => d)
  })
  return new Arrow.Table(schema, [new Arrow.RecordBatch(schema, data)])
}
