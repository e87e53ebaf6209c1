/**
 * Real `redis-server` processes for tests: a standalone server that can be SIGKILLed and restarted on the same
 * port, and an N-master Redis Cluster. Every process is SIGKILLed and every temp dir removed when the scope
 * closes (and, as a safety net, when the Node process exits).
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { Redis } from "ioredis"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"

export class RedisServerError extends Data.TaggedError("RedisServerError")<{
  readonly reason: "NotInstalled" | "StartFailed" | "ClusterFailed"
  readonly message: string
  readonly cause?: unknown
}> {}

export interface RedisServer {
  readonly host: "127.0.0.1"
  readonly port: number
  /** `redis://127.0.0.1:<port>/0` */
  readonly url: string
  /** sends `signal` (SIGKILL by default) and waits until the process has exited */
  readonly kill: (signal?: NodeJS.Signals) => Effect.Effect<void>
  /** starts the server again on the same port with the same options (killing it first if it runs) */
  readonly restart: Effect.Effect<void, RedisServerError>
}

export interface RedisCluster {
  readonly nodes: ReadonlyArray<{ readonly host: "127.0.0.1"; readonly port: number }>
  /** the node processes, in the order of `nodes`: kill or restart one master */
  readonly servers: ReadonlyArray<RedisServer>
}

const HOST = "127.0.0.1" as const
const READY_TIMEOUT = Duration.seconds(5)
const CLUSTER_TIMEOUT = Duration.seconds(10)

const installHint = "install it with `apt-get install -y redis-server` (or run `bash .ci/setup`, which installs it)"

// --- safety net: no redis-server outlives the test process -------------------------------------------------------

const running = new Set<ChildProcess.ChildProcess>()
let exitHookInstalled = false
const track = (child: ChildProcess.ChildProcess): void => {
  running.add(child)
  child.once("exit", () => running.delete(child))
  if (!exitHookInstalled) {
    exitHookInstalled = true
    const killAll = () => {
      for (const child of running) child.kill("SIGKILL")
    }
    process.on("exit", killAll)
    // vitest ends its fork workers with SIGTERM, which skips "exit" handlers
    for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
      process.once(signal, () => {
        killAll()
        // cleaning up was all we wanted: with no other listener, the default action (terminate) must still happen
        if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
      })
    }
  }
}

// --- processes --------------------------------------------------------------------------------------------------

interface Proc {
  readonly child: ChildProcess.ChildProcess
  /** the last few kB of stdout and stderr, for error messages */
  readonly output: () => string
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

const spawnProc = (command: string, args: ReadonlyArray<string>): Effect.Effect<Proc, RedisServerError> =>
  Effect.async<Proc, RedisServerError>((resume) => {
    const child = ChildProcess.spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    const append = (chunk: Buffer) => {
      output = (output + chunk.toString("utf8")).slice(-4096)
    }
    child.stdout!.on("data", append)
    child.stderr!.on("data", append)
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once("exit", (code, signal) => resolve({ code, signal }))
    )
    child.once("error", (error: NodeJS.ErrnoException) => {
      resume(Effect.fail(
        error.code === "ENOENT"
          ? new RedisServerError({
            reason: "NotInstalled",
            message: `\`${command}\` was not found on PATH: ${installHint}`,
            cause: error
          })
          : new RedisServerError({ reason: "StartFailed", message: `could not start ${command}: ${error.message}` })
      ))
    })
    child.once("spawn", () => {
      track(child)
      resume(Effect.succeed({ child, output: () => output, exited }))
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const stopProc = (proc: Proc, signal: NodeJS.Signals = "SIGKILL"): Effect.Effect<void> =>
  Effect.promise(async () => {
    const { child } = proc
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill(signal)
    const timer = signal === "SIGKILL" ? undefined : setTimeout(() => child.kill("SIGKILL"), 5_000)
    await proc.exited
    if (timer !== undefined) clearTimeout(timer)
  })

// --- a raw RESP conversation, so readiness checks need no client library ----------------------------------------

/** Sends an inline command and resolves with the reply once `done(reply)` holds (or rejects on error/timeout). */
const rawCommand = (port: number, command: string, done: (reply: string) => boolean, timeoutMs = 500) =>
  new Promise<string>((resolve, reject) => {
    let reply = ""
    const socket = Net.connect({ host: HOST, port })
    const finish = (error?: Error) => {
      clearTimeout(timer)
      socket.destroy()
      if (error) reject(error)
      else resolve(reply)
    }
    const timer = setTimeout(() => finish(new Error(`no reply to ${command} within ${timeoutMs} ms`)), timeoutMs)
    socket.on("error", finish)
    socket.on("connect", () => socket.write(`${command}\r\n`))
    socket.on("data", (chunk) => {
      reply += chunk.toString("utf8")
      if (done(reply)) finish()
    })
    socket.on("end", () => finish(new Error(`connection closed after ${JSON.stringify(reply)}`)))
  })

/** Polls `check` every 20 ms until it succeeds, `budget` passes, or the process exits. */
const waitUntil = (
  proc: Proc,
  budget: Duration.Duration,
  check: () => Promise<unknown>,
  describe: string,
  reason: RedisServerError["reason"]
): Effect.Effect<void, RedisServerError> =>
  Effect.tryPromise({
    try: async () => {
      const deadline = Date.now() + Duration.toMillis(budget)
      let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined
      void proc.exited.then((value) => (exit = value))
      let last: unknown
      for (;;) {
        if (exit !== undefined) {
          throw new Error(`redis-server exited (code ${exit.code}, signal ${exit.signal}) before ${describe}`)
        }
        try {
          await check()
          return
        } catch (error) {
          last = error
        }
        if (Date.now() > deadline) {
          throw new Error(`${describe} did not happen within ${Duration.format(budget)} (last: ${String(last)})`)
        }
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    },
    catch: (cause) =>
      new RedisServerError({
        reason,
        message: `${(cause as Error).message}; redis-server output:\n${proc.output()}`,
        cause
      })
  })

const ping = (port: number) =>
  rawCommand(port, "PING", (reply) => reply.includes("\r\n")).then((reply) => {
    if (!reply.startsWith("+PONG")) throw new Error(`PING answered ${JSON.stringify(reply)}`)
  })

/** a whole RESP bulk string (`$<n>\r\n<n bytes>\r\n`) or an error/simple line */
const bulkComplete = (reply: string): boolean => {
  const header = reply.indexOf("\r\n")
  if (header < 0) return false
  if (!reply.startsWith("$")) return true
  return Buffer.byteLength(reply) >= header + 2 + Number(reply.slice(1, header)) + 2
}

// --- standalone servers -----------------------------------------------------------------------------------------

const freePort = Effect.promise(() =>
  new Promise<number>((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen({ host: HOST, port: 0 }, () => {
      const port = (server.address() as Net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })
)

const makeTempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "s3cache-redis-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

const argsFor = (port: number, dir: string, extra: ReadonlyArray<string>): ReadonlyArray<string> => [
  "--port",
  String(port),
  "--bind",
  HOST,
  "--save",
  "",
  "--appendonly",
  "no",
  "--dir",
  dir,
  "--protected-mode",
  "no",
  ...extra
]

/**
 * Starts redis-server on `port` and waits until it answers PING; on failure the process is killed. `onSpawn` gets
 * the process at once, so the caller's finalizer covers it even while it is starting.
 */
const start = (
  port: number,
  dir: string,
  extra: ReadonlyArray<string>,
  onSpawn: (proc: Proc) => void
): Effect.Effect<Proc, RedisServerError> =>
  Effect.gen(function*() {
    const proc = yield* spawnProc("redis-server", argsFor(port, dir, extra))
    onSpawn(proc)
    yield* waitUntil(
      proc,
      READY_TIMEOUT,
      () => ping(port),
      `redis-server answering PING on port ${port}`,
      "StartFailed"
    )
      .pipe(Effect.tapError(() => stopProc(proc)))
    return proc
  })

const addressInUse = (error: RedisServerError) => error.message.includes("Address already in use")

const makeWith = (
  options: { readonly port?: number | undefined },
  extra: ReadonlyArray<string>
): Effect.Effect<RedisServer, RedisServerError, Scope.Scope> =>
  Effect.gen(function*() {
    const dir = yield* makeTempDir
    // a port found free can be taken before redis-server binds it: with a port of our choosing, pick another
    let port = options.port ?? (yield* freePort)
    let current: Proc | undefined
    const setCurrent = (proc: Proc) => {
      current = proc
    }
    yield* Effect.addFinalizer(() => current === undefined ? Effect.void : stopProc(current))
    for (let attempt = 0;; attempt++) {
      const result = yield* Effect.either(start(port, dir, extra, setCurrent))
      if (result._tag === "Right") break
      if (options.port !== undefined || attempt >= 2 || !addressInUse(result.left)) return yield* result.left
      port = yield* freePort
    }

    const kill = (signal: NodeJS.Signals = "SIGKILL") => current === undefined ? Effect.void : stopProc(current, signal)

    const restart = Effect.gen(function*() {
      yield* kill("SIGKILL")
      current = undefined
      // the old socket may linger for a moment; the port is ours, so retry it
      for (let attempt = 0;; attempt++) {
        const result = yield* Effect.either(start(port, dir, extra, setCurrent))
        if (result._tag === "Right") return
        if (attempt >= 20 || !addressInUse(result.left)) return yield* result.left
        yield* Effect.sleep("50 millis")
      }
    })

    return { host: HOST, port, url: `redis://${HOST}:${port}/0`, kill, restart } satisfies RedisServer
  })

/**
 * Starts `redis-server` on `127.0.0.1` (on `options.port`, or a free port) with no persistence, and waits until it
 * answers PING (at most 5 s). `options.args` are passed to the server after the defaults (`--maxmemory 10mb`,
 * `--maxmemory-policy noeviction`, …) and kept across `restart`. Fails with a message saying how to install Redis
 * when `redis-server` is missing.
 */
export const make = (
  options: { readonly port?: number | undefined; readonly args?: ReadonlyArray<string> | undefined } = {}
): Effect.Effect<RedisServer, RedisServerError, Scope.Scope> => makeWith(options, options.args ?? [])

// --- clusters ---------------------------------------------------------------------------------------------------

const runCli = (args: ReadonlyArray<string>): Effect.Effect<string, RedisServerError> =>
  Effect.async<string, RedisServerError>((resume) => {
    const child = ChildProcess.execFile(
      "redis-cli",
      args,
      { timeout: Duration.toMillis(CLUSTER_TIMEOUT), killSignal: "SIGKILL" },
      (error, stdout, stderr) => {
        if (error === null) return resume(Effect.succeed(stdout))
        const code = (error as NodeJS.ErrnoException).code
        resume(Effect.fail(
          code === "ENOENT"
            ? new RedisServerError({
              reason: "NotInstalled",
              message: `\`redis-cli\` was not found on PATH: ${installHint}`,
              cause: error
            })
            : new RedisServerError({
              reason: "ClusterFailed",
              message: `redis-cli ${args.join(" ")} failed: ${error.message}\n${stdout}\n${stderr}`,
              cause: error
            })
        ))
      }
    )
    track(child)
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/**
 * Starts `masters` (default 3) cluster-enabled servers, joins them with `redis-cli --cluster create` (no replicas),
 * and waits until every node reports `cluster_state:ok` (about 2 s; at most 10 s). Nodes run with
 * `cluster-require-full-coverage no`, so one dead master leaves the others serving their slots.
 */
export const makeCluster = (
  options: { readonly masters?: number | undefined } = {}
): Effect.Effect<RedisCluster, RedisServerError, Scope.Scope> =>
  Effect.gen(function*() {
    const masters = options.masters ?? 3
    const servers = yield* Effect.forEach(
      Array.from({ length: masters }, (_, i) => i),
      () =>
        Effect.gen(function*() {
          // the node's config file lives in its own dir, so the node keeps its identity across restarts
          const port = yield* freePort
          return yield* makeWith({ port }, [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            `nodes-${port}.conf`,
            "--cluster-node-timeout",
            "2000",
            "--cluster-require-full-coverage",
            "no"
          ])
        }),
      { concurrency: "unbounded" }
    )
    yield* runCli([
      "--cluster",
      "create",
      ...servers.map((server) => `${HOST}:${server.port}`),
      "--cluster-replicas",
      "0",
      "--cluster-yes"
    ])
    yield* Effect.tryPromise({
      try: async () => {
        const deadline = Date.now() + Duration.toMillis(CLUSTER_TIMEOUT)
        const pending = new Set(servers.map((server) => server.port))
        let last = ""
        while (pending.size > 0) {
          for (const port of [...pending]) {
            const info = await rawCommand(port, "CLUSTER INFO", bulkComplete)
              .catch((error: Error) => error.message)
            if (info.includes("cluster_state:ok") && info.includes(`cluster_known_nodes:${masters}`)) {
              pending.delete(port)
            } else last = `${port}: ${info}`
          }
          if (pending.size === 0) return
          if (Date.now() > deadline) {
            throw new Error(
              `nodes ${[...pending].join(", ")} not ok within ${Duration.format(CLUSTER_TIMEOUT)}\n${last}`
            )
          }
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
      },
      catch: (cause) => new RedisServerError({ reason: "ClusterFailed", message: (cause as Error).message, cause })
    })
    return { nodes: servers.map((server) => ({ host: HOST, port: server.port })), servers }
  })

/**
 * A plain ioredis client on `url`, connected, closed with the scope: for looking at what a store did, and for doing
 * what Redis or an operator would do behind its back.
 */
export const rawClient = (url: string): Effect.Effect<Redis, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new Redis(url, { lazyConnect: true })
      client.on("error", () => {})
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => client.quit().catch(() => undefined))
  )
