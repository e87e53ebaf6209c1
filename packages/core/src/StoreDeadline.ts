/**
 * The deadline of the store call in progress. The cache bounds every store call (`metadataTimeout`, `blobTimeout`);
 * a store that honours this deadline (`honoursDeadline: true` in its service) settles each call by it, succeeding
 * or failing with a `Timeout` error, and the cache runs the call in the caller's own fiber. A store that does not is
 * run in a fiber of its own, which the cache stops waiting for at the deadline: one fiber per call more.
 *
 * Built-in stores honour it: Redis races each command against it (on top of its `commandTimeout`), the memory stores
 * never wait.
 *
 * @since 0.2.0
 */
import "./internal/effectVersion.js"
import * as Context from "effect/Context"

/**
 * The deadline, epoch milliseconds (`Date.now()`); `Infinity` outside a call the cache bounds.
 *
 * @since 0.2.0
 * @category tags
 */
export class StoreDeadline extends Context.Reference<StoreDeadline>()("@s3cache/core/StoreDeadline", {
  defaultValue: (): number => Number.POSITIVE_INFINITY
}) {}

/**
 * The error a store call gets when its deadline passes first.
 *
 * @since 0.2.0
 * @category errors
 */
export class DeadlineExceeded extends Error {
  constructor(readonly budgetMs: number) {
    super(`timed out: no answer within the cache's deadline (${budgetMs} ms)`)
    this.name = "DeadlineExceeded"
  }
}

/**
 * `run()`, settled by `deadline` at the latest: a promise that is still pending then is left to itself and the
 * result rejects with `DeadlineExceeded`. Costs one timer, and nothing when there is no deadline.
 *
 * @since 0.2.0
 * @category combinators
 */
export const race = <A>(deadline: number, run: () => Promise<A>): Promise<A> => {
  if (deadline === Number.POSITIVE_INFINITY) return run()
  const budgetMs = Math.max(0, Math.ceil(deadline - Date.now()))
  return new Promise<A>((resolve, reject) => {
    const timer = setTimeout(() => reject(new DeadlineExceeded(budgetMs)), budgetMs)
    run().then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error) => {
        clearTimeout(timer)
        reject(error)
      }
    )
  })
}
