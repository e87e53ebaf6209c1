/**
 * Helpers of the fault tests: a cache on a given store, and timing a call against its deadline.
 */
import { assert } from "@effect/vitest"
import { BlobStore } from "@s3cache/core/BlobStore"
import * as Cache from "@s3cache/core/Cache"
import type * as CacheConfig from "@s3cache/core/CacheConfig"
import * as MetadataStore from "@s3cache/core/MetadataStore"
import * as Effect from "effect/Effect"

let caches = 0

/** A cache on `blobs` and a memory metadata store (a fresh one unless given). */
export const cacheOn = (
  blobs: BlobStore["Type"],
  metadata?: MetadataStore.MetadataStore["Type"],
  // payloads to S3 even when small, by default: the fault tests are about the S3 path (inline payloads skip it)
  inlineThreshold = 0,
  options: CacheConfig.Options = {}
) =>
  Effect.gen(function*() {
    const store = metadata ?? (yield* MetadataStore.makeMemory)
    return yield* Cache.make({ name: `faults-${process.pid}-${++caches}`, inlineThreshold, ...options }).pipe(
      Effect.provideService(MetadataStore.MetadataStore, store),
      Effect.provideService(BlobStore, blobs)
    )
  })

/**
 * Run `effect` and check it finished within `deadlineMs` plus a generous margin for a loaded 2-core machine.
 * The only timed assertion of the suite: a cache call must never outlive its deadline.
 */
export const withinDeadline = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  deadlineMs: number,
  label: string,
  marginMs = 1500
): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    const started = Date.now()
    return Effect.tap(effect, () =>
      Effect.sync(() => {
        const elapsed = Date.now() - started
        assert.isAtMost(elapsed, deadlineMs + marginMs, `${label}: took ${elapsed} ms, deadline ${deadlineMs} ms`)
      }))
  })
