/**
 * `s3cache cleanup`: delete the objects no record points at (`Cache.cleanupOrphanedObjects`), with a progress line on
 * a terminal (plain lines otherwise) and the final report.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import type { CleanupReport } from "@s3cache/core/Cache"
import { Cache } from "@s3cache/core/Cache"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Connection from "./connection.js"
import * as Format from "./format.js"

const units: Record<string, Duration.Unit> = {
  ms: "millis",
  s: "seconds",
  m: "minutes",
  min: "minutes",
  h: "hours",
  d: "days",
  w: "weeks"
}

/** `90s`, `15m`, `1h`, `2d`, or Effect's spelling (`1 hour`, `30 minutes`). */
export const parseAge = (text: string): Option.Option<Duration.Duration> => {
  const short = /^(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d|w)$/.exec(text.trim())
  if (short !== null) return Option.some(Duration.decode(`${short[1]} ${units[short[2]!]!}` as Duration.DurationInput))
  const long = /^\d+(?:\.\d+)?\s+(nanos|micros|millis|seconds|minutes|hours|days|weeks)$/.exec(text.trim())
  return long === null ? Option.none() : Option.some(Duration.decode(text.trim() as Duration.DurationInput))
}

const summary = (report: CleanupReport) =>
  `listed ${report.listed}: ${report.referenced} referenced, ${report.tooYoung} too young, ${report.foreign} foreign, ` +
  `${report.orphaned} orphaned; ${report.dryRun ? "0 deleted (dry run)" : `${report.deleted} deleted`}` +
  (report.failed > 0 ? `, ${report.failed} failed` : "")

/** A line that rewrites itself on a terminal; one line per batch otherwise. */
const progressReporter = (json: boolean) => {
  const terminal = process.stderr.isTTY === true && !json
  const frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]
  let batch = 0
  let drawn = false
  return {
    progress: (report: CleanupReport) =>
      Effect.sync(() => {
        batch++
        if (terminal) {
          drawn = true
          process.stderr.write(`\r\x1b[2K${frames[batch % frames.length]} batch ${batch}: ${summary(report)}`)
        } else if (!json) {
          process.stderr.write(`cleanup: batch ${batch}: ${summary(report)}\n`)
        }
      }),
    done: Effect.sync(() => {
      if (drawn) process.stderr.write("\r\x1b[2K")
    })
  }
}

export const command = Command.make(
  "cleanup",
  {
    ...Connection.options,
    olderThan: Options.text("older-than").pipe(
      Options.withDescription("the grace age: younger objects are kept (an upload whose record is not written yet)"),
      Options.withDefault("1h")
    ),
    dryRun: Options.boolean("dry-run").pipe(Options.withDescription("report what would be deleted, delete nothing")),
    batchSize: Options.integer("batch-size").pipe(
      Options.withDescription("objects checked and deleted per batch, 1-1000"),
      Options.withDefault(500)
    )
  },
  (input) =>
    Effect.gen(function*() {
      const olderThan = parseAge(input.olderThan)
      if (Option.isNone(olderThan)) {
        return yield* new Connection.CliError({
          message: `--older-than ${JSON.stringify(input.olderThan)} is not an age: write e.g. 90s, 15m, 1h, 2d`
        })
      }
      const reporter = progressReporter(input.json)
      const report = yield* Effect.flatMap(Cache, (cache) =>
        cache.cleanupOrphanedObjects({
          olderThan: olderThan.value,
          dryRun: input.dryRun,
          batchSize: input.batchSize,
          progress: reporter.progress
        })).pipe(Effect.ensuring(reporter.done))
      yield* Format.output(input.json, report, () => `cleanup done: ${summary(report)}`)
      if (report.failed > 0) yield* Format.exitWithProblem
    }).pipe(Connection.provide(input, Connection.layer(input)))
).pipe(Command.withDescription(
  "delete objects that no record points at, older than --older-than (default 1h); --dry-run reports only"
))
