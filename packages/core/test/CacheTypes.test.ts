/**
 * The public types say what the cache takes. The `@ts-expect-error` lines are checked by `pnpm check` (an error that
 * no longer happens fails the type check); the runtime half checks what a JavaScript caller (or `as any`) gets.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Cache from "../src/Cache.js"
import type * as CacheKey from "../src/CacheKey.js"
import { makeHarness } from "./utils/harness.js"

// Never called: these lines only have to type-check, or fail to, as marked.
export const typeChecks = () => {
  const num = Effect.succeed(1)
  const row = Effect.succeed({ at: new Date(), total: 10n })
  const Row = Schema.Struct({ at: Schema.Date, total: Schema.BigInt })

  // keys: strings, numbers, arrays, records (inside options), Dates, bytes, maps and sets
  Cache.cached(num, "SELECT 1")
  Cache.cached(num, ["report", 2026, { region: "eu", page: undefined }])
  Cache.cached(num, { key: { table: "users", since: new Date(0), ids: new Set([1, 2]) } })
  num.pipe(Cache.cached(42))
  const key: CacheKey.CacheKey = new Map([["a", [1n, true, null, new Uint8Array(1)]]])
  Cache.cached(num, { key })

  // a misspelt option is an error, never silently a key or ignored
  // @ts-expect-error: "namspace" is not an option
  Cache.cached(num, { key: "k", namspace: "x" })
  // @ts-expect-error: "namspace" is not an option (data-last)
  num.pipe(Cache.cached({ key: "k", namspace: "x" }))
  // @ts-expect-error: a record without `key` is neither options nor a key: records go in { key: … }
  Cache.cached(num, { ky: "k" })
  // @ts-expect-error: functions are not keys
  Cache.cached(num, { key: () => 1 })
  // @ts-expect-error: nor are class instances
  Cache.cached(num, { key: new URL("https://example.com") })
  // @ts-expect-error: a key is required
  Cache.cached(num, { namespace: "x" })

  // the schema is tied to the effect's value, in both forms
  const typed: Effect.Effect<{ readonly at: Date; readonly total: bigint }, never, Cache.Cache> = Cache.cached(row, {
    key: "row",
    schema: Row
  })
  row.pipe(Cache.cached({ key: "row", schema: Row }))
  // @ts-expect-error: a string schema for a number
  Cache.cached(num, { key: "k", schema: Schema.String })
  // @ts-expect-error: a string schema for a number (data-last)
  num.pipe(Cache.cached({ key: "k", schema: Schema.String }))
  // @ts-expect-error: the schema decides the format
  Cache.cached(row, { key: "row", schema: Row, format: "v8" })

  // wrap needs an identity
  Cache.wrap((id: number) => Effect.succeed(id), { name: "byId" })
  Cache.wrap((id: number, _trace: string) => Effect.succeed(id), { key: (id) => ["byId", id] })
  Cache.wrap((_at: Date) => row, { name: "rows", schema: Row })
  // @ts-expect-error: no name, no key function: two inline functions would share entries
  Cache.wrap((id: number) => Effect.succeed(id), { namespace: "users" })
  // @ts-expect-error: arguments that are not keys need a key function
  Cache.wrap((f: () => number) => Effect.succeed(f()), { name: "calls" })
  // @ts-expect-error: the schema decides the format (wrap)
  Cache.wrap((_at: Date) => row, { name: "rows", schema: Row, format: "v8" })
  // @ts-expect-error: the schema must match the function's value
  Cache.wrap((id: number) => Effect.succeed(id), { name: "byId", schema: Schema.String })
  return typed
}

describe("the options at run time (JavaScript callers)", () => {
  it.scoped("a misspelt option or a record without key is refused: the call runs uncached and says why", () =>
    Effect.gen(function*() {
      const { cache } = yield* makeHarness()
      let runs = 0
      const effect = Effect.sync(() => ++runs)
      const provide = Effect.provideService(Cache.Cache, cache)
      yield* Cache.cached(effect, { key: "k", namspace: "x" } as any).pipe(provide)
      yield* Cache.cached(effect, { ky: "k" } as any).pipe(provide)
      yield* Cache.cached(effect, { key: "k", schema: "not a schema" } as any).pipe(provide)
      yield* Cache.cached(effect, { key: "k", namespace: 7 } as any).pipe(provide)
      yield* cache.flush
      assert.strictEqual(runs, 4)
      const stats = yield* cache.stats
      assert.strictEqual(stats.bypassed, 4)
      assert.strictEqual(stats.writes, 0, "nothing was stored under a guessed key or the default namespace")
    }))
})
