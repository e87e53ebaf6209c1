/**
 * A TCP server on loopback that accepts connections and never answers: a blackholed Redis. Closing it destroys the
 * connections it holds.
 */
import * as Effect from "effect/Effect"
import * as Net from "node:net"

export const blackhole = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ readonly socket: Net.Server; readonly port: number; readonly held: Set<Net.Socket> }>((resolve) => {
      const held = new Set<Net.Socket>()
      const socket = Net.createServer((connection) => {
        held.add(connection)
        connection.on("error", () => {})
        connection.on("close", () => held.delete(connection))
      })
      socket.listen(
        { host: "127.0.0.1", port: 0 },
        () => resolve({ socket, port: (socket.address() as Net.AddressInfo).port, held })
      )
    })
  ),
  ({ held, socket }) =>
    Effect.promise(() => {
      for (const connection of held) connection.destroy()
      return new Promise<void>((resolve) => socket.close(() => resolve()))
    })
)
