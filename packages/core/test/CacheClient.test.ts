import { assert, describe, expectTypeOf, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as Tracer from "effect/Tracer"
import * as BlobStore from "../src/BlobStore.js"
import * as Cache from "../src/Cache.js"
import * as CacheClient from "../src/CacheClient.js"
import { CacheInputError } from "../src/CacheError.js"
import * as embeddedChurn from "../src/internal/embeddedChurn.js"
import * as MetadataStore from "../src/MetadataStore.js"
import { uniqueName } from "./utils/harness.js"

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const embedded = () => Cache.layerEmbedded({ storageBackend: "memory", name: uniqueName("client") })

/** the rejection of `promise`, which must reject */
const rejection = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error("expected a rejection")
}

class NotFound extends Error {
  constructor(readonly id: string) {
    super(`no user ${id}`)
  }
}

interface User {
  readonly id: string
  readonly name: string
}

/** a warning logger that keeps the messages */
const captureWarnings = () => {
  const warnings: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    if (logLevel._tag === "Warning") warnings.push(Array.isArray(message) ? message.join(" ") : String(message))
  })
  return { warnings, layer: Logger.replace(Logger.defaultLogger, logger) }
}

// First in the file: the process-wide detector warns once, and the tests below close embedded caches with misses only.
describe("Cache.layerEmbedded provided per call", () => {
  it("warns once, when the 10th is built while 9 closed without a hit", async () => {
    const { layer, warnings } = captureWarnings()
    const perCall = (i: number) =>
      Effect.succeed(i).pipe(Cache.cached(["per-call", i]), Effect.provide(embedded()), Effect.provide(layer))
    const at: Array<number> = []
    for (let i = 1; i <= 15; i++) {
      const before = warnings.length
      assert.strictEqual(await Effect.runPromise(perCall(i)), i)
      if (warnings.length > before) at.push(i)
    }
    assert.deepStrictEqual(at, [10])
    assert.include(warnings[0], "Cache.layerEmbedded")
    assert.include(warnings[0], "never hits")
    assert.include(warnings[0], "CacheClient.make")
  })

  const fakeCache = () => {
    const counts = { hits: 0, misses: 0 }
    const cache = { stats: Effect.sync(() => ({ ...counts })) } as unknown as Cache.Service
    return { counts, cache }
  }
  /** one cache's life: built, used (`hits`, `misses`), closed (unless `open`) */
  const life = (
    detector: embeddedChurn.Detector,
    use: { readonly hits: number; readonly misses: number; readonly open?: boolean }
  ) =>
    Effect.gen(function*() {
      const { cache, counts } = fakeCache()
      const scope = yield* Scope.make()
      yield* Scope.extend(detector.track(cache), scope)
      counts.hits += use.hits
      counts.misses += use.misses
      if (!use.open) yield* Scope.close(scope, Exit.void)
    })

  it.effect("counts only caches that closed with misses and no hit, within the window", () =>
    Effect.gen(function*() {
      const { layer, warnings } = captureWarnings()
      const detector = embeddedChurn.make({ threshold: 3, window: "1 minute" })
      const step = (use: { readonly hits: number; readonly misses: number; readonly open?: boolean }) =>
        life(detector, use).pipe(Effect.provide(layer))
      // caches that hit, caches nobody called, caches still open: none counts
      yield* step({ hits: 1, misses: 1 })
      yield* step({ hits: 0, misses: 0 })
      yield* step({ hits: 0, misses: 3, open: true })
      yield* step({ hits: 0, misses: 3, open: true })
      yield* step({ hits: 2, misses: 0 })
      assert.deepStrictEqual(warnings, [])
      // two empty closes, then a minute passes: they no longer count
      yield* step({ hits: 0, misses: 1 })
      yield* step({ hits: 0, misses: 1 })
      yield* TestClock.adjust("61 seconds")
      yield* step({ hits: 0, misses: 1 })
      assert.deepStrictEqual(warnings, [])
      // the second within the minute: the next build warns, once
      yield* step({ hits: 0, misses: 1 })
      assert.deepStrictEqual(warnings, [])
      yield* step({ hits: 0, misses: 1 })
      assert.strictEqual(warnings.length, 1)
      assert.include(warnings[0], "3 embedded caches")
      for (let i = 0; i < 5; i++) yield* step({ hits: 0, misses: 1 })
      assert.strictEqual(warnings.length, 1)
    }))
})

describe("CacheClient", () => {
  it("wrap: the second call hits, and the function ran once", async () => {
    const client = CacheClient.make(embedded())
    let runs = 0
    const getUser = client.wrap(async (id: string): Promise<User> => {
      runs++
      await sleep(1)
      return { id, name: `user ${id}` }
    }, { name: "users.get", namespace: "users", ttl: "5 minutes" })
    const first = await getUser("42")
    await client.flush()
    const second = await getUser("42")
    assert.deepStrictEqual(first, { id: "42", name: "user 42" })
    assert.deepStrictEqual(second, first)
    assert.strictEqual(runs, 1)
    const stats = await client.stats()
    assert.strictEqual(stats.hits, 1)
    assert.strictEqual(stats.misses, 1)
    await client.close()
  })

  it("wrap: concurrent calls run the function once; arguments make different keys", async () => {
    const client = CacheClient.make(embedded())
    const runs: Array<number> = []
    const square = client.wrap(async (n: number) => {
      runs.push(n)
      await sleep(20)
      return { square: n * n }
    }, { name: "square" })
    const values = await Promise.all([square(3), square(3), square(3), square(4), square(4)])
    assert.deepStrictEqual(values.map((v) => v.square), [9, 9, 9, 16, 16])
    assert.deepStrictEqual(runs.sort(), [3, 4])
    // each caller gets a value of its own
    assert.notStrictEqual(values[0], values[1])
    await client.flush()
    assert.strictEqual((await square(4)).square, 16)
    assert.deepStrictEqual(runs, [3, 4])
    assert.strictEqual((await client.stats()).coalesced, 3)
    await client.close()
  })

  it("the function's rejection is the caller's, the very same object, and is not cached", async () => {
    const client = CacheClient.make(embedded())
    const error = new NotFound("7")
    let runs = 0
    const getUser = client.wrap(async (_id: string): Promise<User> => {
      runs++
      await sleep(1)
      throw error
    }, { name: "users.get" })
    const [a, b] = await Promise.all([rejection(getUser("7")), rejection(getUser("7"))])
    assert.strictEqual(a, error)
    assert.strictEqual(b, error)
    assert.strictEqual(runs, 1)
    assert.strictEqual(await rejection(getUser("7")), error)
    assert.strictEqual(runs, 2)
    await client.close()
  })

  it("a synchronous throw, and a rejection with what is not an Error, reach the caller as they are", async () => {
    const client = CacheClient.make(embedded())
    const thrown = new TypeError("bad input")
    const plain = { code: 42 }
    const sync = client.wrap((_: string): number => {
      throw thrown
    }, { name: "sync" })
    const notAnError = client.wrap((_: string) => Promise.reject(plain), { name: "plain" })
    assert.strictEqual(await rejection(sync("a")), thrown)
    assert.strictEqual(await rejection(notAnError("a")), plain)
    assert.strictEqual(await rejection(client.cached("k", () => Promise.reject(plain))), plain)
    // a plain function's value is cached as well as a promise's
    assert.strictEqual(await client.wrap((n: number) => n + 1, { name: "inc" })(1), 2)
    await client.close()
  })

  it("the same object under a tracer that exports spans (where Effect proxies errors)", async () => {
    const native = Effect.runSync(Effect.tracer)
    const tracer = Tracer.make({ span: (...args) => native.span(...args), context: native.context })
    const client = CacheClient.make(Layer.merge(embedded(), Layer.setTracer(tracer)))
    const error = new NotFound("1")
    const f = client.wrap(async (_: string) => {
      throw error
    }, { name: "traced" })
    assert.strictEqual(await rejection(f("1")), error)
    assert.strictEqual(await rejection(client.cached("k", () => Promise.reject(error))), error)
    await client.close()
  })

  it("cached: one-off calls by key or options; its function gets a signal", async () => {
    const client = CacheClient.make(embedded())
    let runs = 0
    const compute = async (signal: AbortSignal) => {
      assert.isFalse(signal.aborted)
      runs++
      return { at: runs }
    }
    const a = await client.cached(["report", 2026], compute)
    await client.flush()
    const b = await client.cached(["report", 2026], compute)
    const c = await client.cached({ key: ["report", 2026], namespace: "other", ttl: "1 hour" }, compute)
    assert.deepStrictEqual([a, b, c], [{ at: 1 }, { at: 1 }, { at: 2 }])
    // typed storage through a schema: a Date comes back a Date
    const Row = Schema.Struct({ at: Schema.Date })
    await client.cached({ key: "row", schema: Row }, async () => ({ at: new Date(5) }))
    await client.flush()
    const row = await client.cached({ key: "row", schema: Row }, async (): Promise<{ at: Date }> => {
      throw new Error("must hit")
    })
    assert.instanceOf(row.at, Date)
    await client.close()
  })

  it("invalidate, invalidateKey, invalidateNamespace and clear make the next call run the function", async () => {
    const client = CacheClient.make(embedded())
    let runs = 0
    const getUser = client.wrap(async (id: string) => ({ id, run: ++runs }), { name: "users.get", namespace: "users" })
    const call = async () => {
      const user = await getUser("1")
      await client.flush()
      return user.run
    }
    assert.strictEqual(await call(), 1)
    assert.strictEqual(await call(), 1)
    assert.isTrue(await client.invalidateKey({ function: "users.get", args: ["1"] }, { namespace: "users" }))
    assert.strictEqual(await call(), 2)
    assert.strictEqual(await client.invalidateNamespace("users"), 1)
    assert.strictEqual(await call(), 3)
    const hash = await client.hashKey({ function: "users.get", args: ["1"] }, "users")
    assert.isTrue(await client.invalidate(hash, { namespace: "users" }))
    assert.strictEqual(await call(), 4)
    assert.strictEqual(await client.clear(), 1)
    assert.strictEqual(await call(), 5)
    const stats = await client.stats()
    assert.strictEqual(stats.misses, 5)
    assert.strictEqual(stats.hits, 1)
    await client.close()
  })

  it("bad input: an administrative call rejects with the CacheInputError; a cached call runs uncached", async () => {
    const client = CacheClient.make(embedded())
    const error = await rejection(client.invalidateKey("k", { namespace: "../etc" }))
    assert.instanceOf(error, CacheInputError)
    assert.strictEqual((error as CacheInputError).reason, "InvalidNamespace")
    // as in Cache.cached: logged, counted, and the function's value returned
    assert.strictEqual(await client.cached({ key: "k", namespace: "../etc" }, async () => 1), 1)
    // a wrapped function needs an identity, found when it is defined
    assert.throws(() => client.wrap(async () => 1, { name: " " }), CacheInputError)
    await client.close()
  })

  it("close stores a pending write; calls after close reject with a CacheClientError", async () => {
    const metadata = await Effect.runPromise(MetadataStore.makeMemory)
    const blobs = await Effect.runPromise(BlobStore.makeMemory)
    const stores = (put: BlobStore.BlobStore["Type"]["put"]) =>
      Layer.merge(
        Layer.succeed(MetadataStore.MetadataStore, metadata),
        Layer.succeed(BlobStore.BlobStore, { ...blobs, put })
      )
    const name = uniqueName("client")
    // a slow upload: the write is still pending when close is called
    const slow = stores((key, bytes) => Effect.delay(blobs.put(key, bytes), "200 millis"))
    const client = CacheClient.make(Cache.layer({ name, inlineThreshold: 0 }).pipe(Layer.provide(slow)))
    let runs = 0
    const report = client.wrap(async (year: number) => ({ year, run: ++runs }), { name: "report", namespace: "r" })
    assert.deepStrictEqual(await report(2026), { year: 2026, run: 1 })
    assert.strictEqual((await client.stats()).pendingWrites, 1)
    const closing = client.close()
    assert.strictEqual(client.close(), closing)
    await closing
    assert.strictEqual(await Effect.runPromise(metadata.size("r")), 1)

    const closed = await rejection(report(2026))
    assert.instanceOf(closed, CacheClient.CacheClientError)
    assert.strictEqual((closed as CacheClient.CacheClientError).reason, "Closed")
    assert.include((closed as Error).message, "close() was called")
    assert.instanceOf(await rejection(client.stats()), CacheClient.CacheClientError)
    assert.instanceOf(await rejection(client.cached("k", async () => 1)), CacheClient.CacheClientError)
    assert.strictEqual(runs, 1)

    // the record and its object outlived the client: another cache on the same stores hits
    const next = CacheClient.make(Cache.layer({ name }).pipe(Layer.provide(stores(blobs.put))))
    const again = next.wrap(async (_: number): Promise<{ year: number; run: number }> => {
      throw new Error("must hit")
    }, { name: "report", namespace: "r" })
    assert.deepStrictEqual(await again(2026), { year: 2026, run: 1 })
    await next.close()
  })

  it("a call in flight when close is called rejects with a CacheClientError; its signal aborts", async () => {
    const client = CacheClient.make(embedded())
    let signal: AbortSignal | undefined
    let started = () => {}
    const running = new Promise<void>((resolve) => (started = resolve))
    const call = rejection(client.cached("slow", (s) => {
      signal = s
      started()
      return new Promise<number>(() => {})
    }))
    await running
    await client.close()
    const error = await call
    assert.instanceOf(error, CacheClient.CacheClientError)
    assert.strictEqual((error as CacheClient.CacheClientError).reason, "Closed")
    assert.include((error as Error).message, "in flight")
    assert.isTrue(signal?.aborted)
  })

  it("an AbortSignal abandons one call; a computation shared with another caller goes on for it", async () => {
    const client = CacheClient.make(embedded())
    let runs = 0
    const slow = client.wrap(async (n: number) => {
      runs++
      await sleep(50)
      return n
    }, { name: "slow" })
    const controller = new AbortController()
    const abandoned = rejection(slow.with({ signal: controller.signal })(1))
    const kept = slow(1)
    await sleep(10)
    const reason = new Error("client went away")
    controller.abort(reason)
    assert.strictEqual(await abandoned, reason)
    assert.strictEqual(await kept, 1)
    assert.strictEqual(runs, 1)
    // a signal aborted already: nothing runs
    assert.strictEqual(await rejection(slow.with({ signal: AbortSignal.abort(reason) })(2)), reason)
    assert.strictEqual(runs, 1)
    await client.close()
  })

  it("a layer that fails to build rejects every call with its error", async () => {
    const client = CacheClient.make(
      Cache.layer({ namespace: "not a namespace!" }).pipe(
        Layer.provide(Layer.merge(MetadataStore.layerMemory, BlobStore.layerMemory))
      )
    )
    let runs = 0
    const f = client.wrap(async (n: number) => ++runs + n, { name: "f" })
    const error = await rejection(client.ready())
    assert.instanceOf(error, CacheInputError)
    assert.strictEqual(await rejection(f(1)), error)
    assert.strictEqual(await rejection(client.stats()), error)
    assert.strictEqual(await rejection(client.cached("k", async () => 1)), error)
    assert.strictEqual(runs, 0)
    await client.close()
  })

  it("types: wrap keeps the arguments and the awaited result; options are those of Cache.wrap", () => {
    const client = CacheClient.make(embedded())
    const getUser = client.wrap(async (id: string): Promise<User> => ({ id, name: id }), { name: "u" })
    expectTypeOf(getUser).parameters.toEqualTypeOf<[id: string]>()
    expectTypeOf(getUser).returns.toEqualTypeOf<Promise<User>>()
    const plain = client.wrap((a: number, b: number) => a + b, { name: "add" })
    expectTypeOf(plain).returns.toEqualTypeOf<Promise<number>>()
    const byKey = client.wrap(async (query: string, _traceId: string) => [query], { key: (query) => ["q", query] })
    expectTypeOf(byKey).parameters.toEqualTypeOf<[query: string, _traceId: string]>()
    const typed = client.wrap(async (n: number) => ({ at: new Date(n) }), {
      name: "typed",
      schema: Schema.Struct({ at: Schema.Date })
    })
    expectTypeOf(typed).returns.toEqualTypeOf<Promise<{ readonly at: Date }>>()
    expectTypeOf(client.cached("k", async () => 1)).toEqualTypeOf<Promise<number>>()
    // @ts-expect-error a misspelt option is an error, never silently ignored
    client.wrap(async (id: string) => id, { name: "u", namspace: "users" })
    // @ts-expect-error a name keys the call by its arguments: they must be keys
    client.wrap(async (f: () => void) => f, { name: "fn" })
    return client.close()
  })

  it("from plain JavaScript (test/fixtures/promise-client.mjs)", async () => {
    const fixture: {
      run: (options: { name: string }) => Promise<Record<string, any>>
      NotFound: new(id: string) => Error
    } = await import(new URL("./fixtures/promise-client.mjs", import.meta.url).href)
    const out = await fixture.run({ name: uniqueName("js") })
    assert.deepStrictEqual(out.first, { id: "42", name: "user 42" })
    assert.deepStrictEqual(out.concurrent, out.first)
    assert.deepStrictEqual(out.second, out.first)
    assert.instanceOf(out.rejection, fixture.NotFound)
    assert.strictEqual(out.rejection.message, "no user missing")
    assert.strictEqual(out.answer, 42)
    assert.strictEqual(out.removed, 1)
    // 42 once, then after invalidateNamespace once more; "missing" once
    assert.deepStrictEqual(out.runs, ["42", "missing", "42"])
    assert.strictEqual(out.stats.hits, 1)
    assert.strictEqual(out.afterClose.reason, "Closed")
  })
})
