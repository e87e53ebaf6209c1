/**
 * The `S3Client` of one store, configured so that no fault can hold a caller (RELIABILITY.md): connection and
 * socket timeouts, a timeout that throws instead of logging, bounded keep-alive pools, no SDK retries, and
 * checksums only where the target can take them.
 *
 * @since 0.1.0
 */
import { S3Client } from "@aws-sdk/client-s3"
import { NodeHttpHandler } from "@smithy/node-http-handler"
import * as http from "node:http"
import * as https from "node:https"
import type { Resolved } from "./options.js"

/**
 * Idle keep-alive sockets are closed after this long: below the 5 s keep-alive timeout of Node servers (s3rver,
 * many proxies) and far below S3's, so a request is rarely written onto a socket the server is closing, which
 * would fail a read that is not retried.
 */
const idleSocketMs = 4000

/** @internal */
export interface Logger {
  readonly warn: (message: string) => void
}

/** @internal */
export interface Client {
  readonly s3: S3Client
  /** the connection pool, for `destroy` */
  readonly agents: ReadonlyArray<http.Agent>
}

/** @internal */
export const make = (resolved: Resolved, logger: Logger): Client => {
  const agentOptions = { keepAlive: true, maxSockets: resolved.maxSockets, timeout: idleSocketMs }
  const httpAgent = new http.Agent(agentOptions)
  const httpsAgent = new https.Agent(agentOptions)
  const noop = () => {}
  const handlerLogger = { trace: noop, debug: noop, info: noop, warn: logger.warn, error: logger.warn }
  const checksums = resolved.checksums === "when-required" ? "WHEN_REQUIRED" : "WHEN_SUPPORTED"
  const s3 = new S3Client({
    region: resolved.region,
    ...(resolved.endpoint !== undefined ? { endpoint: resolved.endpoint.href.replace(/\/$/, "") } : {}),
    forcePathStyle: resolved.forcePathStyle,
    ...(resolved.credentials !== undefined ? { credentials: resolved.credentials } : {}),
    maxAttempts: 1,
    requestChecksumCalculation: checksums,
    responseChecksumValidation: checksums,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: resolved.connectTimeoutMs,
      // Per request the store passes what is left of the operation's budget; this is the fallback.
      requestTimeout: resolved.timeoutMs,
      throwOnRequestTimeout: true,
      // A socket silent for a whole base timeout is dead, whatever the operation's budget.
      socketTimeout: resolved.timeoutMs,
      httpAgent,
      httpsAgent,
      logger: handlerLogger
    })
  })
  return { s3, agents: [httpAgent, httpsAgent] }
}

/**
 * Close every socket. `S3Client.destroy` destroys the handler's agents too; destroying them again is harmless and
 * covers a handler that did not.
 *
 * @internal
 */
export const destroy = (client: Client): void => {
  client.s3.destroy()
  for (const agent of client.agents) agent.destroy()
}
