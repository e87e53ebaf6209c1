/**
 * A TCP proxy on loopback that injects faults between a client and a real server (Redis, S3).
 *
 * Modes apply to connections that are already open, not only to new ones: the bugs worth finding are on
 * half-dead sockets that a client still believes are healthy. Bytes are never dropped silently (real TCP does
 * not lose bytes without telling anyone): a blackhole holds them and delivers them, in order, when the mode
 * returns to "pass".
 *
 * Other packages import it as `@s3cache/core/test/FaultProxy`.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Net from "node:net"

export type FaultMode =
  /** forward bytes both ways */
  | "pass"
  /** hold bytes (both directions) on open connections and new ones; delivered in order once back to "pass" */
  | "blackhole"
  /** reset every open connection (RST) and reset new ones at once */
  | "reset"
  /** stop listening (new connections get ECONNREFUSED) and reset open ones; any other mode listens again */
  | "refuse"
  /** delay each chunk, both directions, by `latencyMs` (order kept) */
  | { readonly latencyMs: number }
  /**
   * server→client: after the mode is set, pass `truncateAfterBytes` more bytes per connection, then hold the
   * rest ("hang") or close the connection ("close")
   */
  | { readonly truncateAfterBytes: number; readonly then: "hang" | "close" }
  /** server→client: after the mode is set, flip one bit in every Nth byte */
  | { readonly corruptEveryByte: number }

export interface FaultProxy {
  readonly port: number
  readonly host: "127.0.0.1"
  /** applies to the connections already open as well as to new ones */
  readonly setMode: (mode: FaultMode) => Effect.Effect<void>
  readonly openConnections: Effect.Effect<number>
}

type Item = Buffer | "end" | "reset"

interface Pipe {
  readonly queue: Array<{ readonly item: Item; readonly at: number }>
  readonly toServer: boolean
  timer: ReturnType<typeof setTimeout> | undefined
  /** server→client bytes passed / seen since the mode was last set (truncate, corrupt) */
  passed: number
  seen: number
}

interface Connection {
  readonly client: Net.Socket
  readonly upstream: Net.Socket
  readonly up: Pipe
  readonly down: Pipe
}

const HOST = "127.0.0.1" as const

const makePipe = (toServer: boolean): Pipe => ({ queue: [], toServer, timer: undefined, passed: 0, seen: 0 })

const reset = (socket: Net.Socket): void => {
  if (socket.destroyed) return
  // a socket still connecting has nothing to reset: destroying it is what the peer would see
  if (socket.connecting) socket.destroy()
  else socket.resetAndDestroy()
}

const listen = (port: number): Promise<Net.Server> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer({ allowHalfOpen: true, pauseOnConnect: false })
    server.once("error", reject)
    server.listen({ host: HOST, port }, () => {
      server.off("error", reject)
      server.on("error", () => {})
      resolve(server)
    })
  })

const closeServer = (server: Net.Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()))

/**
 * Starts a proxy on `127.0.0.1` (on `options.port`, or a free port) that forwards to `target`. Closing the scope
 * stops listening and destroys every socket.
 */
export const make = (
  target: { readonly host: string; readonly port: number },
  options?: { readonly port?: number | undefined }
): Effect.Effect<FaultProxy, never, Scope.Scope> =>
  Effect.gen(function*() {
    let mode: FaultMode = "pass"
    let closed = false
    const connections = new Set<Connection>()

    const shutdown = (connection: Connection, how: "reset" | "destroy"): void => {
      for (const pipe of [connection.up, connection.down]) {
        if (pipe.timer !== undefined) clearTimeout(pipe.timer)
        pipe.timer = undefined
        pipe.queue.length = 0
      }
      if (how === "reset") {
        reset(connection.client)
        reset(connection.upstream)
      } else {
        connection.client.destroy()
        connection.upstream.destroy()
      }
      connections.delete(connection)
    }

    const deliver = (connection: Connection, pipe: Pipe, item: Item): void => {
      const dest = pipe.toServer ? connection.upstream : connection.client
      if (dest.destroyed) return
      if (item === "end") return void dest.end()
      if (item === "reset") return shutdown(connection, "reset")
      if (!pipe.toServer && typeof mode === "object" && "corruptEveryByte" in mode) {
        const every = Math.max(1, Math.floor(mode.corruptEveryByte))
        const copy = Buffer.from(item)
        for (let i = 0; i < copy.length; i++) {
          pipe.seen++
          if (pipe.seen % every === 0) copy[i] = copy[i]! ^ 0x01
        }
        return void dest.write(copy)
      }
      if (!pipe.toServer && typeof mode === "object" && "truncateAfterBytes" in mode) {
        const room = Math.max(0, mode.truncateAfterBytes - pipe.passed)
        if (item.length <= room) {
          pipe.passed += item.length
          return void dest.write(item)
        }
        if (room > 0) dest.write(item.subarray(0, room))
        pipe.passed += room
        if (mode.then === "close") {
          // the cut-off reply reaches the client, then a FIN; the server side is simply dropped
          dest.end()
          connection.upstream.destroy()
          pipe.queue.length = 0
          return
        }
        pipe.queue.unshift({ item: item.subarray(room), at: Date.now() })
        return
      }
      dest.write(item)
    }

    const holds = (pipe: Pipe): boolean =>
      mode === "blackhole" ||
      (!pipe.toServer && typeof mode === "object" && "truncateAfterBytes" in mode && mode.then === "hang" &&
        pipe.passed >= mode.truncateAfterBytes)

    const pump = (connection: Connection, pipe: Pipe): void => {
      if (pipe.timer !== undefined) return
      while (pipe.queue.length > 0 && connections.has(connection)) {
        if (holds(pipe)) return
        const head = pipe.queue[0]!
        if (typeof mode === "object" && "latencyMs" in mode) {
          const wait = head.at + mode.latencyMs - Date.now()
          if (wait > 0) {
            pipe.timer = setTimeout(() => {
              pipe.timer = undefined
              pump(connection, pipe)
            }, wait)
            return
          }
        }
        pipe.queue.shift()
        deliver(connection, pipe, head.item)
      }
    }

    const push = (connection: Connection, pipe: Pipe, item: Item): void => {
      pipe.queue.push({ item, at: Date.now() })
      pump(connection, pipe)
    }

    const onConnection = (client: Net.Socket): void => {
      client.on("error", () => {})
      if (closed || mode === "reset" || mode === "refuse") return void reset(client)
      const upstream = Net.connect({ host: target.host, port: target.port, allowHalfOpen: true })
      upstream.on("error", () => {})
      const connection: Connection = { client, upstream, up: makePipe(true), down: makePipe(false) }
      connections.add(connection)
      const wire = (source: Net.Socket, pipe: Pipe) => {
        source.on("data", (chunk: Buffer) => push(connection, pipe, chunk))
        source.on("end", () => push(connection, pipe, "end"))
        // an error on one side reaches the other as a reset, in order after the bytes held before it
        source.on("close", (hadError) => {
          if (hadError) push(connection, pipe, "reset")
          if (client.destroyed && upstream.destroyed) connections.delete(connection)
        })
      }
      wire(client, connection.up)
      wire(upstream, connection.down)
    }

    let server: Net.Server | undefined = yield* Effect.promise(() => listen(options?.port ?? 0))
    server.on("connection", onConnection)
    const port = (server.address() as Net.AddressInfo).port

    const relisten = Effect.promise(async () => {
      // the old listener is closed by now, but another process may hold the port for a moment
      for (let attempt = 0;; attempt++) {
        try {
          return await listen(port)
        } catch (error) {
          if (attempt >= 50) throw error
          await new Promise((resolve) => setTimeout(resolve, 20))
        }
      }
    })

    const setMode = (next: FaultMode): Effect.Effect<void> =>
      Effect.gen(function*() {
        if (closed) return
        mode = next
        for (const connection of connections) {
          connection.down.passed = 0
          connection.down.seen = 0
        }
        if (next === "reset" || next === "refuse") {
          for (const connection of [...connections]) shutdown(connection, "reset")
        }
        if (next === "refuse") {
          if (server !== undefined) {
            const old = server
            server = undefined
            // the port is free once the listener is closed; the callback also waits for the reset sockets
            yield* Effect.promise(() => closeServer(old)).pipe(Effect.timeout("2 seconds"), Effect.ignore)
          }
          return
        }
        if (server === undefined) {
          const fresh = yield* relisten
          if (closed) return void fresh.close()
          server = fresh
          server.on("connection", onConnection)
        }
        for (const connection of connections) {
          for (const pipe of [connection.up, connection.down]) {
            if (pipe.timer !== undefined) clearTimeout(pipe.timer)
            pipe.timer = undefined
            pump(connection, pipe)
          }
        }
      }).pipe(Effect.uninterruptible)

    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        closed = true
        for (const connection of [...connections]) shutdown(connection, "destroy")
        const old = server
        server = undefined
        if (old !== undefined) {
          yield* Effect.promise(() => closeServer(old)).pipe(Effect.timeout("2 seconds"), Effect.ignore)
        }
      })
    )

    return {
      host: HOST,
      port,
      setMode,
      openConnections: Effect.sync(() => connections.size)
    }
  })

/** A port that was free a moment ago on 127.0.0.1 (for a server that must start later, or restart). */
export const freePort: Effect.Effect<number> = Effect.promise(async () => {
  const server = await listen(0)
  const port = (server.address() as Net.AddressInfo).port
  await closeServer(server)
  return port
})

/**
 * Fails a test with a defect "HANG: <label> did not finish within <budget>" instead of waiting for the runner's
 * timeout. The effect is disconnected, so even an uninterruptible hang trips the watchdog (and is then
 * interrupted in the background).
 */
export const watchdog = (budget: Duration.DurationInput, label: string) =>
<A, E, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  self.pipe(
    Effect.disconnect,
    Effect.timeoutOption(budget),
    Effect.flatMap(Option.match({
      onNone: () =>
        Effect.dieMessage(`HANG: ${label} did not finish within ${Duration.format(Duration.decode(budget))}`),
      onSome: Effect.succeed
    }))
  )
