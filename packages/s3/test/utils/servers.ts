/**
 * Real S3 servers for the tests, each in a child process on a free loopback port so a test can SIGKILL it:
 * s3rver (npm) and moto_server (Python moto 5). Closing the scope kills the process group and removes the data
 * folder; an `exit` hook kills whatever a crashed test left, so no server outlives the run.
 */
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3"
import { freePort } from "@s3cache/core/test/FaultProxy"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as ChildProcess from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

export class ServerError extends Data.TaggedError("ServerError")<{ readonly message: string }> {}

export interface ChildServer {
  readonly name: string
  readonly port: number
  readonly endpoint: string
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string }
  /** the pid of the running process (it changes on restart) */
  readonly pid: () => number | undefined
  /** SIGKILL the process and wait for it to be gone */
  readonly kill: Effect.Effect<void>
  /** start it again on the same port (and, for s3rver, the same data folder) */
  readonly restart: Effect.Effect<void, ServerError>
}

const live = new Set<ChildProcess.ChildProcess>()
let hooked = false
const killGroup = (child: ChildProcess.ChildProcess, signal: NodeJS.Signals = "SIGKILL") => {
  try {
    // detached: the child leads its own process group, which takes any grandchild (a Python shim's) with it
    if (child.pid !== undefined) process.kill(-child.pid, signal)
  } catch {
    // already gone
  }
}
const hookExit = () => {
  if (hooked) return
  hooked = true
  process.once("exit", () => {
    for (const child of live) killGroup(child)
  })
}

const canConnect = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

const httpReady = async (port: number) => {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) })
    await response.arrayBuffer()
    return response.status < 500
  } catch {
    return false
  }
}

interface Spec {
  readonly name: string
  readonly command: string
  readonly args: (port: number) => ReadonlyArray<string>
  readonly ready: (port: number) => Promise<boolean>
  readonly startTimeoutMs: number
  readonly missing: string
  readonly credentials: ChildServer["credentials"]
  readonly cleanup?: () => void
}

const spawnServer = (spec: Spec, port: number) =>
  Effect.async<ChildProcess.ChildProcess, ServerError>((resume) => {
    hookExit()
    const child = ChildProcess.spawn(spec.command, [...spec.args(port)], {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000)
    }
    child.stdout!.on("data", collect)
    child.stderr!.on("data", collect)
    let settled = false
    const fail = (message: string) => {
      if (settled) return
      settled = true
      killGroup(child)
      live.delete(child)
      resume(Effect.fail(new ServerError({ message })))
    }
    child.once("error", (error: NodeJS.ErrnoException) =>
      fail(error.code === "ENOENT" ? spec.missing : `${spec.name} could not start: ${error.message}`))
    child.once("exit", (code, signal) => {
      live.delete(child)
      fail(`${spec.name} exited (${code ?? signal}) before listening on port ${port}:\n${output}`)
    })
    live.add(child)
    const started = Date.now()
    const poll = async () => {
      while (!settled) {
        if (await spec.ready(port)) {
          settled = true
          return resume(Effect.succeed(child))
        }
        if (Date.now() - started > spec.startTimeoutMs) {
          return fail(`${spec.name} did not listen on port ${port} within ${spec.startTimeoutMs} ms:\n${output}`)
        }
        await new Promise((resolve) =>
          setTimeout(resolve, 50)
        )
      }
    }
    void poll()
    return Effect.sync(() => {
      killGroup(child)
      live.delete(child)
    })
  })

const stop = (child: ChildProcess.ChildProcess | undefined) =>
  Effect.async<void>((resume) => {
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => {
      live.delete(child)
      resume(Effect.void)
    })
    killGroup(child)
  })

const start = (spec: Spec): Effect.Effect<ChildServer, ServerError, Scope.Scope> =>
  Effect.gen(function*() {
    const port = yield* freePort
    let child: ChildProcess.ChildProcess | undefined = yield* spawnServer(spec, port)
    yield* Effect.addFinalizer(() =>
      Effect.zipRight(
        stop(child),
        Effect.sync(() => spec.cleanup?.())
      )
    )
    return {
      name: spec.name,
      port,
      endpoint: `http://127.0.0.1:${port}`,
      credentials: spec.credentials,
      pid: () => child?.pid,
      kill: Effect.suspend(() => stop(child)),
      restart: Effect.suspend(() => stop(child)).pipe(
        Effect.zipRight(spawnServer(spec, port)),
        Effect.tap((fresh) => {
          child = fresh
        }),
        Effect.asVoid
      )
    }
  })

const s3rverBin = createRequire(import.meta.url).resolve("s3rver/bin/s3rver.js")

/**
 * s3rver in a child process, its objects in a temporary folder. `--openssl-legacy-provider`: s3rver encrypts its
 * ListObjectsV2 continuation tokens with DES, which OpenSSL 3 (Node 17+) only has in its legacy provider; without
 * it, every listing of more than one page fails with InternalError.
 */
export const s3rver: Effect.Effect<ChildServer, ServerError, Scope.Scope> = Effect.suspend(() => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "s3cache-s3rver-"))
  return start({
    name: "s3rver",
    command: process.execPath,
    args: (port) => [
      "--openssl-legacy-provider",
      s3rverBin,
      "--directory",
      directory,
      "--address",
      "127.0.0.1",
      "--port",
      String(port),
      "--silent"
    ],
    ready: canConnect,
    startTimeoutMs: 15_000,
    missing: "node could not be started for s3rver",
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    cleanup: () => fs.rmSync(directory, { recursive: true, force: true })
  })
})

/** What to do when moto_server is missing. */
export const motoMissing = "moto_server is not installed or not on PATH: install it with " +
  "`pip install \"moto[server]>=5,<6\"` (Python 3.9+), check that `moto_server --help` runs, then run the tests again"

/**
 * moto_server (Python moto 5) in a child process. When it is not installed the effect fails with a message that
 * says how to get it: the moto suite must fail, not skip.
 */
export const motoServer: Effect.Effect<ChildServer, ServerError, Scope.Scope> = start({
  name: "moto_server",
  command: "moto_server",
  args: (port) => ["-H", "127.0.0.1", "-p", String(port)],
  ready: httpReady,
  startTimeoutMs: 30_000,
  missing: motoMissing,
  credentials: { accessKeyId: "test", secretAccessKey: "test" }
})

/** A raw SDK client on a test server, for what the store must not do itself (corrupting an object, HeadObject). */
export const rawClient = (server: Pick<ChildServer, "endpoint" | "credentials">, endpoint = server.endpoint) =>
  new S3Client({
    region: "us-east-1",
    endpoint,
    forcePathStyle: true,
    credentials: server.credentials,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED"
  })

export const createBucket = (server: ChildServer, bucket: string): Effect.Effect<void, ServerError> =>
  Effect.tryPromise({
    try: async () => {
      const client = rawClient(server)
      try {
        await client.send(new CreateBucketCommand({ Bucket: bucket }))
      } finally {
        client.destroy()
      }
    },
    catch: (error) => new ServerError({ message: `cannot create bucket ${bucket} on ${server.name}: ${String(error)}` })
  })

/** The store options that reach a test server. */
export const storeOptions = (server: Pick<ChildServer, "endpoint" | "credentials">, bucket: string) => ({
  bucket,
  endpoint: server.endpoint,
  forcePathStyle: true,
  region: "us-east-1",
  credentials: {
    accessKeyId: Redacted.make(server.credentials.accessKeyId),
    secretAccessKey: Redacted.make(server.credentials.secretAccessKey)
  }
})
