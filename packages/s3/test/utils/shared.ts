/**
 * Resources shared by the tests of one `describe` (a server, a store): acquired in `beforeAll`, released in
 * `afterAll`. Not `it.layer` / `layer` from @effect/vitest: in 0.30 it replaces the methods of the global `it` for
 * the rest of the file.
 */
import { afterAll, beforeAll } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"

export const shared = <A, E>(
  acquire: Effect.Effect<A, E, Scope.Scope>,
  timeoutMs = 60_000
): Effect.Effect<A> => {
  const scope = Effect.runSync(Scope.make())
  const cached = Effect.runSync(Effect.cached(Effect.orDie(Scope.extend(acquire, scope))))
  beforeAll(() => Effect.runPromise(cached), timeoutMs)
  afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)), timeoutMs)
  return cached
}

let bucketCounter = 0
/** A bucket name no other test of this process used (s3rver wants at least 3 characters). */
export const freshBucket = (label: string) => `${label}-${process.pid}-${++bucketCounter}`
