/**
 * A second, independent copy of apache-arrow, as an application gets when a database client bundles its own: the
 * package's ES modules are copied into a temporary `node_modules` (its dependencies linked, not copied) and imported
 * from there, so Node loads every module again and the copy's classes are not this package's classes.
 */
import type * as Arrow from "apache-arrow"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"

export type ArrowModule = typeof Arrow

const require = createRequire(import.meta.url)

const copyModules = (from: string, to: string): void => {
  fs.mkdirSync(to, { recursive: true })
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name)
    if (entry.isDirectory()) {
      if (entry.name !== "node_modules" && entry.name !== "src") copyModules(source, path.join(to, entry.name))
    } else if (entry.name.endsWith(".mjs") || entry.name === "package.json") {
      fs.copyFileSync(source, path.join(to, entry.name))
    }
  }
}

/** Import a fresh copy of apache-arrow; the copy is deleted when the scope closes. */
export const importSecondCopy: Effect.Effect<ArrowModule, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => {
    const packageDir = path.dirname(require.resolve("apache-arrow"))
    // apache-arrow's own dependencies sit next to it in pnpm's store (or hoisted in node_modules)
    const siblings = path.dirname(fs.realpathSync(packageDir))
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "s3cache-second-arrow-"))
    const modules = path.join(root, "node_modules")
    copyModules(fs.realpathSync(packageDir), path.join(modules, "apache-arrow"))
    for (const name of fs.readdirSync(siblings)) {
      if (name === "apache-arrow" || name.startsWith(".")) continue
      fs.symlinkSync(fs.realpathSync(path.join(siblings, name)), path.join(modules, name), "dir")
    }
    return root
  }),
  (root) => Effect.sync(() => fs.rmSync(root, { recursive: true, force: true }))
).pipe(
  Effect.flatMap((root) =>
    Effect.promise(
      () =>
        import(pathToFileURL(path.join(root, "node_modules", "apache-arrow", "Arrow.node.mjs")).href) as Promise<
          ArrowModule
        >
    )
  )
)
