/**
 * The `s3cache` command line: `doctor`, `stats`, `inspect`, `invalidate`, `cleanup`, for a cache whose metadata lives
 * in Redis and whose payloads live in S3 or a local folder. Every command takes `--redis-url`, `--s3-bucket`, … which
 * fall back to the `S3CACHE_*` variables the application's layers read, and `--json` for scripts.
 *
 * @since 0.2.0
 */
import * as Command from "@effect/cli/Command"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Cleanup from "./internal/cleanup.js"
import { messageOf } from "./internal/connection.js"
import * as Doctor from "./internal/doctor.js"
import * as Inspect from "./internal/inspect.js"
import * as Invalidate from "./internal/invalidate.js"
import * as Stats from "./internal/stats.js"

/**
 * The command tree.
 *
 * @since 0.2.0
 * @category commands
 */
export const command = Command.make("s3cache").pipe(
  Command.withDescription("look inside an s3cache cache on Redis and S3, and operate it"),
  Command.withSubcommands([Doctor.command, Stats.command, Inspect.command, Invalidate.command, Cleanup.command])
)

/**
 * Runs the command line on `argv` (as `process.argv`). A failure is printed in one line on stderr and sets the exit
 * code to 1 (2 for a command line that does not parse, whose error `@effect/cli` prints with the help); a problem a
 * command finds (a doctor check, an entry that does not match) sets 1 too.
 *
 * @since 0.2.0
 * @category running
 */
export const run = (argv: ReadonlyArray<string>, version: string) =>
  Command.run(command, { name: "s3cache", version })(argv).pipe(
    Effect.catchAll((error) =>
      ValidationError.isValidationError(error)
        ? Effect.sync(() => {
          process.exitCode = 2
        })
        : Effect.zipRight(
          Console.error(`s3cache: ${messageOf(error)}`),
          Effect.sync(() => {
            process.exitCode = 1
          })
        )
    )
  )
