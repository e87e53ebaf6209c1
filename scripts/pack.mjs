// Packs every library package the way it is published and checks each tarball: the build, the sources its maps
// point at, README, LICENSE, package.json (and CHANGELOG.md once there is one), nothing else; no `workspace:`
// range left; every published export present. Prints each tarball's size and files.
//
//   node scripts/pack.mjs [destination]      (default: ./packed; run `pnpm build` first)
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const destination = path.resolve(process.argv[2] ?? path.join(root, "packed"))
const libraries = ["core", "redis", "s3", "arrow", "cli"]

const fail = (message) => {
  console.error(`pack: ${message}`)
  process.exit(1)
}

const allowed = (file) =>
  ["package.json", "README.md", "LICENSE", "CHANGELOG.md"].includes(file) ||
  file.startsWith("dist/") ||
  (file.startsWith("src/") && file.endsWith(".ts") && !file.endsWith(".test.ts")) ||
  /^test\/utils\/(MetadataStoreSuite|BlobStoreSuite|FaultProxy)\.ts$/.test(file)

/** Every file an `exports` target names (a `*` pattern: at least one file matches it). */
const checkExports = (name, manifest, files) => {
  const targets = []
  const collect = (value) => {
    if (typeof value === "string") targets.push(value)
    else if (value !== null && typeof value === "object") Object.values(value).forEach(collect)
  }
  collect(manifest.exports)
  if (manifest.main) targets.push(manifest.main)
  // a command's file (the CLI's `s3cache`)
  if (typeof manifest.bin === "object" && manifest.bin !== null) targets.push(...Object.values(manifest.bin))
  if (manifest.types) targets.push(manifest.types)
  for (const target of targets) {
    const relative = target.replace(/^\.\//, "")
    const [prefix, suffix] = relative.split("*")
    const found = suffix === undefined
      ? files.includes(relative)
      : files.some((file) => file.startsWith(prefix) && file.endsWith(suffix))
    if (!found) fail(`${name}: the export target ${target} is not in the tarball`)
  }
  const sources = targets.filter((target) => target.endsWith(".ts") && !target.endsWith(".d.ts"))
  if (sources.length > 0) fail(`${name}: the packed exports still point at TypeScript sources: ${sources.join(", ")}`)
}

fs.mkdirSync(destination, { recursive: true })
const summary = []
for (const library of libraries) {
  const directory = path.join(root, "packages", library)
  if (!fs.existsSync(path.join(directory, "dist", "src", "index.js"))) fail(`${library}: no build; run pnpm build`)
  const output = execFileSync("pnpm", ["pack", "--pack-destination", destination], {
    cwd: directory,
    encoding: "utf8"
  })
  const tarball = output.trim().split("\n").at(-1)
  if (!tarball.endsWith(".tgz") || !fs.existsSync(tarball)) fail(`${library}: pnpm pack printed no tarball`)
  const files = execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" })
    .trim().split("\n").map((file) => file.replace(/^package\//, "")).sort()
  const text = execFileSync("tar", ["-xzOf", tarball, "package/package.json"], { encoding: "utf8" })
  const manifest = JSON.parse(text)
  if (text.includes("workspace:")) fail(`${manifest.name}: a workspace: range is left in the packed package.json`)
  for (const required of ["package.json", "README.md", "LICENSE"]) {
    if (!files.includes(required)) fail(`${manifest.name}: ${required} is missing from the tarball`)
  }
  const extra = files.filter((file) => !allowed(file))
  if (extra.length > 0) fail(`${manifest.name}: files that do not belong in the tarball: ${extra.join(", ")}`)
  checkExports(manifest.name, manifest, files)
  const kilobytes = (fs.statSync(tarball).size / 1024).toFixed(1)
  summary.push({ name: `${manifest.name}@${manifest.version}`, tarball, kilobytes, files })
}

for (const { files, kilobytes, name, tarball } of summary) {
  const groups = new Map()
  for (const file of files) {
    const group = file.includes("/") ? `${path.dirname(file)}/` : file
    groups.set(group, (groups.get(group) ?? 0) + 1)
  }
  console.log(`${name}: ${kilobytes} KB packed, ${files.length} files  (${path.relative(root, tarball)})`)
  for (const [group, count] of groups) console.log(`  ${group}${count > 1 ? `  (${count} files)` : ""}`)
}
