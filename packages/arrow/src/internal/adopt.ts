/**
 * Re-home a table made by another copy of apache-arrow into this copy's classes, without copying its buffers.
 *
 * Why: apache-arrow 21 makes `instanceof Table` (and `RecordBatch`, `Schema`, `Field`, `Data`, `Vector`) true across
 * copies, but deliberately not `instanceof DataType`, and its IPC writer dispatches on `instanceof DataType`. Handed
 * a table of another copy, `tableToIPC` returns without an error and writes a stream that no reader can open (the
 * schema message comes out wrong). A database client that bundles its own apache-arrow hands out exactly such
 * tables, so they are rebuilt here: new schema, field, type and `Data` objects of this copy around the very same
 * typed arrays. The cost is one small object per column chunk; no value is copied.
 *
 * Only stable, documented properties are read (`typeId` and the type parameters, `Data`'s `offset`, `length`,
 * `nullCount`, `valueOffsets`, `values`, `nullBitmap`, `typeIds`, `children`, `dictionary`), which every
 * apache-arrow since 9 has, so older copies that carry no cross-copy brand at all are rebuilt the same way.
 *
 * @since 0.1.0
 */
import * as Arrow from "apache-arrow"

/**
 * A type this module cannot rebuild (one newer than this copy of apache-arrow, say).
 *
 * @since 0.1.0
 */
export class UnsupportedType extends Error {
  constructor(readonly type: string) {
    super(`type ${type} of another copy of apache-arrow has no counterpart in this one`)
  }
}

type Foreign = any

/**
 * Does every type of this table's schema belong to this copy of apache-arrow (so its writer can write it as is)?
 *
 * @since 0.1.0
 */
export const isOwnTable = (table: Foreign): table is Arrow.Table =>
  Object.getPrototypeOf(table) === Arrow.Table.prototype &&
  (table.schema.fields as ReadonlyArray<Foreign>).every(isOwnField)

const isOwnField = (field: Foreign): boolean =>
  field instanceof Arrow.Field && field.type instanceof Arrow.DataType &&
  (Arrow.DataType.isDictionary(field.type)
    ? field.type.dictionary instanceof Arrow.DataType && field.type.indices instanceof Arrow.DataType
    : (field.type.children ?? []).every(isOwnField))

/**
 * Rebuild `table` with this copy's classes around the same buffers.
 *
 * @since 0.1.0
 */
export const adoptTable = (table: Foreign): Arrow.Table => {
  // one foreign type → one type of ours: a dictionary's type object is shared by its field and its data, and the
  // writer matches them by identity of their dictionary id
  const types = new Map<Foreign, Arrow.DataType>()

  const metadataOf = (metadata: Foreign): Map<string, string> =>
    metadata instanceof Map ? new Map(metadata as Map<string, string>) : new Map()

  const adoptField = (field: Foreign): Arrow.Field =>
    new Arrow.Field(String(field.name), adoptType(field.type), Boolean(field.nullable), metadataOf(field.metadata))

  const adoptType = (type: Foreign): Arrow.DataType => {
    const known = types.get(type)
    if (known !== undefined) return known
    const adopted = buildType(type)
    types.set(type, adopted)
    return adopted
  }

  const buildType = (t: Foreign): Arrow.DataType => {
    const children = (): Array<Arrow.Field> => (t.children as ReadonlyArray<Foreign>).map(adoptField)
    switch (t.typeId as Arrow.Type) {
      case Arrow.Type.Null:
        return new Arrow.Null()
      case Arrow.Type.Int:
        return new Arrow.Int(t.isSigned, t.bitWidth)
      case Arrow.Type.Float:
        return new Arrow.Float(t.precision)
      case Arrow.Type.Binary:
        return new Arrow.Binary()
      case Arrow.Type.LargeBinary:
        return new Arrow.LargeBinary()
      case Arrow.Type.Utf8:
        return new Arrow.Utf8()
      case Arrow.Type.LargeUtf8:
        return new Arrow.LargeUtf8()
      case Arrow.Type.Bool:
        return new Arrow.Bool()
      case Arrow.Type.Decimal:
        return new Arrow.Decimal(t.scale, t.precision, t.bitWidth ?? 128)
      case Arrow.Type.Date:
        return new Arrow.Date_(t.unit)
      case Arrow.Type.Time:
        return new Arrow.Time(t.unit, t.bitWidth)
      case Arrow.Type.Timestamp:
        return new Arrow.Timestamp(t.unit, t.timezone ?? null)
      case Arrow.Type.Interval:
        return new Arrow.Interval(t.unit)
      case Arrow.Type.Duration:
        return new Arrow.Duration(t.unit)
      case Arrow.Type.FixedSizeBinary:
        return new Arrow.FixedSizeBinary(t.byteWidth)
      case Arrow.Type.List:
        return new Arrow.List(children()[0]!)
      case Arrow.Type.LargeList:
        return new Arrow.LargeList(children()[0]!)
      case Arrow.Type.FixedSizeList:
        return new Arrow.FixedSizeList(t.listSize, children()[0]!)
      case Arrow.Type.Struct:
        return new Arrow.Struct(children())
      case Arrow.Type.Map:
        return new Arrow.Map_(children()[0]!, t.keysSorted)
      case Arrow.Type.Union:
        return new Arrow.Union(t.mode, Array.from(t.typeIds as ArrayLike<number>), children())
      case Arrow.Type.Dictionary:
        return new Arrow.Dictionary(adoptType(t.dictionary), adoptType(t.indices) as any, t.id, t.isOrdered)
      default:
        throw new UnsupportedType(String(t))
    }
  }

  const adoptData = (data: Foreign): Arrow.Data =>
    new Arrow.Data(
      adoptType(data.type),
      data.offset,
      data.length,
      // the getter counts the bitmap when the count is not known yet (-1), rather than passing "unknown" on
      data.nullCount,
      [data.valueOffsets, data.values, data.nullBitmap, data.typeIds] as any,
      (data.children as ReadonlyArray<Foreign>).map(adoptData),
      data.dictionary === undefined || data.dictionary === null ? undefined : adoptVector(data.dictionary),
      data.variadicBuffers ?? []
    )

  const adoptVector = (vector: Foreign): Arrow.Vector =>
    new Arrow.Vector((vector.data as ReadonlyArray<Foreign>).map(adoptData))

  const fields = (table.schema.fields as ReadonlyArray<Foreign>).map(adoptField)
  const schema = new Arrow.Schema(fields, metadataOf(table.schema.metadata))
  const batches = (table.batches as ReadonlyArray<Foreign>).map((batch) =>
    new Arrow.RecordBatch(
      schema,
      new Arrow.Data(
        new Arrow.Struct(fields),
        0,
        batch.numRows,
        0,
        undefined,
        (batch.data.children as ReadonlyArray<Foreign>).map(adoptData)
      ) as Arrow.Data<Arrow.Struct<any>>
    )
  )
  return new Arrow.Table(schema, batches)
}
