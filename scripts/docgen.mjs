// Generates the API reference of every library package (those with a docgen.json) into docs/<package>/ with
// @effect/docgen, which also type-checks and runs each package's @example blocks.
//
//   pnpm docgen
//
// docgen writes into packages/<package>/docs/ (its default outDir) and this script moves the result to the root
// docs/ afterwards. An outDir outside the package would break the examples: docgen rewrites a package's imports of
// itself in its examples to `../../src`, relative to <outDir>/examples/. When an example fails, its file stays in
// packages/<package>/docs/examples/ (ignored by git) so the error's file and line can be read.
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const packages = fs.readdirSync(path.join(root, "packages"))
  .filter((name) => fs.existsSync(path.join(root, "packages", name, "docgen.json")))
  .sort()
const concurrency = Math.max(1, Math.min(packages.length, os.availableParallelism()))
// docgen spawns `tsc` and `tsx` by name: the workspace's own
const env = { ...process.env, PATH: `${path.join(root, "node_modules", ".bin")}${path.delimiter}${process.env.PATH}` }

const staging = (name) => path.join(root, "packages", name, "docs")

const run = (name) =>
  new Promise((resolve) => {
    fs.rmSync(staging(name), { recursive: true, force: true })
    const started = Date.now()
    const child = spawn(path.join(root, "node_modules", ".bin", "docgen"), [], {
      cwd: path.join(root, "packages", name),
      env,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.on("data", (chunk) => output += chunk)
    child.stderr.on("data", (chunk) => output += chunk)
    child.on("error", (error) => resolve({ name, ok: false, output: `${output}${error}\n`, seconds: 0 }))
    child.on("close", (code) =>
      resolve({ name, ok: code === 0, output, seconds: ((Date.now() - started) / 1000).toFixed(1) }))
  })

// docgen's printed front matter starts with a blank line, so prettier reads its `---` as a thematic break (printed
// as `***` by recent versions); put the front matter back where Jekyll and GitHub look for it.
const frontMatter = /^(?:\*\*\*|---)\n\n?(title: [^\n]*\nnav_order: \d+\nparent: [^\n]*\n)---\n/
const fixFrontMatter = (file) => {
  const content = fs.readFileSync(file, "utf8")
  const fixed = content.replace(frontMatter, "---\n$1---\n")
  if (!fixed.startsWith("---\ntitle: ")) {
    throw new Error(`${path.relative(root, file)}: unexpected docgen output (no front matter at the top)`)
  }
  fs.writeFileSync(file, fixed)
}

const publish = (name) => {
  const destination = path.join(root, "docs", name)
  fs.rmSync(destination, { recursive: true, force: true })
  fs.mkdirSync(path.dirname(destination), { recursive: true })
  fs.rmSync(path.join(staging(name), "examples"), { recursive: true, force: true })
  fs.renameSync(staging(name), destination)
  for (const file of fs.readdirSync(path.join(destination, "modules"))) {
    if (file.endsWith(".ts.md")) fixFrontMatter(path.join(destination, "modules", file))
  }
}

const results = []
const queue = [...packages]
await Promise.all(Array.from({ length: concurrency }, async () => {
  for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
    const result = await run(name)
    const status = result.ok ? "ok" : "FAILED"
    process.stdout.write(`\n== ${name}: ${status} (${result.seconds} s)\n${result.output.trimEnd()}\n`)
    results.push(result)
  }
}))

const failed = results.filter((result) => !result.ok).map((result) => result.name).sort()
if (failed.length > 0) {
  process.stderr.write(
    `\ndocgen failed for ${failed.join(", ")}; docs/ left as it was. When it got as far as the examples, the ` +
      `files it checked are in ${failed.map((name) => `packages/${name}/docs/examples/`).join(", ")}.\n`
  )
  process.exit(1)
}
packages.forEach(publish)
process.stdout.write(`\nAPI reference written to ${packages.map((name) => `docs/${name}/`).join(", ")}\n`)
