/**
 * Cache keys: what two calls must share to share a cached value.
 *
 * `hash = sha256(encoding ‖ version ‖ namespace ‖ encode(key))`, hex. A string key is trimmed and its runs of white
 * space are collapsed to one space (case is kept), so the same SQL written on one line or five hits the same entry;
 * white space inside quoted literals (`'…'`, `"…"`, `` `…` ``, `$tag$…$tag$`) is kept exactly, and the line break that
 * ends a `--` or `#` comment stays a line break, so two queries that differ in meaning never share an entry. Any
 * other key gets a stable, type-tagged encoding: record keys are sorted (`{a:1,b:2}` and `{b:2,a:1}` hash the same),
 * `1`, `"1"` and `1n` differ, Dates, Maps, Sets and byte arrays have their own tags. Strings *inside* a structured
 * key are kept exactly: only a whole-string key is a "query" to normalize.
 *
 * @since 0.1.0
 */
import "./internal/effectVersion.js"
import * as crypto from "node:crypto"
import { CacheInputError } from "./CacheError.js"
import { Either } from "./internal/effect3.js"

/**
 * What a key may be made of: strings, numbers, bigints, booleans, `null`, Dates, byte arrays, and arrays, plain
 * records (`undefined` fields are left out, as JSON does), Maps and Sets of those. A record type declared with
 * `interface` has no index signature and is refused by the type checker: declare it with `type`, or spread it
 * (`{ ...filter }`).
 *
 * @since 0.1.0
 * @category models
 */
export type CacheKey =
  | string
  | number
  | bigint
  | boolean
  | null
  | Date
  | Uint8Array
  | ReadonlyArray<CacheKey>
  | { readonly [field: string]: CacheKey | undefined }
  | ReadonlyMap<CacheKey, CacheKey>
  | ReadonlySet<CacheKey>

/**
 * The namespace used when none is given.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultNamespace = "default"

/**
 * The default `keyVersion` of a cache: change it to start from an empty cache.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultVersion = "1"

/**
 * Bumped by s3cache when the key encoding changes, so an entry is never read under a new meaning: 2 keeps white space
 * inside quoted literals (1 collapsed it, so `'a  b'` and `'a b'` shared an entry).
 *
 * @since 0.1.0
 * @category constants
 */
export const encodingVersion = "2"

const namespacePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/

/**
 * A namespace is 1–64 characters of `[A-Za-z0-9_.-]`, starting with a letter or digit. It becomes part of Redis
 * keys (`qc:{ns}:e:<hash>`) and object keys (`<prefix>/<ns>/…`), so characters such as `*`, `{`, `}`, `:` or `/`
 * could reach another namespace's keys or hash slot; they are refused.
 *
 * @since 0.1.0
 * @category validation
 */
export const validateNamespace = (namespace: string, method: string): Either.Either<string, CacheInputError> =>
  typeof namespace === "string" && namespacePattern.test(namespace)
    ? Either.right(namespace)
    : Either.left(
      new CacheInputError({
        reason: "InvalidNamespace",
        method,
        description: `namespace ${preview(String(namespace), 40)} is not allowed: use 1-64 characters of ` +
          "letters, digits, '_', '.' or '-', starting with a letter or digit"
      })
    )

/**
 * Whitespace normalization of a string key: trim, collapse each run of white space to one space, keep case, outside
 * quoted literals only. White space inside `'…'`, `"…"` and `` `…` `` (a doubled quote stays inside), inside
 * dollar-quoted bodies (`$$…$$`, `$tag$…$tag$`) and inside block comments (where a quote opens nothing) is kept
 * exactly; a run of white space that ends a `--` or `#` line comment becomes one line break, since a space
 * there would pull the next line into the comment. Where the quoting
 * is unclear (a backslash inside a literal, which some databases read as an escape and others not, or a literal
 * that never ends), the rest of the key is kept as it is: normalizing less costs a miss, never a wrong value.
 *
 * @since 0.1.0
 * @category encoding
 */
export const normalize = (key: string): string => {
  const text = key.trim()
  let out = ""
  let i = 0
  let lineComment = false
  while (i < text.length) {
    const char = text[i]!
    if (isSpace(char)) {
      let j = i
      let newline = false
      while (j < text.length && isSpace(text[j]!)) {
        if (text[j] === "\n" || text[j] === "\r") newline = true
        j++
      }
      if (lineComment && newline) {
        out += "\n"
        lineComment = false
      } else {
        out += " "
      }
      i = j
      continue
    }
    if (lineComment) {
      out += char
      i++
      continue
    }
    if (char === "'" || char === "\"" || char === "`") {
      const end = closingQuote(text, i)
      if (end < 0) return out + text.slice(i)
      out += text.slice(i, end + 1)
      i = end + 1
      continue
    }
    if (char === "$") {
      const tag = /^\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$/.exec(text.slice(i, i + 66))
      if (tag !== null) {
        const end = text.indexOf(tag[0], i + tag[0].length)
        if (end < 0) return out + text.slice(i)
        out += text.slice(i, end + tag[0].length)
        i = end + tag[0].length
        continue
      }
    }
    if (char === "/" && text[i + 1] === "*") {
      // a block comment is kept as it is: a quote inside it opens no literal. Where it does not end, or nests (as
      // PostgreSQL allows), the rest is kept as it is too
      const end = text.indexOf("*/", i + 2)
      if (end < 0 || text.slice(i + 2, end).includes("/*")) return out + text.slice(i)
      out += text.slice(i, end + 2)
      i = end + 2
      continue
    }
    if (char === "#" || (char === "-" && text[i + 1] === "-")) lineComment = true
    out += char
    i++
  }
  return out
}

const isSpace = (char: string): boolean => {
  const code = char.charCodeAt(0)
  return code === 32 || (code >= 9 && code <= 13) || (code > 127 && /\s/.test(char))
}

/** The index of the quote that closes the literal opened at `start`, or -1 when the literal is unclear or open. */
const closingQuote = (text: string, start: number): number => {
  const quote = text[start]!
  for (let i = start + 1; i < text.length; i++) {
    const char = text[i]!
    if (char === "\\") return -1
    if (char === quote) {
      // a doubled quote is an escaped quote inside the literal
      if (text[i + 1] === quote) {
        i++
        continue
      }
      return i
    }
  }
  return -1
}

/**
 * The canonical text of a key, as hashed. Fails for keys that have no stable encoding (functions, symbols, cycles,
 * invalid dates, class instances without `toJSON`).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = (key: CacheKey, method = "CacheKey.encode"): Either.Either<string, CacheInputError> => {
  if (typeof key === "string") {
    return Either.right(JSON.stringify(normalize(key)))
  }
  if (key === undefined) {
    return Either.left(
      new CacheInputError({
        reason: "InvalidKey",
        method,
        description: "the key is undefined (a missing argument?); pass a string or a structured key"
      })
    )
  }
  try {
    return Either.right(encodeValue(key, new Set()))
  } catch (error) {
    return Either.left(
      new CacheInputError({
        reason: "InvalidKey",
        method,
        description: error instanceof KeyEncodingError
          ? `${error.message}; use strings, numbers, bigints, booleans, null, Dates, byte arrays, and arrays, ` +
            "records, Maps or Sets of those"
          : "the key could not be encoded",
        cause: error
      })
    )
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface HashOptions {
  readonly namespace?: string | undefined
  readonly version?: string | undefined
}

// One-shot `crypto.hash` (Node 20.12+) is about twice as fast as a `Hash` object for a key; the same digest.
const sha256Hex: (text: string) => string = typeof crypto.hash === "function"
  ? (text) => crypto.hash("sha256", text, "hex")
  : (text) => crypto.createHash("sha256").update(text).digest("hex")

/**
 * The entry hash of a key in a namespace (sha256, 64 hex characters).
 *
 * @example
 * import { CacheKey } from "@s3cache/core"
 * import * as Either from "effect/Either"
 *
 * const a = CacheKey.hash("SELECT *\n  FROM users", { namespace: "reports" })
 * const b = CacheKey.hash("  SELECT * FROM users ", { namespace: "reports" })
 * console.log(Either.getOrThrow(a).hash === Either.getOrThrow(b).hash) // true
 *
 * @since 0.1.0
 * @category encoding
 */
export const hash = (
  key: CacheKey,
  options: HashOptions = {},
  method = "CacheKey.hash"
): Either.Either<{ readonly hash: string; readonly preview: string }, CacheInputError> =>
  Either.flatMap(
    validateNamespace(options.namespace ?? defaultNamespace, method),
    (namespace) =>
      Either.map(encode(key, method), (encoded) => ({
        hash: sha256Hex(
          `${encodingVersion}\u0000${options.version ?? defaultVersion}\u0000${namespace}\u0000${encoded}`
        ),
        preview: preview(typeof key === "string" ? normalize(key) : encoded, 200)
      }))
  )

/**
 * Is `text` an entry hash as `hash` makes them (64 lowercase hex characters)? Stores check what they are given,
 * since a hash becomes part of their keys.
 *
 * @since 0.1.0
 * @category validation
 */
export const isHash = (text: string): boolean => hashPattern.test(text)

const hashPattern = /^[0-9a-f]{64}$/

/**
 * Is `id` usable as the store id that starts every object key (`MetadataStore.id`)?
 *
 * @since 0.1.0
 * @category validation
 */
export const isStoreId = (id: string): boolean => storeIdPattern.test(id)

const storeIdPattern = /^[A-Za-z0-9_-]{8,64}$/

/**
 * The object key of one write of an entry: `<store id>/<ns>/<hash[0..2]>/<hash>-<writeId>`. The store id names the
 * metadata store whose records reference the object, so orphan cleanup judges only its own objects; the hash proves
 * which entry the object belongs to; a new `writeId` per write means a reader holding an old record never reads half
 * of a new object, and concurrent writers never clobber each other.
 *
 * @since 0.1.0
 * @category encoding
 */
export const objectKey = (storeId: string, namespace: string, hash: string, writeId: string): string =>
  `${storeId}/${namespace}/${hash.slice(0, 2)}/${hash}-${writeId}`

/**
 * The inverse of `objectKey`, for orphan cleanup and for checking that a record belongs to its entry; temporary
 * files of an interrupted write (`<hash>-<writeId>.tmp-…`) parse too, to the entry they belonged to.
 *
 * @since 0.1.0
 * @category encoding
 */
export const parseObjectKey = (
  key: string
): {
  readonly storeId: string
  readonly namespace: string
  readonly hash: string
  readonly complete: boolean
} | undefined => {
  const match = objectKeyPattern.exec(key)
  if (match === null || !namespacePattern.test(match[2]!) || match[4]!.slice(0, 2) !== match[3]) return undefined
  return { storeId: match[1]!, namespace: match[2]!, hash: match[4]!, complete: match[5] === undefined }
}

const objectKeyPattern =
  /^([A-Za-z0-9_-]{8,64})\/([^/]+)\/([0-9a-f]{2})\/([0-9a-f]{64})-[A-Za-z0-9_-]+(\.tmp-[A-Za-z0-9_-]+)?$/

const preview = (text: string, max: number): string => text.length > max ? `${text.slice(0, max - 1)}…` : text

class KeyEncodingError extends Error {}

const encodeValue = (value: unknown, seen: Set<object>): string => {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value)
    case "number":
      // -0 and 0 are the same key; NaN and ±Infinity get a spelling JSON lacks
      return `n:${Object.is(value, -0) ? "0" : String(value)}`
    case "bigint":
      return `b:${value}`
    case "boolean":
      return value ? "true" : "false"
    case "undefined":
      return "undefined"
    case "function":
    case "symbol":
      throw new KeyEncodingError(`a ${typeof value} cannot be part of a cache key`)
  }
  if (value === null) return "null"
  const object = value as object
  if (seen.has(object)) throw new KeyEncodingError("a cyclic value cannot be a cache key")
  seen.add(object)
  try {
    return encodeObject(object, seen)
  } finally {
    seen.delete(object)
  }
}

const encodeObject = (object: object, seen: Set<object>): string => {
  if (object instanceof Date) {
    if (Number.isNaN(object.getTime())) throw new KeyEncodingError("an invalid Date cannot be part of a cache key")
    return `d:${object.toISOString()}`
  }
  if (object instanceof Uint8Array) {
    return `u8:${Buffer.from(object.buffer, object.byteOffset, object.length).toString("base64")}`
  }
  if (Array.isArray(object)) return `[${object.map((item) => encodeValue(item, seen)).join(",")}]`
  if (object instanceof Map) {
    const entries = Array.from(object, ([k, v]) => `${encodeValue(k, seen)}=>${encodeValue(v, seen)}`).sort()
    return `map{${entries.join(",")}}`
  }
  if (object instanceof Set) return `set{${Array.from(object, (item) => encodeValue(item, seen)).sort().join(",")}}`
  const prototype = Object.getPrototypeOf(object)
  if (prototype !== Object.prototype && prototype !== null) {
    const toJSON = (object as { toJSON?: unknown }).toJSON
    if (typeof toJSON === "function") return `j:${encodeValue(toJSON.call(object), seen)}`
    throw new KeyEncodingError(
      `an instance of ${prototype?.constructor?.name ?? "a class"} has no stable encoding (give it a toJSON method)`
    )
  }
  // properties set to undefined are dropped, as JSON does, so `{ a: 1, b: undefined }` and `{ a: 1 }` agree
  const fields = Object.keys(object)
    .filter((k) => (object as Record<string, unknown>)[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${encodeValue((object as Record<string, unknown>)[k], seen)}`)
  return `{${fields.join(",")}}`
}
