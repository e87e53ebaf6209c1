/**
 * The entry record as Redis holds it: a HASH of strings, written from a record and read back through a schema, so a
 * record someone wrote by hand, or an older version left, reads as malformed rather than as a wrong value.
 *
 * @since 0.1.0
 */
import type { EntryRecord } from "@s3cache/core/MetadataStore"
import { EntryRecord as EntryRecordSchema } from "@s3cache/core/MetadataStore"
import * as Schema from "effect/Schema"
import { Either } from "./effect3.js"

/** Entries are read and written as strings; numbers are parsed back through the schema. */
const RecordFromStrings = Schema.Struct({
  hash: Schema.String,
  namespace: Schema.String,
  objectKey: Schema.String,
  format: Schema.String,
  compression: Schema.String,
  rawSize: Schema.NumberFromString,
  storedSize: Schema.NumberFromString,
  checksum: Schema.String,
  createdAt: Schema.NumberFromString,
  ttlMs: Schema.NumberFromString,
  codecVersion: Schema.NumberFromString,
  keyPreview: Schema.String
})
const decodeRecord = Schema.decodeUnknownEither(RecordFromStrings)
const fieldNames = Object.keys(EntryRecordSchema.fields) as ReadonlyArray<keyof EntryRecord & string>

/**
 * A record as the fields of a Redis HASH: name, value, name, value, ….
 *
 * @internal
 */
export const toFields = (record: EntryRecord): Array<string> =>
  fieldNames.flatMap((name) => [name, String(record[name])])

/** A record as read: decoded, or malformed with the raw object key that `removeIf` needs to drop exactly it. */
/** @internal */
export type Read =
  | { readonly _tag: "Record"; readonly record: EntryRecord }
  | { readonly _tag: "Malformed"; readonly objectKey: string; readonly description: string }

/** @internal */
export type Malformed = Extract<Read, { readonly _tag: "Malformed" }>

/**
 * The reply of HGETALL as a record, or as malformed (a missing field, a size that is not a number).
 *
 * @internal
 */
export const readFields = (reply: ReadonlyArray<unknown>): Read => {
  const fields: Record<string, unknown> = {}
  for (let i = 0; i + 1 < reply.length; i += 2) fields[String(reply[i])] = reply[i + 1]
  return Either.match(decodeRecord(fields), {
    onLeft: (error) => ({
      _tag: "Malformed",
      objectKey: typeof fields.objectKey === "string" ? fields.objectKey : "",
      description: error.message
    }),
    onRight: (record) => ({ _tag: "Record", record })
  })
}
