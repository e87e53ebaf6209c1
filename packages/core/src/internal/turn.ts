/**
 * The event loop's next turn.
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"

/**
 * Go on in the event loop's next turn (`setImmediate`): timers and I/O due meanwhile run first, and so does the code
 * that awaits a caller's value. A microtask (`Effect.yieldNow`) would not let them: it runs before the loop moves on.
 *
 * @internal
 */
export const nextTurn: Effect.Effect<void> = Effect.async<void>((resume) => {
  const immediate = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(immediate))
})
