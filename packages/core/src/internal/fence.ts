/**
 * How cache steps fail safely: a deadline on every store call, and a fence that turns any failure or defect of a
 * cache step into a counted, logged fallback.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type { BlobStore } from "../BlobStore.js"
import type * as CacheConfig from "../CacheConfig.js"
import { BlobStoreError, MetadataStoreError } from "../CacheError.js"
import type * as CacheMetrics from "../CacheMetrics.js"
import type { MetadataStore } from "../MetadataStore.js"
import { StoreDeadline } from "../StoreDeadline.js"
import * as Breaker from "./breaker.js"
import { DefaultServices, FiberId, FiberRef } from "./effect3.js"

/** @internal */
export interface Fence {
  /**
   * `settled` runs once the store call has settled, whether the caller still waits for it or it was left to finish in
   * the background (its deadline passed, its caller was interrupted)
   */
  readonly withMetadataDeadline: <A>(
    method: string,
    effect: Effect.Effect<A, MetadataStoreError>,
    settled?: Effect.Effect<void>
  ) => Effect.Effect<A, MetadataStoreError>
  /** `bytes`: the payload's size when known, which extends the deadline at `blobMinThroughput` */
  readonly withBlobDeadline: <A>(
    method: string,
    key: string | undefined,
    effect: Effect.Effect<A, BlobStoreError>,
    bytes?: number
  ) => Effect.Effect<A, BlobStoreError>
  /** count and log a cache failure; `consequence` says what the cache does about it */
  readonly report: (operation: string, consequence: string, cause: Cause.Cause<unknown>) => Effect.Effect<void>
  /** run `effect`; on any failure or defect (not an interruption), report it and return `fallback()` */
  readonly fenced: <A, B, R>(
    operation: string,
    consequence: string,
    effect: Effect.Effect<A, unknown, R>,
    fallback: () => B
  ) => Effect.Effect<A | B, never, R>
  /** each store's circuit breaker, which the deadlines consult */
  readonly breakers: { readonly metadata: Breaker.Breaker; readonly blob: Breaker.Breaker }
}

/** @internal */
export const make = (
  config: CacheConfig.Resolved,
  metrics: CacheMetrics.Instruments,
  stores: { readonly metadata: MetadataStore["Type"]; readonly blobs: BlobStore["Type"] }
): Fence => {
  const breakers = {
    metadata: Breaker.make(config, (state) => metrics.metadataBreaker.unsafeUpdate(Breaker.gaugeValue[state], [])),
    blob: Breaker.make(config, (state) => metrics.blobBreaker.unsafeUpdate(Breaker.gaugeValue[state], []))
  }
  const threshold = config.circuitBreakerFailures
  // a cache of the same name built again starts closed, whatever the last one left in the gauge
  metrics.metadataBreaker.unsafeUpdate(0, [])
  metrics.blobBreaker.unsafeUpdate(0, [])

  // The store's breaker first: while it is open the call fails at once, without paying the deadline. The outcome of
  // every call it admits (the deadline's timeout included) is the breaker's to count.
  const withDeadline = <A, E>(
    effect: Effect.Effect<A, E>,
    breaker: Breaker.Breaker,
    honours: boolean | undefined,
    duration: Duration.Duration,
    option: string,
    error: (reason: "Timeout" | "Unavailable", description: string) => E,
    settled: Effect.Effect<void> | undefined
  ): Effect.Effect<A, E> =>
    // Admitted and observed in one uninterruptible region: a probe admitted must report its outcome, or the breaker
    // would wait for it for ever.
    Effect.uninterruptibleMask((restore) =>
      Effect.clockWith((clock) => {
        const now = clock.unsafeCurrentTimeMillis()
        const admitted = breaker.admit(now)
        if (admitted === undefined) {
          const retryIn = breaker.retryInMs(now)
          const skip = error(
            "Unavailable",
            `not called: the store failed ${threshold} times in a row, and the circuit breaker skips it ` +
              (retryIn > 0 ? `for ${Math.ceil(retryIn / 100) / 10} s more` : "until the call that probes it answers") +
              " (circuitBreakerFailures, circuitBreakerCooldown)"
          )
          skips.add(skip as object)
          return Effect.fail(skip)
        }
        const onTimeout = (description: string) => error("Timeout", description)
        return Effect.onExit(
          restore(deadline(effect, clock, honours, duration, option, onTimeout, settled)),
          (exit) => {
            if (Exit.isSuccess(exit)) breaker.settled(false, clock.unsafeCurrentTimeMillis())
            else if (!Cause.isInterruptedOnly(exit.cause)) {
              breaker.settled(Breaker.countsAgainst(exit.cause), clock.unsafeCurrentTimeMillis())
            } else if (admitted === "probe") breaker.abandoned()
            return Effect.void
          }
        )
      })
    )

  // Deadlines are enforced here, whatever the store does: a store call that ignores interruption must not hold the
  // caller past its deadline. A store that honours the deadline (`StoreDeadline`) gets it and runs in the caller's
  // fiber. Any other costs one fiber (the store call) and one timer on the live clock: the caller waits for whichever
  // comes first and leaves the call to finish, interrupted, in the background. Under another clock (TestClock) the
  // timer must be the clock's: the same fiber is joined under Effect's own timeout.
  const deadline = <A, E>(
    effect: Effect.Effect<A, E>,
    clock: Clock.Clock,
    honours: boolean | undefined,
    duration: Duration.Duration,
    option: string,
    onTimeout: (description: string) => E,
    settled: Effect.Effect<void> | undefined
  ): Effect.Effect<A, E> => {
    const timeout = () => onTimeout(`no answer within ${Duration.format(duration)} (${option})`)
    const live = clock === liveClock
    const ms = Duration.toMillis(duration)
    if (live && honours === true) return withStoreDeadline(effect, Date.now() + ms, settled ?? Effect.void)
    if (settled !== undefined) effect = Effect.onExit(effect, () => settled)
    return Effect.flatMap(
      // A daemon, against the rule that background work forks into a scope the layer owns, and on purpose: a
      // child fiber would hold its caller's exit until a call that ignores interruption ends, and a fiber of a
      // layer-owned set would hold the layer's closing the same way (closing a set awaits its fibers; tried, and
      // the tests of such calls hung at shutdown). It is interrupted at the deadline, and ends with an Exit rather
      // than a failure, which Effect would log as unhandled.
      Effect.forkDaemon(Effect.interruptible(Effect.exit(effect))),
      (fiber) =>
        live ? awaitWithTimer(fiber, ms, timeout) : Fiber.join(fiber).pipe(
          Effect.flatten,
          Effect.timeoutFail({ duration, onTimeout: timeout }),
          // the call is left to finish, interrupted, in the background
          Effect.onExit(() => Fiber.interruptFork(fiber))
        )
    )
  }

  // When a store is down every call fails the same way: one warning per operation, kind of failure and window says
  // so, the rest are logged at debug level and counted, and the next warning tells how many there were. The kind is
  // part of the window's key, so one failure (an invalid TTL) never hides another (an invalid namespace).
  // The warning is one line (what failed, the error's reason and message, what the cache did); the cause, with
  // Effect's fiber and span trace, is logged beside it at debug level.
  const windows = new Map<string, { start: number; suppressed: number }>()
  const report: Fence["report"] = (operation, consequence, cause) =>
    Effect.zipRight(
      Metric.increment(metrics.errors),
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const key = `${operation}\u0000${kindOf(cause)}`
        const window = windows.get(key)
        const message = `s3cache: ${operation} failed; ${consequence}: ${describe(cause)}`
        const log = (window === undefined || now - window.start >= warningWindowMs)
          ? Effect.suspend(() => {
            const suppressed = window?.suppressed ?? 0
            windows.set(key, { start: now, suppressed: 0 })
            return Effect.zipRight(
              Effect.logWarning(
                suppressed === 0 ? message : `${message} (and ${suppressed} more ${operation} failures before it)`
              ),
              Effect.logDebug(message, cause)
            )
          })
          : Effect.suspend(() => {
            window.suppressed++
            return Effect.logDebug(message, cause)
          })
        return log.pipe(Effect.annotateLogs({ "s3cache.operation": operation, "s3cache.cache": config.name }))
      })
    )

  return {
    withMetadataDeadline: (method, effect, settled) =>
      withDeadline(
        effect,
        breakers.metadata,
        stores.metadata.honoursDeadline,
        config.metadataTimeout,
        "metadataTimeout",
        (reason, description) => new MetadataStoreError({ reason, method, description }),
        settled
      ),
    withBlobDeadline: (method, key, effect, bytes = 0) =>
      withDeadline(
        effect,
        breakers.blob,
        stores.blobs.honoursDeadline,
        Duration.sum(config.blobTimeout, Duration.seconds(bytes / config.blobMinThroughput)),
        bytes === 0 ? "blobTimeout" : "blobTimeout and blobMinThroughput",
        (reason, description) => new BlobStoreError({ reason, method, key, description }),
        undefined
      ),
    report,
    breakers,
    fenced: (operation, consequence, effect, fallback) =>
      Effect.catchAllCause(effect, (cause) =>
        Cause.isInterruptedOnly(cause)
          ? Effect.failCause(cause as Cause.Cause<never>)
          : Effect.as(report(operation, consequence, cause), fallback()))
  }
}

const warningWindowMs = 5000

/** The errors of calls an open breaker skipped: their outcome is known, nothing happened on the store. */
const skips = new WeakSet<object>()

/**
 * Did the call fail because an open circuit breaker skipped it (so it surely did nothing on the store)?
 *
 * @internal
 */
export const isSkipped = (cause: Cause.Cause<unknown>): boolean => {
  const failure = Cause.failureOption(cause)
  return Option.isSome(failure) && typeof failure.value === "object" && failure.value !== null &&
    skips.has(failure.value)
}

/**
 * `effect` with `deadline` as its `StoreDeadline`, then `settled`. What `Effect.provideService` does, in one region
 * rather than its acquire-use-release (~25 Effect operations, on every store call of every hit): the context is
 * swapped in and back out while nothing can interrupt but the store call itself.
 */
const withStoreDeadline = <A, E>(
  effect: Effect.Effect<A, E>,
  deadline: number,
  settled: Effect.Effect<void>
): Effect.Effect<A, E> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.withFiberRuntime<A, E>((fiber) => {
      const outer = fiber.getFiberRef(FiberRef.currentContext)
      const back = Effect.zipRight(FiberRef.set(FiberRef.currentContext, outer), settled)
      return Effect.zipRight(
        FiberRef.set(FiberRef.currentContext, Context.add(outer, StoreDeadline, deadline)),
        Effect.matchCauseEffect(restore(effect), {
          onFailure: (cause) => Effect.zipRight(back, Effect.failCause(cause)),
          onSuccess: (value) => Effect.as(back, value)
        })
      )
    })
  )

/**
 * The live clock: under it, deadlines are wall-clock timers; under another (TestClock), they are that clock's.
 *
 * @internal
 */
export const liveClock = Context.get(DefaultServices.liveServices, Clock.Clock)

/**
 * The exit of `fiber`, or `onTimeout()` once `ms` have passed (then the fiber is interrupted without waiting for
 * it). A caller interrupted meanwhile interrupts the fiber too.
 */
const awaitWithTimer = <A, E>(
  fiber: Fiber.RuntimeFiber<Exit.Exit<A, E>>,
  ms: number,
  onTimeout: () => E
): Effect.Effect<A, E> =>
  Effect.async<A, E>((resume) => {
    let settled = false
    const timer = setTimeout(() => {
      if (settled) return
      settled = true
      fiber.unsafeInterruptAsFork(FiberId.none)
      resume(Effect.fail(onTimeout()))
    }, ms)
    fiber.addObserver((exit) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resume(Exit.isSuccess(exit) ? exit.value : Exit.failCause(exit.cause) as Exit.Exit<A, E>)
    })
    return Effect.sync(() => {
      settled = true
      clearTimeout(timer)
      fiber.unsafeInterruptAsFork(FiberId.none)
    })
  })

/** The kind of a failure, for the warning windows: the error's tag and reason, or "defect". */
const kindOf = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  if (Option.isNone(failure)) return "defect"
  const error = failure.value
  if (typeof error !== "object" || error === null) return typeof error
  const tag = (error as { readonly _tag?: unknown })._tag
  const reason = (error as { readonly reason?: unknown }).reason
  return `${String(tag)}:${String(reason)}`
}

// One line: an error's message may hold line breaks (a driver's, a defect's), and a log line must not.
const describe = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  const text = Option.isSome(failure)
    ? failure.value instanceof Error ? failure.value.message : String(failure.value)
    : Cause.pretty(cause).split("\n")[0] ?? "unknown defect"
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim()
}
