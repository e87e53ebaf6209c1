/**
 * A circuit breaker for one store. After `circuitBreakerFailures` consecutive failures of the store (timeouts,
 * unreachable, unknown errors, defects), calls skip it for `circuitBreakerCooldown`: they fail at once, without
 * paying the store's deadline, and the cache goes on as for any store failure (the effect runs uncached, the write
 * is not made). After the cool-down one call goes through as a probe: its success closes the breaker, its failure
 * opens it for another cool-down. An answer that proves the store works (a malformed record, a refused argument) is a
 * success here.
 *
 * @since 0.3.0
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import type * as CacheConfig from "../CacheConfig.js"

/** @internal */
export type State = "closed" | "half-open" | "open"

/** The value of the `s3cache_breaker_state` gauge for each state. @internal */
export const gaugeValue: Record<State, number> = { closed: 0, "half-open": 1, open: 2 }

/** @internal */
export interface Breaker {
  /**
   * May a call go to the store at `now` (ms)? `"probe"`: yes, as the one call that decides whether the breaker
   * closes (the caller must report its outcome, or `abandoned`); `undefined`: no, skip the store.
   */
  readonly admit: (now: number) => "call" | "probe" | undefined
  /** the outcome of an admitted call: `failed` true when it counts against the store */
  readonly settled: (failed: boolean, now: number) => void
  /** an admitted probe that ended with no outcome (interrupted): another call may probe */
  readonly abandoned: () => void
  /** whether calls go to the store without asking (the common case, checked by the hit path) */
  readonly closed: () => boolean
  /** how long until the next probe, ms (0 when not open) */
  readonly retryInMs: (now: number) => number
}

/**
 * `onChange`: called with each new state (for the gauge); `failures` 0 turns the breaker off.
 *
 * @internal
 */
export const make = (config: CacheConfig.Resolved, onChange: (state: State) => void): Breaker => {
  const threshold = config.circuitBreakerFailures
  const coolDownMs = Duration.toMillis(config.circuitBreakerCooldown)
  let failures = 0
  /** while open: when the next probe may go; 0 when closed */
  let openUntil = 0
  let probing = false
  /** when the probe under way was admitted: one that has not answered within a cool-down is given up on */
  let probedAt = 0
  let last: State = "closed"
  const change = (state: State) => {
    if (state === last) return
    last = state
    onChange(state)
  }
  return {
    admit: (now) => {
      if (openUntil === 0) return "call"
      if (now < openUntil || (probing && now < probedAt + coolDownMs)) return undefined
      probing = true
      probedAt = now
      change("half-open")
      return "probe"
    },
    settled: (failed, now) => {
      if (!failed) {
        failures = 0
        probing = false
        if (openUntil !== 0) {
          openUntil = 0
          change("closed")
        }
        return
      }
      failures++
      if (threshold === 0) return
      // a failed probe, or the threshold reached: skip the store for a cool-down
      if (probing || (openUntil === 0 && failures >= threshold)) {
        probing = false
        openUntil = now + coolDownMs
        change("open")
      }
    },
    abandoned: () => {
      probing = false
    },
    closed: () => openUntil === 0,
    retryInMs: (now) => openUntil === 0 ? 0 : Math.max(0, openUntil - now)
  }
}

/**
 * Does a store call's failure count against the store? A timeout, an unreachable store, an unknown error or a defect
 * do; an answer the store gave (`Protocol`, `InvalidArgument`) proves it works. An interruption is no outcome.
 *
 * @internal
 */
export const countsAgainst = (cause: Cause.Cause<unknown>): boolean => {
  const failure = Cause.failureOption(cause)
  if (Option.isNone(failure)) return true
  const reason = (failure.value as { readonly reason?: unknown } | null)?.reason
  return reason !== "Protocol" && reason !== "InvalidArgument"
}
