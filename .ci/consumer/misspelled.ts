// Pack test (3b): a misspelt option must be a type error, never a silent cache key. `.ci/pack-test` requires tsc to
// FAIL on this file, with the error on the misspelt property.
import { Cache } from "@s3cache/core"
import * as Effect from "effect/Effect"

export const misspelt = Effect.succeed(1).pipe(Cache.cached({ key: "k", namspace: "reports" }))
