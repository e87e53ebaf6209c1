/**
 * An HTTP reverse proxy that records what the store sent (method, path, query, headers) before forwarding it to a
 * real S3 server. s3rver ignores server-side-encryption headers, so "SSE is requested on every put" is asserted on
 * what crossed the wire; it also counts listing pages and delete batches.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as http from "node:http"
import type { Recorded } from "./fakeS3.js"
import { serve } from "./loopback.js"

export interface RecordingProxy {
  readonly port: number
  readonly endpoint: string
  readonly requests: Array<Recorded>
  /** requests that write an object or start one: PutObject and CreateMultipartUpload */
  readonly objectWrites: () => ReadonlyArray<Recorded>
  readonly clear: () => void
}

export const make = (target: { readonly port: number }): Effect.Effect<RecordingProxy, never, Scope.Scope> =>
  Effect.gen(function*() {
    const requests: Array<Recorded> = []
    const agent = new http.Agent({ keepAlive: true, maxSockets: 256 })
    const server = http.createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://localhost")
      requests.push({ method: req.method ?? "GET", path: url.pathname, query: url.searchParams, headers: req.headers })
      const upstream = http.request(
        { host: "127.0.0.1", port: target.port, method: req.method, path: req.url, headers: req.headers, agent },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers)
          answer.pipe(res)
        }
      )
      upstream.on("error", () => res.destroy())
      req.pipe(upstream)
    })
    const { port } = yield* serve(server, () => agent.destroy())
    return {
      port,
      endpoint: `http://127.0.0.1:${port}`,
      requests,
      objectWrites: () =>
        requests.filter((request) =>
          (request.method === "PUT" && !request.query.has("partNumber") && request.path.split("/").length > 2) ||
          (request.method === "POST" && request.query.has("uploads"))
        ),
      clear: () => {
        requests.length = 0
      }
    }
  })
