/**
 * The one list of `S3CACHE_*` variables (`CacheVariables.knownVariables`) covers every variable any package reads, and
 * a set variable that none reads is reported once, with the name it most likely meant.
 */
import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as fs from "node:fs"
import * as path from "node:path"
import * as BlobStore from "../src/BlobStore.js"
import * as Cache from "../src/Cache.js"
import * as CacheVariables from "../src/CacheVariables.js"
import * as MetadataStore from "../src/MetadataStore.js"

const packagesDir = path.resolve(__dirname, "../..")

const sourceFiles = (): Array<string> => {
  const out: Array<string> = []
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name)
      if (entry.isDirectory()) {
        if (entry.name !== "node_modules") walk(full)
      } else if (entry.name.endsWith(".ts")) {
        out.push(full)
      }
    }
  }
  for (const pkg of fs.readdirSync(packagesDir)) {
    const src = path.join(packagesDir, pkg, "src")
    if (fs.existsSync(src)) walk(src)
  }
  return out
}

// The index of the parenthesis that closes the one opened just before `start`, skipping strings and comments.
const closingParen = (text: string, start: number): number => {
  let depth = 1
  for (let i = start; i < text.length; i++) {
    const char = text[i]!
    if (char === "\"" || char === "'" || char === "`") {
      for (i++; i < text.length && text[i] !== char; i++) if (text[i] === "\\") i++
    } else if (char === "/" && text[i + 1] === "/") {
      i = text.indexOf("\n", i)
      if (i === -1) return text.length
    } else if (char === "/" && text[i + 1] === "*") {
      i = text.indexOf("*/", i) + 1
    } else if (char === "(") {
      depth++
    } else if (char === ")" && --depth === 0) {
      return i
    }
  }
  return text.length
}

// The name a `Config` constructor reads: `Config.string("URL")`, `CacheConfig.duration("URL")`,
// `Config.array(Config.string(), "NODES")`, `Config.literal("a", "b")("SSE")`.
const leafName = /(?:\b(?:Config|CacheConfig)\.\w+\((?:[^()"]|\([^()]*\))*?|\)\()\s*"([A-Z][A-Z0-9_]*)"\s*\)/g

/**
 * The `S3CACHE_*` variables a source file reads: names written out (`"S3CACHE_REDIS_URL"`, also in messages and
 * docs, which must name real variables too), and names built by `Config.nested(…, "S3CACHE")` around
 * `Config.string("DEFAULT_TTL")` and the like (nested ones joined with `_`, as the environment provider does).
 */
const variablesIn = (text: string): Set<string> => {
  // not a family of names (`S3CACHE_REDIS_*`)
  const names = new Set<string>(text.match(/\bS3CACHE_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_]*\*)/g) ?? [])
  const prefixes = new Set<string>()
  const leaves = new Set<string>()
  const nested = (body: string, prefix: string) => {
    let from = 0
    for (;;) {
      const at = body.indexOf("Config.nested(", from)
      const chunk = body.slice(from, at === -1 ? body.length : at)
      if (prefix.startsWith("S3CACHE")) {
        for (const match of chunk.matchAll(leafName)) {
          const name = match[1]!
          leaves.add(name.startsWith("S3CACHE") ? name : `${prefix}_${name}`)
        }
      }
      if (at === -1) return
      const open = at + "Config.nested(".length
      const close = closingParen(body, open)
      const args = body.slice(open, close)
      const last = /,\s*"([A-Z][A-Z0-9_]*)"\s*$/.exec(args)
      const inner = last === null ? args : args.slice(0, last.index)
      if (last !== null) prefixes.add(last[1]!)
      nested(inner, last === null ? prefix : prefix === "" ? last[1]! : `${prefix}_${last[1]!}`)
      from = close + 1
    }
  }
  nested(text, "")
  // the name given to `Config.nested` is the start of the variables' names, not one
  for (const prefix of prefixes) names.delete(prefix)
  for (const leaf of leaves) names.add(leaf)
  return names
}

const quiet = Logger.withMinimumLogLevel(LogLevel.None)

describe("the list of variables", () => {
  it("the scanner sees nested and written-out names", () => {
    const sample = `
      const a = Config.nested(Config.all({
        sse: Config.option(Config.literal("AES256", "none")("S3_SSE")),
        ttl: Config.option(CacheConfig.duration("DEFAULT_TTL")),
        nodes: Config.option(Config.array(Config.string(), "CLUSTER_NODES")),
        inner: Config.nested(Config.string("URL"), "REDIS")
      }).pipe(Config.map((x) => x)), "S3CACHE")
      const b = Config.nested(Config.string("PASSWORD"), "S3CACHE_REDIS")
      const c = Config.string("S3CACHE_LOCAL_PATH")
      const d = Config.string("NOT_OURS")
      // see S3CACHE_S3_BUCKET; the S3CACHE_REDIS_* variables
    `
    assert.deepStrictEqual(
      [...variablesIn(sample)].sort(),
      [
        "S3CACHE_CLUSTER_NODES",
        "S3CACHE_DEFAULT_TTL",
        "S3CACHE_LOCAL_PATH",
        "S3CACHE_REDIS_PASSWORD",
        "S3CACHE_REDIS_URL",
        "S3CACHE_S3_BUCKET",
        "S3CACHE_S3_SSE"
      ]
    )
  })

  it("knownVariables holds every S3CACHE_* variable a package's source reads or names", () => {
    const files = sourceFiles()
    const found = new Map<string, string>()
    for (const file of files) {
      for (const name of variablesIn(fs.readFileSync(file, "utf8"))) {
        if (!found.has(name)) found.set(name, path.relative(packagesDir, file))
      }
    }
    // the scan reached the packages that read variables
    for (const name of ["S3CACHE_DEFAULT_TTL", "S3CACHE_LOCAL_PATH", "S3CACHE_REDIS_URL", "S3CACHE_S3_SSE"]) {
      assert.isTrue(found.has(name), `${name} found in the sources`)
    }
    const known = new Set(CacheVariables.knownVariables)
    const missing = [...found].filter(([name]) => !known.has(name)).map(([name, file]) => `${name} (${file})`)
    assert.deepStrictEqual(missing, [], "add these to packages/core/src/internal/variables.ts")
    const unused = CacheVariables.knownVariables.filter((name) => !found.has(name))
    assert.deepStrictEqual(unused, [], "no package reads these any more: remove them from the list")
    assert.strictEqual(known.size, CacheVariables.knownVariables.length, "no name twice")
  })
})

interface Captured {
  readonly level: LogLevel.LogLevel
  readonly message: string
}

const capturing = <A, E, R>(effect: (logs: Array<Captured>) => Effect.Effect<A, E, R>) => {
  const logs: Array<Captured> = []
  const logger = Logger.make(({ logLevel, message }) => {
    logs.push({ level: logLevel, message: Array.isArray(message) ? message.map(String).join(" ") : String(message) })
  })
  return effect(logs).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
}

const env = (variables: Record<string, string>) =>
  ConfigProvider.fromMap(new Map(Object.entries(variables)), { pathDelim: "_" })

const warningsOf = (logs: ReadonlyArray<Captured>) =>
  logs.filter((log) => log.level === LogLevel.Warning).map((log) => log.message)

// The warning is once per process for each set of names: each test sets names of its own.
describe("unknown S3CACHE_* variables", () => {
  it.effect("one warning lists them, with the known name each most likely meant", () =>
    capturing((logs) =>
      Effect.gen(function*() {
        yield* CacheVariables.warnUnknownVariables.pipe(
          Effect.withConfigProvider(env({
            S3CACHE_REDSI_URL: "redis://localhost",
            S3CACHE_DEFAULT_TTL: "60",
            S3CACHE_BUCKET: "b",
            S3CACHE_ZZZ_QQQ_XXX: "1",
            S3CACHEX: "not ours",
            OTHER_VARIABLE: "x"
          }))
        )
        const warnings = warningsOf(logs)
        assert.lengthOf(warnings, 1)
        const [warning] = warnings
        assert.notInclude(warning!, "\n")
        assert.include(warning!, "S3CACHE_REDSI_URL (did you mean S3CACHE_REDIS_URL?)")
        assert.include(warning!, "S3CACHE_BUCKET (did you mean S3CACHE_S3_BUCKET?)")
        assert.include(warning!, "S3CACHE_ZZZ_QQQ_XXX")
        assert.notInclude(warning!, "S3CACHE_ZZZ_QQQ_XXX (did you mean")
        assert.notInclude(warning!, "S3CACHE_DEFAULT_TTL")
        assert.notInclude(warning!, "S3CACHEX")
        assert.notInclude(warning!, "OTHER_VARIABLE")
      })
    ))

  it.effect("Cache.layerConfig and Cache.layerEmbeddedConfig warn, once per process for a set of names", () =>
    capturing((logs) =>
      Effect.gen(function*() {
        const provider = env({ S3CACHE_MAX_CACHE_ENTIRES: "10", S3CACHE_LOCAL_PATH: "/tmp/unused" })
        const cacheLayer = Cache.layerConfig().pipe(
          Layer.provide(Layer.merge(MetadataStore.layerMemory, BlobStore.layerMemory))
        )
        for (let i = 0; i < 3; i++) {
          yield* Effect.scoped(Layer.build(cacheLayer)).pipe(Effect.withConfigProvider(provider))
        }
        const warnings = warningsOf(logs)
        assert.lengthOf(warnings, 1, warnings.join("\n"))
        assert.include(warnings[0]!, "S3CACHE_MAX_CACHE_ENTIRES (did you mean S3CACHE_MAX_CACHE_ENTRIES?)")

        const embedded = env({ S3CACHE_STORAGE_BACKEND: "memory", S3CACHE_STORGE_BACKEND: "memory" })
        yield* Effect.scoped(Layer.build(Cache.layerEmbeddedConfig())).pipe(Effect.withConfigProvider(embedded))
        yield* Effect.scoped(Layer.build(Cache.layerEmbeddedConfig())).pipe(Effect.withConfigProvider(embedded))
        assert.lengthOf(warningsOf(logs), 2)
        assert.include(warningsOf(logs)[1]!, "S3CACHE_STORGE_BACKEND (did you mean S3CACHE_STORAGE_BACKEND?)")

        // the layers built from options in code do not look
        yield* Effect.scoped(Layer.build(Cache.layerEmbedded({ storageBackend: "memory" }))).pipe(
          Effect.withConfigProvider(env({ S3CACHE_NAMSPACE: "x" }))
        )
        assert.lengthOf(warningsOf(logs), 2)
      })
    ))

  it.effect("the environment itself, through the default provider", () =>
    capturing((logs) =>
      Effect.gen(function*() {
        process.env.S3CACHE_WRITE_CONCURENCY = "8"
        yield* CacheVariables.warnUnknownVariables.pipe(
          Effect.withConfigProvider(ConfigProvider.fromEnv()),
          Effect.ensuring(Effect.sync(() => delete process.env.S3CACHE_WRITE_CONCURENCY))
        )
        const warnings = warningsOf(logs)
        assert.lengthOf(warnings, 1)
        assert.include(warnings[0]!, "S3CACHE_WRITE_CONCURENCY (did you mean S3CACHE_WRITE_CONCURRENCY?)")
      })
    ))

  it.effect("unknownVariables: the same with suggestions, for tools that report them their own way", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(
        yield* CacheVariables.unknownVariables.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(
          new Map([
            ["S3CACHE_S3_SSE", "none"],
            ["S3CACHE_S3_BUKCET", "b"],
            ["S3CACHE_QQQ_ZZZ_XXX", "1"],
            ["HOME", "/root"]
          ])
        ))),
        [
          { name: "S3CACHE_QQQ_ZZZ_XXX" },
          { name: "S3CACHE_S3_BUKCET", suggestion: "S3CACHE_S3_BUCKET" }
        ]
      )
    }))

  it.effect("a provider that cannot list its keys: no warning, no failure", () =>
    capturing((logs) =>
      Effect.gen(function*() {
        const provider = ConfigProvider.fromFlat(ConfigProvider.makeFlat({
          load: () => Effect.succeed([]),
          enumerateChildren: () => Effect.die("cannot list"),
          patch: ConfigProvider.fromMap(new Map()).flattened.patch
        }))
        yield* CacheVariables.warnUnknownVariables.pipe(Effect.withConfigProvider(provider))
        assert.lengthOf(warningsOf(logs), 0)
      }).pipe(quiet)
    ))
})
