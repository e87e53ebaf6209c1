/**
 * A resource acquired once for a test file (a Redis server, a cluster) and released after its last test.
 * `@effect/vitest`'s `layer` would do this, but in 0.30 it replaces the global `it`'s methods for the rest of the
 * file, so plain `beforeAll`/`afterAll` it is.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { afterAll, beforeAll } from "vitest"

export const beforeAllScoped = <A, E>(acquire: Effect.Effect<A, E, Scope.Scope>, timeoutMs = 60_000): () => A => {
  let value: { readonly current: A } | undefined
  let scope: Scope.CloseableScope | undefined
  beforeAll(async () => {
    scope = await Effect.runPromise(Scope.make())
    value = { current: await Effect.runPromise(Scope.extend(acquire, scope)) }
  }, timeoutMs)
  afterAll(async () => {
    if (scope !== undefined) await Effect.runPromise(Scope.close(scope, Exit.void))
  }, timeoutMs)
  return () => {
    if (value === undefined) throw new Error("the shared resource is not ready (did beforeAll fail?)")
    return value.current
  }
}
