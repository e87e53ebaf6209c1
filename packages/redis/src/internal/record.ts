/**
 * The entry record as Redis holds it: one STRING, a JSON header line with short field names, then, for an inline
 * record, the payload bytes as they are. One key and one value per entry: a HASH of a dozen fields costs ~600 bytes
 * more per entry (its values outgrow the listpack encoding), and a STRING is read with one GET.
 *
 * Header fields: `o` object key (`""` when inline), `f` format, `c` compression, `r` raw size, `s` stored size, `x`
 * checksum, `t` created at, `l` TTL ms, `g` grace ms (absent: none), `v` codec version, `h` hash, `k` key preview, `i` 1
 * when the payload follows.
 * The namespace is the key's. A record that does not read back (someone wrote the key by hand, a field is missing or
 * of the wrong type) is malformed, never a wrong value.
 *
 * @since 0.2.0
 */
import type { EntryRecord } from "@s3cache/core/MetadataStore"

/** @internal */
export type Read =
  | { readonly _tag: "Record"; readonly record: EntryRecord }
  | { readonly _tag: "Malformed"; readonly objectKey: string; readonly description: string }

/** @internal */
export type Malformed = Extract<Read, { readonly _tag: "Malformed" }>

const newline = 0x0a

/**
 * A record as the value of its STRING key. The namespace is left out: it is part of the key.
 *
 * @internal
 */
export const encode = (record: EntryRecord): Buffer => {
  const header = Buffer.from(
    `${
      JSON.stringify({
        o: record.objectKey,
        f: record.format,
        c: record.compression,
        r: record.rawSize,
        s: record.storedSize,
        x: record.checksum,
        t: record.createdAt,
        l: record.ttlMs,
        ...(record.graceMs !== undefined ? { g: record.graceMs } : {}),
        v: record.codecVersion,
        h: record.hash,
        k: record.keyPreview,
        ...(record.payload !== undefined ? { i: 1 } : {})
      })
    }\n`
  )
  return record.payload === undefined ? header : Buffer.concat([header, record.payload])
}

const isNumber = (u: unknown): u is number => typeof u === "number" && Number.isFinite(u)

/**
 * The value of a record key as a record of `namespace`, or as malformed with the object key that `removeIf` needs to
 * drop exactly it (`""` when even that does not read).
 *
 * @internal
 */
export const decode = (namespace: string, value: Uint8Array): Read => {
  const malformed = (objectKey: string, description: string): Read => ({ _tag: "Malformed", objectKey, description })
  const end = value.indexOf(newline)
  if (end < 0) return malformed("", "the record has no header line")
  let header: Record<string, unknown>
  try {
    const parsed: unknown = JSON.parse(Buffer.from(value.buffer, value.byteOffset, end).toString("utf8"))
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      return malformed("", "the record's header is not a JSON object")
    }
    header = parsed as Record<string, unknown>
  } catch {
    return malformed("", "the record's header is not JSON")
  }
  const { c, f, g, h, i, k, l, o, r, s, t, v, x } = header
  if (typeof o !== "string") return malformed("", "the record has no object key field (o)")
  if (
    typeof f !== "string" || typeof c !== "string" || typeof x !== "string" || typeof h !== "string" ||
    typeof k !== "string" || !isNumber(r) || !isNumber(s) || !isNumber(t) || !isNumber(l) || !isNumber(v) ||
    (g !== undefined && !isNumber(g))
  ) return malformed(o, "a field of the record's header is missing or of the wrong type")
  const rest = value.byteLength - end - 1
  if (i === undefined && rest !== 0) return malformed(o, "bytes follow a record that has no inline payload")
  if (i !== undefined && (i !== 1 || o !== "" || rest !== s)) {
    return malformed(o, `the inline payload is ${rest} bytes, the record says ${String(s)}, or it has an object key`)
  }
  const record: EntryRecord = {
    hash: h,
    namespace,
    objectKey: o,
    format: f,
    compression: c,
    rawSize: r,
    storedSize: s,
    checksum: x,
    createdAt: t,
    ttlMs: l,
    ...(g !== undefined ? { graceMs: g as number } : {}),
    codecVersion: v,
    keyPreview: k,
    // A view, not a copy: the cache never keeps an inline payload nor hands it out (it copies what it keeps, and
    // decodes values from a copy), so the view holds the reply's buffer only while the call reads it. A plain
    // Uint8Array, as the contract says, not the reply's Buffer.
    ...(i === 1 ? { payload: new Uint8Array(value.buffer, value.byteOffset + end + 1, rest) } : {})
  }
  return { _tag: "Record", record }
}
