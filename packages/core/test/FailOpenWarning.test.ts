/**
 * The warning a store failure gives when a call falls back to its effect is one line that says what failed (the
 * store, the operation, the reason and message) and what the cache did; the whole cause goes to the debug level.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import { BlobStoreError, MetadataStoreError } from "../src/CacheError.js"
import { makeHarness } from "./utils/harness.js"

interface Entry {
  readonly level: LogLevel.LogLevel
  readonly message: string
  readonly cause: Cause.Cause<unknown>
  /** the entry as the logfmt logger writes it */
  readonly line: string
}

const capturing = <A, E, R>(effect: (logs: Array<Entry>) => Effect.Effect<A, E, R>) => {
  const logs: Array<Entry> = []
  const logger = Logger.make((options) => {
    const { cause, logLevel, message } = options
    logs.push({
      level: logLevel,
      message: Array.isArray(message) ? message.map(String).join(" ") : String(message),
      cause,
      line: Logger.logfmtLogger.log(options)
    })
  })
  return effect(logs).pipe(
    Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
    Logger.withMinimumLogLevel(LogLevel.Debug)
  )
}

const warnings = (logs: ReadonlyArray<Entry>) => logs.filter((entry) => entry.level === LogLevel.Warning)

describe("the fail-open warning", () => {
  it.scoped("is one line naming the store, operation and reason; the cause is logged at debug level", () =>
    capturing((logs) =>
      Effect.gen(function*() {
        const { cache } = yield* makeHarness({
          metadata: () => ({
            lookup: () =>
              Effect.fail(
                new MetadataStoreError({
                  reason: "Unavailable",
                  method: "lookup",
                  // drivers' messages may span lines
                  description: "connect ECONNREFUSED 127.0.0.1:6379\n    at TCPConnectWrap.afterConnect"
                })
              )
          })
        })
        assert.strictEqual(yield* cache.cached(Effect.succeed(1), { key: "k" }), 1)

        const [warning, ...more] = warnings(logs)
        assert.isDefined(warning, "a warning was logged")
        assert.lengthOf(more, 0)
        assert.notInclude(warning!.message, "\n")
        assert.notInclude(warning!.line, "\n", warning!.line)
        assert.include(warning!.message, "MetadataStore.lookup")
        assert.include(warning!.message, "Unavailable")
        assert.include(warning!.message, "ECONNREFUSED 127.0.0.1:6379 at TCPConnectWrap")
        assert.include(warning!.message, "the effect runs uncached")
        assert.isTrue(Cause.isEmpty(warning!.cause), "the warning carries no cause")

        const debug = logs.find((entry) => entry.level === LogLevel.Debug && !Cause.isEmpty(entry.cause))
        assert.isDefined(debug, "the cause is logged at debug level")
        assert.strictEqual(debug!.message, warning!.message)
        const failure = Cause.failureOption(debug!.cause)
        assert.strictEqual(failure._tag, "Some")
        assert.instanceOf((failure as { readonly value: unknown }).value, MetadataStoreError)
      })
    ))

  it.scoped("a blob store's failure and a defect: one line each", () =>
    capturing((logs) =>
      Effect.gen(function*() {
        const { cache } = yield* makeHarness({
          blobs: () => ({
            put: (key) =>
              Effect.fail(new BlobStoreError({ reason: "Timeout", method: "put", key, description: "no answer" }))
          })
        })
        yield* cache.cached(Effect.succeed({ rows: [1, 2, 3] }), { key: "k" })
        yield* cache.flush
        const { cache: dying } = yield* makeHarness({
          metadata: () => ({ lookup: () => Effect.die(new Error("boom\nsecond line of the defect")) })
        })
        yield* dying.cached(Effect.succeed(1), { key: "k" })

        const all = warnings(logs)
        assert.lengthOf(all, 2, all.map((entry) => entry.line).join("\n"))
        const [put, defect] = all
        assert.include(put!.message, "persist failed; the value was returned but not stored")
        assert.include(put!.message, "Timeout: BlobStore.put")
        assert.include(defect!.message, "lookup failed; the effect runs uncached: Error: boom")
        for (const entry of all) {
          assert.notInclude(entry.line, "\n", entry.line)
          assert.isTrue(Cause.isEmpty(entry.cause))
        }
        const causes = logs.filter((entry) => entry.level === LogLevel.Debug && !Cause.isEmpty(entry.cause))
        assert.isAtLeast(causes.length, 2)
        assert.isTrue(causes.some((entry) => Cause.isDie(entry.cause)), "the defect's cause is kept at debug level")
      })
    ))
})
