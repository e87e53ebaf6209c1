/**
 * How every S3 request is run: under the operation's budget, with the SDK promise tied to Effect interruption,
 * retried only when the failure is transient and only while the budget lasts.
 *
 * @since 0.1.0
 */
import type { BlobStoreError } from "@s3cache/core/CacheError"
import * as StoreDeadline from "@s3cache/core/StoreDeadline"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { type Deadline, runWithDeadline, type Window } from "./deadline.js"
import { type ErrorContext, isRetryable, toBlobStoreError } from "./errors.js"

/**
 * The SDK retries nothing (`maxAttempts: 1`): its default of 3 attempts with backoff took 1.9 s on a 503, and it
 * retried reads the cache would rather answer by running the effect. Retries happen here, visibly, within the
 * operation's budget.
 */
const backoff = Schedule.exponential("50 millis", 2).pipe(Schedule.jittered)

/**
 * A window that starts now.
 *
 * @internal
 */
export const startWindow = (budgetMs: number): Effect.Effect<Window> =>
  Effect.map(StoreDeadline.StoreDeadline, (limitAt) => ({ startedAt: Date.now(), budgetMs, limitAt }))

/**
 * Run one request (and its retries) inside `window`. `f` gets the deadline's signal, which it must hand to
 * `client.send` and to whatever reads the body.
 *
 * @internal
 */
export const request = <A>(
  context: ErrorContext,
  window: Window,
  attempts: number,
  f: (deadline: Deadline) => Promise<A>
): Effect.Effect<A, BlobStoreError> => {
  // `Effect.async` rather than `Effect.tryPromise`: the deadline's own controller is the only one, and an
  // interruption aborts it directly (tryPromise would add a second controller and a promise in between).
  const once = Effect.async<A, BlobStoreError>((resume) => {
    const interrupt = runWithDeadline(
      window,
      f,
      (value) => resume(Effect.succeed(value)),
      (error) => resume(Effect.failSync(() => toBlobStoreError(context, error)))
    )
    return Effect.sync(interrupt)
  })
  // no retry once the cache's deadline has passed: the backoff would sleep past it
  return attempts <= 1 ? once : Effect.retry(once, {
    schedule: backoff,
    times: attempts - 1,
    while: (error) => isRetryable(error) && Date.now() < window.limitAt
  })
}

/**
 * The options of `client.send`: the deadline's signal, and the SDK's own `requestTimeout` set to what is left of
 * the budget (a second, independent guard; the handler's default would cut large uploads short).
 *
 * @internal
 */
export const sendOptions = (deadline: Deadline) => ({
  abortSignal: deadline.signal,
  requestTimeout: deadline.remaining()
})
