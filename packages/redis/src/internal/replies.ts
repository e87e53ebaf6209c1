/**
 * Replies of the store's scripts, read by value, not by JavaScript type: the client's options decide whether an
 * integer arrives as a number or a string (`stringNumbers`), whichever major of ioredis and protocol (RESP2, RESP3) it
 * speaks. A reply of another shape is a protocol error, never a wrong answer; a record that does not decode is logged.
 *
 * @since 0.2.0
 */
import { MetadataStoreError } from "@s3cache/core/CacheError"
import * as Effect from "effect/Effect"
import type { Malformed } from "./record.js"

/** @internal */
export const make = (server: string) => {
  const unexpected = (method: string, reply: unknown) =>
    new MetadataStoreError({
      reason: "Protocol",
      method,
      description: `Redis at ${server}: an unexpected ${method} reply (${String(JSON.stringify(reply)).slice(0, 80)})`
    })
  const tuple = (method: string, reply: unknown): Effect.Effect<ReadonlyArray<unknown>, MetadataStoreError> =>
    Array.isArray(reply) ? Effect.succeed(reply) : Effect.fail(unexpected(method, reply))
  const strings = (method: string, reply: unknown): Effect.Effect<Array<string>, MetadataStoreError> =>
    Array.isArray(reply) && reply.every((item) => typeof item === "string")
      ? Effect.succeed(reply)
      : Effect.fail(unexpected(method, reply))
  /** a record that does not read back: logged, then dropped (lookup) or read as missing (getMany) */
  const warnMalformed = (method: string, namespace: string, hash: string, read: Malformed) =>
    Effect.logWarning(
      method === "lookup"
        ? "s3cache: dropped a malformed entry record from Redis; the lookup goes on as for a missing one"
        : "s3cache: read a malformed entry record from Redis as missing"
    ).pipe(Effect.annotateLogs({
      "s3cache.namespace": namespace,
      "s3cache.hash": hash,
      "s3cache.redis": server,
      "s3cache.problem": read.description
    }))
  return { unexpected, tuple, strings, warnMalformed }
}
