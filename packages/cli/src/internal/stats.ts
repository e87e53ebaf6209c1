/**
 * `s3cache stats`: what the stores hold, per namespace, read from the records (not from one process's counters).
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import type { EntryRecord } from "@s3cache/core/MetadataStore"
import { MetadataStore } from "@s3cache/core/MetadataStore"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Connection from "./connection.js"
import * as Format from "./format.js"

/** One namespace's entries. Times are epoch ms; `null` when the namespace has no live entry. */
export interface NamespaceStats {
  readonly namespace: string
  readonly entries: number
  /** entries whose payload is kept in the record */
  readonly inline: number
  /** entries whose payload is an object in the blob store */
  readonly objects: number
  /** stored bytes (compressed), inline and objects */
  readonly storedBytes: number
  /** the encoded values' bytes before compression */
  readonly rawBytes: number
  readonly oldest: number | null
  readonly newest: number | null
}

const empty = (namespace: string) => ({
  namespace,
  entries: 0,
  inline: 0,
  objects: 0,
  storedBytes: 0,
  rawBytes: 0,
  oldest: null as number | null,
  newest: null as number | null
})

/** Reads every live record of a namespace once (a scan may repeat one: counted by hash). */
export const namespaceStats = (namespace: string) =>
  Effect.gen(function*() {
    const store = yield* MetadataStore
    if (store.scan === undefined) {
      return yield* new Connection.CliError({ message: "this metadata store cannot list its entries (no scan)" })
    }
    const seen = new Set<string>()
    const stats = empty(namespace)
    yield* Stream.runForEach(store.scan(namespace), (record: EntryRecord) =>
      Effect.sync(() => {
        if (seen.has(record.hash)) return
        seen.add(record.hash)
        stats.entries++
        if (record.objectKey === "") stats.inline++
        else stats.objects++
        stats.storedBytes += record.storedSize
        stats.rawBytes += record.rawSize
        stats.oldest = stats.oldest === null ? record.createdAt : Math.min(stats.oldest, record.createdAt)
        stats.newest = stats.newest === null ? record.createdAt : Math.max(stats.newest, record.createdAt)
      }))
    return stats satisfies NamespaceStats
  })

const total = (all: ReadonlyArray<NamespaceStats>): NamespaceStats =>
  all.reduce<NamespaceStats>((sum, ns) => ({
    namespace: "(all)",
    entries: sum.entries + ns.entries,
    inline: sum.inline + ns.inline,
    objects: sum.objects + ns.objects,
    storedBytes: sum.storedBytes + ns.storedBytes,
    rawBytes: sum.rawBytes + ns.rawBytes,
    oldest: ns.oldest === null ? sum.oldest : sum.oldest === null ? ns.oldest : Math.min(sum.oldest, ns.oldest),
    newest: ns.newest === null ? sum.newest : sum.newest === null ? ns.newest : Math.max(sum.newest, ns.newest)
  }), empty("(all)"))

const row = (ns: NamespaceStats, now: number) => [
  ns.namespace,
  String(ns.entries),
  String(ns.inline),
  String(ns.objects),
  Format.bytes(ns.storedBytes),
  Format.bytes(ns.rawBytes),
  ns.oldest === null ? "-" : `${Format.span(now - ns.oldest)} ago`,
  ns.newest === null ? "-" : `${Format.span(now - ns.newest)} ago`
]

export const command = Command.make(
  "stats",
  {
    ...Connection.options,
    namespace: Options.text("namespace").pipe(
      Options.withDescription("only this namespace (default: every namespace the store knows)"),
      Options.optional
    )
  },
  (connection) =>
    Effect.gen(function*() {
      const store = yield* MetadataStore
      const names = Option.isSome(connection.namespace)
        ? [connection.namespace.value]
        : [...(yield* store.namespaces)].sort()
      const namespaces = yield* Effect.forEach(names, namespaceStats, { concurrency: 4 })
      const all = total(namespaces)
      const now = Date.now()
      yield* Format.output(
        connection.json,
        { ...Connection.describe(connection), namespaces, total: all },
        () => {
          const where = Connection.describe(connection)
          const header = `metadata: ${where.metadata}\npayloads: ${where.payloads}\n`
          if (namespaces.length === 0) return `${header}\nno namespace holds entries`
          const rows = [
            ["namespace", "entries", "inline", "objects", "stored", "raw", "oldest", "newest"],
            ...namespaces.map((ns) => row(ns, now)),
            ...(namespaces.length > 1 ? [row(all, now)] : [])
          ]
          return `${header}\n${Format.table(rows)}`
        }
      )
    }).pipe(Connection.provide(connection, Connection.metadataLayer(connection)))
).pipe(Command.withDescription(
  "entries, stored bytes, inline and object payloads, oldest and newest entry, per namespace (from the stores)"
))
