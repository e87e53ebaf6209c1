/**
 * A warning for a mistake that costs every hit and says nothing: an embedded cache provided per request (or per
 * call, or per job). Its records live in the layer, so each request builds an empty cache, misses, and throws it away.
 *
 * What counts is the symptom, not the pattern: an embedded cache that was closed after serving misses and not a
 * single hit. A test suite builds and closes many embedded caches too, but its tests hit (that is what they check);
 * a short-lived cache with hits is doing its job. When the `threshold`-th embedded cache is built while `threshold - 1`
 * others closed in this way within `window`, one warning is logged, once per process, in the fiber that builds it
 * (the user's logger).
 *
 * Caches that share a name share their metrics: the counts are the differences over the cache's life, so with
 * overlapping caches a hit of one may hide another's emptiness (a missed warning, never a false one).
 *
 * @since 0.2.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Service } from "../Cache.js"

/** @internal */
export interface Detector {
  /** watch one embedded cache, from its build to the close of the scope it was built in */
  readonly track: (cache: Service) => Effect.Effect<void, never, Scope.Scope>
}

/** @internal */
export const message = (threshold: number, window: Duration.Duration): string =>
  `s3cache: ${threshold} embedded caches (Cache.layerEmbedded) were built within ${Duration.format(window)}, ` +
  `and the ${threshold - 1} before this one were closed without a single hit. An embedded cache keeps its entries ` +
  "in the layer: they die when the layer closes, so a layer provided per request, per call or per job starts empty " +
  "every time and never hits. Build it once for the process and share it: " +
  "ManagedRuntime.make(Cache.layerEmbedded()), CacheClient.make(Cache.layerEmbedded()) from Promise code, or one " +
  "Effect.provide (or Layer.memoize) around the whole program. (Logged once.)"

/** @internal */
export const make = (
  options: { readonly threshold?: number | undefined; readonly window?: Duration.DurationInput | undefined } = {}
): Detector => {
  const threshold = options.threshold ?? 10
  const window = Duration.decode(options.window ?? "1 minute")
  const windowMs = Duration.toMillis(window)
  let warned = false
  // close times (ms) of the latest caches that closed with misses and no hit; at most threshold - 1 are needed
  let emptyCloses: Array<number> = []
  const track = (cache: Service): Effect.Effect<void, never, Scope.Scope> =>
    Effect.gen(function*() {
      if (warned) return
      const now = yield* Clock.currentTimeMillis
      emptyCloses = emptyCloses.filter((at) => now - at < windowMs)
      if (emptyCloses.length >= threshold - 1) {
        warned = true
        emptyCloses = []
        return yield* Effect.logWarning(message(threshold, window))
      }
      const before = yield* cache.stats
      yield* Effect.addFinalizer(() =>
        Effect.gen(function*() {
          const after = yield* cache.stats
          if (warned || after.hits !== before.hits || after.misses === before.misses) return
          emptyCloses.push(yield* Clock.currentTimeMillis)
          if (emptyCloses.length > threshold) emptyCloses.shift()
        })
      )
    })
  return { track }
}

/**
 * The detector of this process, which `Cache.layerEmbedded` feeds.
 *
 * @internal
 */
export const embedded: Detector = make()
