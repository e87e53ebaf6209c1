/**
 * s3cache runs on the Effect 3 line only. This module is the first import of every public module of
 * `@s3cache/core` (and, through them, of the other packages), so that on another `effect` the program stops at
 * start-up with what to do, rather than with a missing module or a `TypeError` deep inside a layer. It can only run
 * first because every module of ours links on Effect 4 too: the Effect 3 modules that Effect 4 removed are taken
 * from the `effect` barrel (see `effect3.ts`).
 *
 * The major is told by what the barrel exports (Effect 4 has no `Either`), which holds in a bundle too, and also when
 * the `effect` in `node_modules` is not the one bundled; `effect/package.json` only gives the version for the
 * message, when it can be read. The minor (^3.22) is the peer range's job, checked when installing.
 *
 * @internal
 */

import * as effect from "effect"
import { createRequire } from "node:module"

const required = "^3.22.0"

const installedVersion = (): string | undefined => {
  try {
    return (createRequire(import.meta.url)("effect/package.json") as { readonly version?: unknown }).version as
      | string
      | undefined
  } catch {
    return undefined
  }
}

const effect3 = typeof (effect as { readonly Either?: unknown }).Either === "object"
if (!effect3) {
  throw new Error(
    `@s3cache/core needs effect 3 (${required}), found effect ${installedVersion() ?? "4 or later"}: s3cache targets ` +
      "the Effect 3 line; install it with `npm install effect@^3.22` (or `pnpm add effect@^3.22`)"
  )
}
