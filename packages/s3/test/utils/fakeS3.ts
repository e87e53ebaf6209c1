/**
 * A tiny S3-ish server on `node:http`, for the faults a real S3 server will not produce on demand: 503s (counted),
 * a drip-fed body, a body shorter than its Content-Length, a wrong checksum header, a silent server, flipped bytes.
 * Path-style only; enough of PutObject, GetObject, DeleteObjects and ListObjectsV2 for the store and the cache.
 * Signatures are not checked. Every request is recorded (method, path, query, headers).
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as crypto from "node:crypto"
import * as http from "node:http"
import { serve } from "./loopback.js"

export type Fault =
  /** answer with this status and an S3 error document */
  | { readonly status: number; readonly code: string }
  /** headers at once, then `bytes` bytes of the body every `everyMs` */
  | { readonly drip: { readonly bytes: number; readonly everyMs: number } }
  /** announce the whole length, send this many bytes, then close the connection */
  | { readonly shortBody: number }
  /** read the request, never answer */
  | "hang"
  /** the right body with an `x-amz-checksum-crc32` header that does not match it */
  | "wrongChecksum"
  /** the body with its first byte flipped */
  | "corrupt"

export interface Recorded {
  readonly method: string
  readonly path: string
  readonly query: URLSearchParams
  readonly headers: http.IncomingHttpHeaders
}

export interface FakeS3 {
  readonly port: number
  readonly endpoint: string
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string }
  /** faults apply to requests of `method` (default: any) until `times` requests took them (default: all) */
  readonly setFault: (
    fault: Fault | undefined,
    options?: { readonly method?: string | undefined; readonly times?: number | undefined }
  ) => void
  /** a fault per request of `method`, by its index among them (0, 1, …); replaces the rules of `setFault` */
  readonly setFaultPlan: (method: string, plan: ((index: number) => Fault | undefined) | undefined) => void
  readonly requests: Array<Recorded>
  readonly count: (method: string) => number
  /** connections open right now, as the server sees them */
  readonly openConnections: Effect.Effect<number>
  /** connections accepted since the start */
  readonly acceptedConnections: () => number
  readonly objects: Map<string, Buffer>
}

interface Rule {
  readonly fault: Fault
  readonly method: string | undefined
  remaining: number
}

const xml = (res: http.ServerResponse, status: number, body: string) => {
  res.writeHead(status, { "Content-Type": "application/xml", "Content-Length": Buffer.byteLength(body) })
  res.end(body)
}

const errorDocument = (code: string, message: string) =>
  `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message>` +
  `<RequestId>fake</RequestId></Error>`

const readBody = (req: http.IncomingMessage) =>
  new Promise<Buffer>((resolve, reject) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => resolve(Buffer.concat(chunks)))
    req.on("error", reject)
  })

const objectHeaders = (body: Buffer) => ({
  "Content-Type": "application/octet-stream",
  "Content-Length": body.byteLength,
  ETag: `"${crypto.createHash("md5").update(body).digest("hex")}"`,
  "Last-Modified": new Date().toUTCString()
})

export const make: Effect.Effect<FakeS3, never, Scope.Scope> = Effect.gen(function*() {
  const objects = new Map<string, Buffer>()
  const requests: Array<Recorded> = []
  let rules: Array<Rule> = []
  let uploadCounter = 0
  const uploads = new Map<string, Map<number, Buffer>>()
  const timers = new Set<ReturnType<typeof setInterval>>()

  let plan: { readonly method: string; readonly fault: (index: number) => Fault | undefined } | undefined
  let planned = 0

  const takeFault = (method: string): Fault | undefined => {
    if (plan !== undefined) return plan.method === method ? plan.fault(planned++) : undefined
    const rule = rules.find((rule) => rule.remaining > 0 && (rule.method === undefined || rule.method === method))
    if (rule === undefined) return undefined
    rule.remaining--
    return rule.fault
  }

  const sendObject = (res: http.ServerResponse, body: Buffer, fault: Fault | undefined) => {
    if (fault === "wrongChecksum") {
      res.writeHead(200, { ...objectHeaders(body), "x-amz-checksum-crc32": "AAAAAA==" })
      return void res.end(body)
    }
    if (fault === "corrupt") {
      const copy = Buffer.from(body)
      if (copy.length > 0) copy[0] = copy[0]! ^ 0xff
      res.writeHead(200, objectHeaders(copy))
      return void res.end(copy)
    }
    if (typeof fault === "object" && "shortBody" in fault) {
      res.writeHead(200, objectHeaders(body))
      return void res.write(body.subarray(0, fault.shortBody), () => res.socket?.destroy())
    }
    if (typeof fault === "object" && "drip" in fault) {
      res.writeHead(200, objectHeaders(body))
      let offset = 0
      const timer = setInterval(() => {
        if (res.destroyed || offset >= body.length) {
          clearInterval(timer)
          timers.delete(timer)
          if (!res.destroyed) res.end()
          return
        }
        res.write(body.subarray(offset, offset + fault.drip.bytes))
        offset += fault.drip.bytes
      }, fault.drip.everyMs)
      timers.add(timer)
      return
    }
    res.writeHead(200, objectHeaders(body))
    res.end(body)
  }

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://localhost")
    const method = req.method ?? "GET"
    requests.push({ method, path: url.pathname, query: url.searchParams, headers: req.headers })
    const body = await readBody(req)
    const fault = takeFault(method)
    if (fault === "hang") return
    if (typeof fault === "object" && "status" in fault) {
      return xml(res, fault.status, errorDocument(fault.code, "injected by the test"))
    }
    const [, bucket = "", ...rest] = decodeURIComponent(url.pathname).split("/")
    const key = rest.join("/")
    if (key === "") {
      if (method === "POST" && url.searchParams.has("delete")) {
        for (const match of body.toString().matchAll(/<Key>([^<]*)<\/Key>/g)) objects.delete(`${bucket}/${match[1]}`)
        return xml(res, 200, "<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></DeleteResult>")
      }
      if (method === "GET" && url.searchParams.get("list-type") === "2") {
        const prefix = `${bucket}/${url.searchParams.get("prefix") ?? ""}`
        const contents = [...objects].filter(([name]) => name.startsWith(prefix)).map(([name, value]) =>
          `<Contents><Key>${name.slice(bucket.length + 1)}</Key><Size>${value.length}</Size>` +
          `<LastModified>${new Date().toISOString()}</LastModified></Contents>`
        )
        return xml(
          res,
          200,
          `<ListBucketResult><IsTruncated>false</IsTruncated>${contents.join("")}</ListBucketResult>`
        )
      }
      return xml(res, 200, "<ok/>")
    }
    const name = `${bucket}/${key}`
    // Multipart, just enough to see a failed upload aborted: parts are kept per upload id.
    if (method === "POST" && url.searchParams.has("uploads")) {
      const id = `upload-${++uploadCounter}`
      uploads.set(id, new Map())
      return xml(
        res,
        200,
        `<InitiateMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${key}</Key>` +
          `<UploadId>${id}</UploadId></InitiateMultipartUploadResult>`
      )
    }
    const uploadId = url.searchParams.get("uploadId")
    if (uploadId !== null) {
      const parts = uploads.get(uploadId)
      if (parts === undefined) return xml(res, 404, errorDocument("NoSuchUpload", "no such upload"))
      if (method === "PUT") {
        parts.set(Number(url.searchParams.get("partNumber")), body)
        res.writeHead(200, { ETag: objectHeaders(body).ETag, "Content-Length": 0 })
        return void res.end()
      }
      uploads.delete(uploadId)
      if (method === "POST") {
        objects.set(name, Buffer.concat([...parts].sort(([a], [b]) => a - b).map(([, part]) => part)))
        return xml(res, 200, `<CompleteMultipartUploadResult><Key>${key}</Key></CompleteMultipartUploadResult>`)
      }
      res.writeHead(204)
      return void res.end()
    }
    if (method === "PUT") {
      objects.set(name, body)
      res.writeHead(200, { ETag: objectHeaders(body).ETag, "Content-Length": 0 })
      return void res.end()
    }
    if (method === "GET" || method === "HEAD") {
      const stored = objects.get(name)
      if (stored === undefined) return xml(res, 404, errorDocument("NoSuchKey", "The specified key does not exist."))
      if (method === "HEAD") {
        res.writeHead(200, objectHeaders(stored))
        return void res.end()
      }
      return sendObject(res, stored, fault)
    }
    if (method === "DELETE") {
      objects.delete(name)
      res.writeHead(204)
      return void res.end()
    }
    return xml(res, 400, errorDocument("NotImplemented", `${method} is not implemented by the fake`))
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => res.destroy())
  })
  server.keepAliveTimeout = 5000
  const { accepted, port, sockets } = yield* serve(server, () => {
    for (const timer of timers) clearInterval(timer)
  })
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    credentials: { accessKeyId: "fake", secretAccessKey: "fake" },
    setFault: (fault, options) => {
      rules = fault === undefined ? [] : [
        { fault, method: options?.method, remaining: options?.times ?? Number.POSITIVE_INFINITY },
        ...rules
      ]
    },
    setFaultPlan: (method, fault) => {
      plan = fault === undefined ? undefined : { method, fault }
      planned = 0
    },
    requests,
    count: (method) => requests.filter((request) => request.method === method).length,
    openConnections: Effect.sync(() => sockets.size),
    acceptedConnections: accepted,
    objects
  }
})
