// `pnpm release [--dry-run]`: build, pack and check every library package (scripts/pack.mjs), then publish them to
// npm. The versions move together (one `fixed` group in .changeset/config.json); `pnpm changeset version` bumps
// them and writes each CHANGELOG.md from the pending changesets first. With --dry-run nothing is published:
// `pnpm publish --dry-run` shows what would be.
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const dryRun = process.argv.includes("--dry-run")
const libraries = ["core", "redis", "s3", "arrow", "cli"]

const run = (command, args) => execFileSync(command, args, { cwd: root, stdio: "inherit" })
const fail = (message) => {
  console.error(`release: ${message}`)
  process.exit(1)
}

const manifests = libraries.map((library) =>
  JSON.parse(fs.readFileSync(path.join(root, "packages", library, "package.json"), "utf8"))
)
const versions = new Set(manifests.map((manifest) => manifest.version))
if (versions.size !== 1) {
  fail(`the packages' versions differ (${manifests.map((m) => `${m.name}@${m.version}`).join(", ")})`)
}
const [version] = versions

const pending = fs.readdirSync(path.join(root, ".changeset")).filter((file) =>
  file.endsWith(".md") && file !== "README.md"
)
if (pending.length > 0) {
  const message = `${pending.length} changeset(s) not applied yet (${
    pending.join(", ")
  }): run \`pnpm changeset version\``
  if (!dryRun) fail(message)
  console.warn(`release: ${message} before a real release; it would give these versions:`)
  run("pnpm", ["changeset", "status", "--verbose"])
}

console.log(`release: ${dryRun ? "dry run of " : ""}version ${version}`)
run("pnpm", ["build"])
run("node", ["scripts/pack.mjs", path.join(root, "packed")])
const publish = ["publish", "--recursive", "--access", "public", "--filter", "./packages/*"]
if (dryRun) run("pnpm", [...publish, "--dry-run", "--no-git-checks"])
else {
  run("pnpm", publish)
  run("pnpm", ["changeset", "tag"])
}
