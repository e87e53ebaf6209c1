/**
 * A cache on memory stores whose methods a test can replace, to inject faults where it wants them.
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as BlobStore from "../../src/BlobStore.js"
import * as Cache from "../../src/Cache.js"
import * as CacheBus from "../../src/CacheBus.js"
import type * as CacheConfig from "../../src/CacheConfig.js"
import type { CacheInputError } from "../../src/CacheError.js"
import * as MetadataStore from "../../src/MetadataStore.js"

export type MetadataService = MetadataStore.MetadataStore["Type"]
export type BlobService = BlobStore.BlobStore["Type"]

let counter = 0
/** metrics are global and tagged by cache name: a unique name keeps each test's numbers its own */
export const uniqueName = (prefix = "test") => `${prefix}-${process.pid}-${++counter}`

export interface Harness {
  readonly cache: Cache.Service
  /** the untouched memory stores under the overrides */
  readonly metadata: MetadataService
  readonly blobs: BlobService
}

export interface HarnessOptions {
  readonly cache?: CacheConfig.Options
  readonly metadata?: (store: MetadataService) => Partial<MetadataService>
  readonly blobs?: (store: BlobService) => Partial<BlobService>
  /** share stores with another harness (two "processes" on one backend) */
  readonly stores?: { readonly metadata: MetadataService; readonly blobs: BlobService }
  /** the bus between instances (share one between harnesses); none by default */
  readonly bus?: CacheBus.CacheBus["Type"]
}

export const makeHarness = (
  options: HarnessOptions = {}
): Effect.Effect<Harness, CacheInputError, Scope.Scope> =>
  Effect.gen(function*() {
    const metadata = options.stores?.metadata ?? (yield* MetadataStore.makeMemory)
    const blobs = options.stores?.blobs ?? (yield* BlobStore.makeMemory)
    // Payloads go to the blob store unless a test asks for inline ones: most tests here are about the blob path, its
    // faults and races (CacheInline.test.ts covers payloads inline in the record).
    const cache = yield* Cache.make({ name: uniqueName(), inlineThreshold: 0, ...options.cache }).pipe(
      // a method a test replaced may hang or ignore the deadline: the cache must enforce it as for any such store
      Effect.provideService(
        MetadataStore.MetadataStore,
        options.metadata === undefined
          ? metadata
          : { ...metadata, honoursDeadline: false, ...options.metadata(metadata) }
      ),
      Effect.provideService(
        BlobStore.BlobStore,
        options.blobs === undefined ? blobs : { ...blobs, honoursDeadline: false, ...options.blobs(blobs) }
      ),
      options.bus === undefined ? (effect) => effect : Effect.provideService(CacheBus.CacheBus, options.bus)
    )
    return { cache, metadata, blobs }
  })

/** An effect that counts its runs and returns `value` (after `delay`, when given). */
export const counted = <A>(value: A) => {
  let runs = 0
  const effect = Effect.sync(() => {
    runs++
    return value
  })
  return {
    effect,
    get runs() {
      return runs
    }
  }
}

/** Yield to other fibers until `condition` holds; dies after `attempts` rounds instead of hanging. */
export const waitUntil = (condition: Effect.Effect<boolean>, attempts = 10_000): Effect.Effect<void> =>
  Effect.flatMap(condition, (done) =>
    done
      ? Effect.void
      : attempts <= 0
      ? Effect.dieMessage("waitUntil: the condition never held")
      : Effect.zipRight(Effect.yieldNow(), waitUntil(condition, attempts - 1)))

/** Start `call`, let the TestClock pass `by`, and return the call's value. */
export const pastDeadline = <A, E>(call: Effect.Effect<A, E>, by: Duration.DurationInput) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(call)
    yield* TestClock.adjust(by)
    return yield* Fiber.join(fiber)
  })
