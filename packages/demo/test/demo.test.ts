/**
 * The demo says what happened: a hit only when the cache answered, and fail-open (a store down) is a run that did
 * its job (exit code 0), said in so many words.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as ChildProcess from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const demo = path.join(__dirname, "..", "src", "demo.ts")
const tsx = path.join(__dirname, "..", "..", "..", "node_modules", "tsx", "dist", "cli.mjs")

const runDemo = (env: Record<string, string>) =>
  Effect.async<{ code: number | null; stdout: string; stderr: string }>((resume) => {
    const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("S3CACHE_")))
    const child = ChildProcess.spawn(process.execPath, [tsx, demo], { env: { ...base, ...env } })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
    child.on("close", (code) => resume(Effect.succeed({ code, stdout, stderr })))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

describe("pnpm demo", () => {
  it.live("on the embedded default: the warm call is a hit, and the demo says so", () =>
    Effect.gen(function*() {
      const folder = fs.mkdtempSync(path.join(os.tmpdir(), "s3cache-demo-"))
      const ran = yield* runDemo({ S3CACHE_LOCAL_PATH: folder })
      fs.rmSync(folder, { recursive: true, force: true })
      assert.strictEqual(ran.code, 0, ran.stderr)
      assert.match(ran.stdout, /^2\. warm call .*\(answered from the cache\)$/m)
      assert.match(ran.stdout, /stats: hits 1, misses 2/)
      assert.include(ran.stdout, "every call got its value; the cache answered what it had")
    }), 60_000)

  it.live(
    "with Redis down: every call runs uncached, the demo says so, and exits 0 (fail-open did its job)",
    () =>
      Effect.gen(function*() {
        const folder = fs.mkdtempSync(path.join(os.tmpdir(), "s3cache-demo-"))
        // port 1: nothing listens, the connection is refused at once
        const ran = yield* runDemo({ S3CACHE_LOCAL_PATH: folder, S3CACHE_REDIS_URL: "redis://127.0.0.1:1/0" })
        fs.rmSync(folder, { recursive: true, force: true })
        assert.strictEqual(ran.code, 0, ran.stdout + ran.stderr)
        assert.notInclude(ran.stdout, "answered from the cache")
        assert.match(ran.stdout, /^2\. warm call .*ran uncached \(fail-open\)\)$/m)
        assert.match(ran.stdout, /stats: hits 0/)
        assert.include(ran.stdout, "calls ran uncached (fail-open)")
      }),
    60_000
  )
})
