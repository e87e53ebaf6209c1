/**
 * An HTTP server of a test on a free loopback port for the length of a scope. It tracks its connections, so a test
 * can count them, and closing the scope destroys them (after `onClose`) before the server closes.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as http from "node:http"
import type * as net from "node:net"

export interface Served {
  readonly port: number
  /** connections open now */
  readonly sockets: ReadonlySet<net.Socket>
  /** connections accepted since the start */
  readonly accepted: () => number
}

export const serve = (server: http.Server, onClose: () => void = () => {}): Effect.Effect<Served, never, Scope.Scope> =>
  Effect.gen(function*() {
    const sockets = new Set<net.Socket>()
    let accepted = 0
    server.on("connection", (socket) => {
      accepted++
      sockets.add(socket)
      socket.once("close", () => sockets.delete(socket))
    })
    yield* Effect.acquireRelease(
      Effect.async<void>((resume) => {
        server.listen(0, "127.0.0.1", () => resume(Effect.void))
      }),
      () =>
        Effect.async<void>((resume) => {
          onClose()
          for (const socket of sockets) socket.destroy()
          server.close(() => resume(Effect.void))
        })
    )
    return { port: (server.address() as net.AddressInfo).port, sockets, accepted: () => accepted }
  })
