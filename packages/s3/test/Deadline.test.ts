/**
 * The deadline of one operation (`runWithDeadline`) on its own, and interruption of a store call in flight: the
 * budget fires even when the work ignores the signal, `extend` moves it, an interruption aborts the request and
 * closes its socket, and nothing is called back after the operation settled.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import { runWithDeadline } from "../src/internal/deadline.js"
import { DeadlineExceeded } from "../src/internal/errors.js"
import * as S3BlobStore from "../src/S3BlobStore.js"
import * as FakeS3 from "./utils/fakeS3.js"
import { storeOptions } from "./utils/servers.js"

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface Settled {
  readonly ok: boolean
  readonly value: unknown
  readonly ms: number
}

interface Run {
  readonly signal: AbortSignal
  readonly interrupt: () => void
  /** the first outcome reported */
  readonly settled: Promise<Settled>
  /** how many outcomes were reported */
  readonly calls: () => number
  readonly extend: (ms: number) => void
}

/** `runWithDeadline` with callbacks that count, and a promise of the first outcome. */
const start = <A>(budgetMs: number, f: (signal: AbortSignal) => Promise<A>, limitMs = Infinity): Run => {
  const started = Date.now()
  let calls = 0
  let signal: AbortSignal | undefined
  let extend: (ms: number) => void = () => {}
  let report: (outcome: Settled) => void = () => {}
  const settled = new Promise<Settled>((resolve) => {
    report = resolve
  })
  const interrupt = runWithDeadline({ startedAt: started, budgetMs, limitAt: started + limitMs }, (deadline) => {
    signal = deadline.signal
    extend = deadline.extend
    return f(deadline.signal)
  }, (value) => {
    calls++
    report({ ok: true, value, ms: Date.now() - started })
  }, (error) => {
    calls++
    report({ ok: false, value: error, ms: Date.now() - started })
  })
  return { signal: signal!, interrupt, settled, calls: () => calls, extend: (ms) => extend(ms) }
}

const never = () => new Promise<never>(() => {})

describe("runWithDeadline", () => {
  it("settles by the deadline when the work ignores the signal, and aborts the signal with the reason", async () => {
    const run = start(80, never)
    const outcome = await run.settled
    assert.isFalse(outcome.ok)
    assert.instanceOf(outcome.value, DeadlineExceeded)
    assert.isAtLeast(outcome.ms, 75)
    assert.isAtMost(outcome.ms, 80 + 500)
    assert.isTrue(run.signal.aborted)
    assert.strictEqual(run.signal.reason, outcome.value)
  })

  it("the cache's deadline (limitAt) caps the budget and every extension", async () => {
    const run = start(10_000, never, 80)
    run.extend(10_000)
    const outcome = await run.settled
    assert.isFalse(outcome.ok)
    assert.instanceOf(outcome.value, DeadlineExceeded)
    assert.isAtLeast(outcome.ms, 75)
    assert.isAtMost(outcome.ms, 80 + 500)
  })

  it("extend moves the deadline", async () => {
    const run = start(60, never)
    run.extend(120)
    const outcome = await run.settled
    assert.isFalse(outcome.ok)
    assert.isAtLeast(outcome.ms, 175)
    assert.isAtMost(outcome.ms, 180 + 500)
    assert.strictEqual((outcome.value as DeadlineExceeded).budgetMs, 180)
  })

  it("a success is reported once; the signal stays untouched and the timer never fires", async () => {
    const run = start(60, async () => 42)
    const outcome = await run.settled
    assert.deepStrictEqual([outcome.ok, outcome.value], [true, 42])
    await sleep(120)
    assert.strictEqual(run.calls(), 1)
    assert.isFalse(run.signal.aborted)
  })

  it("a failure is reported once, and whatever is still in flight is cut off", async () => {
    const boom = new Error("boom")
    const run = start(60, () => Promise.reject(boom))
    const outcome = await run.settled
    assert.deepStrictEqual([outcome.ok, outcome.value], [false, boom])
    assert.isTrue(run.signal.aborted)
    await sleep(120)
    assert.strictEqual(run.calls(), 1)
  })

  it("a synchronous throw is a failure", async () => {
    const boom = new Error("sync")
    const run = start(60, () => {
      throw boom
    })
    assert.strictEqual((await run.settled).value, boom)
  })

  it("an interruption aborts the signal and nothing is reported afterwards, not even the deadline", async () => {
    let seen: unknown
    const run = start(60, (signal) =>
      new Promise((_, reject) => {
        signal.addEventListener("abort", () => {
          seen = signal.reason
          reject(signal.reason)
        })
      }))
    run.interrupt()
    assert.isTrue(run.signal.aborted)
    assert.strictEqual((seen as Error).name, "AbortError")
    await sleep(150)
    assert.strictEqual(run.calls(), 0)
  })
})

describe("interrupting a store call", () => {
  it.scopedLive(
    "a get waiting for a silent server is cut off at once; its socket is closed",
    () =>
      Effect.gen(function*() {
        const fake = yield* FakeS3.make
        const store = yield* S3BlobStore.make({ ...storeOptions(fake, "fake-bucket"), timeout: 5000 })
        yield* store.put("k/a", new Uint8Array(100).fill(3))
        fake.setFault("hang", { method: "GET" })
        const fiber = yield* Effect.fork(store.get("k/a"))
        // the request reached the server, which holds it
        while (fake.count("GET") === 0) yield* Effect.sleep("5 millis")
        const started = Date.now()
        yield* Fiber.interrupt(fiber)
        assert.isAtMost(Date.now() - started, 1000, "the interruption waited for the budget")
        yield* Effect.sleep("100 millis")
        assert.strictEqual(yield* fake.openConnections, 0, "the aborted request's socket was destroyed")
        fake.setFault(undefined)
        assert.strictEqual(Option.getOrThrow(yield* store.get("k/a")).byteLength, 100)
      }),
    30_000
  )

  it.scopedLive("a get reading a drip-fed body is cut off at once; its socket is closed", () =>
    Effect.gen(function*() {
      const fake = yield* FakeS3.make
      const store = yield* S3BlobStore.make({ ...storeOptions(fake, "fake-bucket"), timeout: 5000 })
      yield* store.put("k/b", new Uint8Array(5000).fill(4))
      fake.setFault({ drip: { bytes: 10, everyMs: 20 } }, { method: "GET" })
      const fiber = yield* Effect.fork(store.get("k/b"))
      // headers and the first bytes are in: the body is being read
      yield* Effect.sleep("200 millis")
      const started = Date.now()
      yield* Fiber.interrupt(fiber)
      assert.isAtMost(Date.now() - started, 1000, "the interruption waited for the budget")
      yield* Effect.sleep("100 millis")
      assert.strictEqual(yield* fake.openConnections, 0, "the aborted body's socket was destroyed")
    }), 30_000)
})
