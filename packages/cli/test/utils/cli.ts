/**
 * Runs the `s3cache` binary as a child process, as an operator does, with the environment it is given (and no other
 * `S3CACHE_*` variable of the test process).
 */
import * as Effect from "effect/Effect"
import * as ChildProcess from "node:child_process"
import * as path from "node:path"

/** The workspace's binary: the sources through tsx (the published package runs dist/src/bin.js). */
export const binary = path.join(__dirname, "..", "..", "bin", "s3cache.mjs")

export interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

export const run = (
  args: ReadonlyArray<string>,
  env: Record<string, string> = {},
  input?: string
): Effect.Effect<Ran> =>
  Effect.async<Ran>((resume) => {
    const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("S3CACHE_")))
    const child = ChildProcess.spawn(process.execPath, [binary, ...args], {
      env: { ...base, NO_COLOR: "1", ...env },
      stdio: ["pipe", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
    child.on("close", (code) => resume(Effect.succeed({ code, stdout, stderr })))
    child.stdin.end(input ?? "")
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/** `run` with `--json`, its stdout parsed. */
export const runJson = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.map(run([...args, "--json"], env), (ran) => {
    let json: any
    try {
      json = JSON.parse(ran.stdout)
    } catch {
      throw new Error(`not JSON (exit ${ran.code}): ${ran.stdout}\nstderr: ${ran.stderr}`)
    }
    return { ...ran, json }
  })
