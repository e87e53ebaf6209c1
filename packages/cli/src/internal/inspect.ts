/**
 * `s3cache inspect`: one entry's record, and whether its payload is there and matches the record's checksum.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { BlobStore } from "@s3cache/core/BlobStore"
import { Cache } from "@s3cache/core/Cache"
import * as CacheKey from "@s3cache/core/CacheKey"
import type { EntryRecord } from "@s3cache/core/MetadataStore"
import { MetadataStore } from "@s3cache/core/MetadataStore"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as crypto from "node:crypto"
import * as Connection from "./connection.js"
import * as Entry from "./entry.js"
import * as Format from "./format.js"

/** What was found of the payload. */
export interface PayloadCheck {
  /** `inline` (in the record) or `object` (in the blob store) */
  readonly kind: "inline" | "object"
  readonly objectKey: string
  readonly exists: boolean
  readonly size: number | null
  readonly sizeMatches: boolean | null
  readonly checksumMatches: boolean | null
  /** the object key names this entry and this store */
  readonly belongs: boolean | null
}

const sha256 = (bytes: Uint8Array) => `sha256:${crypto.createHash("sha256").update(bytes).digest("hex")}`

const checkPayload = (record: EntryRecord) =>
  Effect.gen(function*() {
    if (record.objectKey === "") {
      const payload = record.payload
      return {
        kind: "inline",
        objectKey: "",
        exists: payload !== undefined,
        size: payload?.length ?? null,
        sizeMatches: payload === undefined ? null : payload.length === record.storedSize,
        checksumMatches: payload === undefined ? null : sha256(payload) === record.checksum,
        belongs: null
      } satisfies PayloadCheck
    }
    const storeId = yield* (yield* MetadataStore).id
    const parsed = CacheKey.parseObjectKey(record.objectKey)
    const object = yield* (yield* BlobStore).get(record.objectKey)
    return {
      kind: "object",
      objectKey: record.objectKey,
      exists: Option.isSome(object),
      size: Option.match(object, { onNone: () => null, onSome: (bytes) => bytes.length }),
      sizeMatches: Option.match(object, { onNone: () => null, onSome: (bytes) => bytes.length === record.storedSize }),
      checksumMatches: Option.match(object, {
        onNone: () => null,
        onSome: (bytes) => sha256(bytes) === record.checksum
      }),
      belongs: parsed !== undefined && parsed.hash === record.hash && parsed.namespace === record.namespace &&
        parsed.storeId === storeId
    } satisfies PayloadCheck
  })

const isSound = (check: PayloadCheck) =>
  check.exists && check.sizeMatches === true && check.checksumMatches === true && check.belongs !== false

/** The record without its inline bytes (their size and checksum say enough). */
const shown = (record: EntryRecord) => {
  const { payload: _, ...rest } = record
  return rest
}

const describeRecord = (record: EntryRecord, check: PayloadCheck, now: number): string => {
  const left = record.createdAt + record.ttlMs - now
  const grace = record.graceMs ?? 0
  const payload = check.kind === "inline"
    ? `inline in the record (${Format.bytes(check.size ?? 0)})`
    : `object ${check.objectKey}`
  const verdict = !check.exists
    ? "MISSING: the record points at an object that is not there (the next call is a miss and drops the record)"
    : check.sizeMatches !== true
    ? `SIZE MISMATCH: ${check.size} bytes stored, the record says ${record.storedSize}`
    : check.checksumMatches !== true
    ? "CHECKSUM MISMATCH: the stored bytes are not those the record sealed (the next call is a miss)"
    : check.belongs === false
    ? "FOREIGN OBJECT KEY: the object key names another entry or store"
    : "present, size and checksum match"
  return Format.table([
    ["namespace", record.namespace],
    ["hash", record.hash],
    ["key", record.keyPreview],
    ["format", `${record.format} (codec version ${record.codecVersion}), compression ${record.compression}`],
    ["size", `${Format.bytes(record.storedSize)} stored, ${Format.bytes(record.rawSize)} raw`],
    ["checksum", record.checksum],
    ["created", `${Format.time(record.createdAt)} (${Format.span(now - record.createdAt)} ago)`],
    [
      "ttl",
      `${Format.span(record.ttlMs)} (${
        left >= 0 ? `${Format.span(left)} left` : `expired ${Format.span(-left)} ago: stale`
      })${grace > 0 ? `, then a grace of ${Format.span(grace)}` : ""}`
    ],
    ["payload", payload],
    ["check", verdict]
  ])
}

export const command = Command.make(
  "inspect",
  {
    ...Connection.options,
    key: Args.text({ name: "key" }).pipe(
      Args.withDescription("the cache key, as the application passes it (a string key)"),
      Args.optional
    ),
    keyJson: Entry.keyJson,
    hash: Options.text("hash").pipe(Options.withDescription("the entry hash instead of the key"), Options.optional),
    namespace: Entry.namespace(
      "the entry's namespace (default for a key: S3CACHE_NAMESPACE, else \"default\"; for --hash: every namespace)"
    )
  },
  (input) =>
    Effect.gen(function*() {
      const cache = yield* Cache
      const metadata = yield* MetadataStore
      const key = yield* Entry.keyOf(input.key, input.keyJson, "a key")
      if (Option.isSome(key) === Option.isSome(input.hash)) {
        return yield* new Connection.CliError({ message: "give a key (or --key-json) or --hash, one of them" })
      }
      let hash: string
      let namespaces: ReadonlyArray<string>
      if (Option.isSome(input.hash)) {
        hash = input.hash.value
        if (!CacheKey.isHash(hash)) {
          return yield* new Connection.CliError({
            message: `--hash ${JSON.stringify(hash.slice(0, 80))} is not an entry hash (64 lowercase hex)`
          })
        }
        namespaces = Option.isSome(input.namespace) ? [input.namespace.value] : yield* metadata.namespaces
      } else {
        const namespace = Option.getOrElse(input.namespace, () => cache.config.namespace)
        hash = yield* cache.hashKey(Option.getOrThrow(key), namespace)
        namespaces = [namespace]
      }
      const found: Array<EntryRecord> = []
      for (const namespace of namespaces) {
        const [record] = yield* metadata.getMany(namespace, [hash])
        if (record !== undefined && Option.isSome(record)) found.push(record.value)
      }
      if (found.length === 0) {
        yield* Format.exitWithProblem
        return yield* Format.output(
          input.json,
          { found: false, hash, namespaces },
          () =>
            `no live entry of hash ${hash} in ${namespaces.length === 1 ? "namespace" : "namespaces"} ${
              namespaces.join(", ") || "(none known)"
            }`
        )
      }
      const now = Date.now()
      const entries = yield* Effect.forEach(found, (record) =>
        Effect.map(checkPayload(record), (payload) => ({
          record,
          payload,
          ok: isSound(payload),
          expiresInMs: record.createdAt + record.ttlMs - now
        })))
      if (entries.some((entry) => !entry.ok)) yield* Format.exitWithProblem
      yield* Format.output(
        input.json,
        {
          found: true,
          entries: entries.map((entry) => ({ ...entry, record: shown(entry.record) }))
        },
        () => entries.map((entry) => describeRecord(entry.record, entry.payload, now)).join("\n\n")
      )
    }).pipe(Connection.provide(input, Connection.layer(input)))
).pipe(Command.withDescription("one entry: its record, TTL left, and whether its payload exists and matches"))
