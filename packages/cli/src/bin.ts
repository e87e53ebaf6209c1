#!/usr/bin/env node
/**
 * The `s3cache` binary.
 *
 * @since 0.2.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import { createRequire } from "node:module"
import * as Cli from "./Cli.js"

// src/bin.ts in the workspace, dist/src/bin.js once published: the package's manifest is one or two folders up
const require = createRequire(import.meta.url)
const manifest = (["../package.json", "../../package.json"] as const)
  .map((candidate) => {
    try {
      return require(candidate) as { readonly name?: string; readonly version?: string }
    } catch {
      return undefined
    }
  })
  .find((found) => found?.name === "@s3cache/cli")
const version = manifest?.version ?? "unknown"

Cli.run(process.argv, version).pipe(
  Effect.provide(NodeContext.layer),
  // the stores' warnings go to stderr, so that stdout holds only the result (JSON with --json)
  Effect.provide(Logger.replace(Logger.defaultLogger, Logger.withLeveledConsole(Logger.logfmtLogger))),
  // warnings by default; `--log-level debug` (a flag of every command) shows the causes the warnings leave out
  Logger.withMinimumLogLevel(LogLevel.Warning),
  NodeRuntime.runMain({
    disableErrorReporting: true,
    disablePrettyLogger: true,
    // the command is done: exit even if something it gave up on (a file-system call on a hung mount, bounded and
    // abandoned) still holds the event loop; a second is left for stdout to drain
    teardown: (exit, onExit) => {
      const code = Exit.isFailure(exit) && !Exit.isInterrupted(exit) ? 1 : Number(process.exitCode ?? 0)
      setTimeout(() => process.exit(code), 1000).unref()
      onExit(code)
    }
  })
)
