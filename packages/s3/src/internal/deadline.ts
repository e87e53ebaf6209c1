/**
 * One budget per S3 operation, covering sending the request **and** reading the response body.
 *
 * The SDK's `requestTimeout` stops counting once the headers arrive, so a body that trickles in never times out
 * (RELIABILITY.md). Here every operation runs under one `AbortSignal` that fires when the caller is interrupted or
 * when the budget runs out, and the operation settles by the deadline even if some layer below ignores the signal: a
 * store call can never outlive its budget.
 *
 * @since 0.1.0
 */
import { Readable } from "node:stream"
import { DeadlineExceeded, ProtocolViolation } from "./errors.js"

/**
 * The budget of one operation: several requests (attempts, the parts of a multipart upload) share it.
 *
 * @internal
 */
export interface Window {
  /** `Date.now()` when the operation started */
  readonly startedAt: number
  readonly budgetMs: number
  /** the cache's deadline for the whole store call (`StoreDeadline`), which no budget or extension passes */
  readonly limitAt: number
}

/** @internal */
export interface Deadline {
  readonly signal: AbortSignal
  /** push the deadline back, once the size of a body is known */
  readonly extend: (ms: number) => void
  /** milliseconds left, at least 1 (for the SDK's own `requestTimeout`, where 0 would mean "none") */
  readonly remaining: () => number
}

/**
 * Start `f` under a budget of `window`; `onSuccess` or `onFailure` is called once, by the deadline at the latest,
 * even if some layer below ignores the signal. The returned function interrupts: it aborts the signal (with no
 * reason of its own: the SDK and `readBody` then fail with an `AbortError`) and stops the timer; neither callback
 * is called after it.
 *
 * Callbacks rather than a promise, so that the Effect wrapper (`request`) hands the result straight to its fiber:
 * one timer and one `AbortController` per attempt, no promise race, no listener on a second signal.
 *
 * @internal
 */
export const runWithDeadline = <A>(
  window: Window,
  f: (deadline: Deadline) => Promise<A>,
  onSuccess: (value: A) => void,
  onFailure: (error: unknown) => void
): () => void => {
  const controller = new AbortController()
  const signal = controller.signal
  const started = window.startedAt
  const limit = window.limitAt
  let budget = window.budgetMs
  const end = () => Math.min(started + budget, limit)
  let settled = false
  let timer: ReturnType<typeof setTimeout>
  const fail = (error: unknown) => {
    if (settled) return
    settled = true
    clearTimeout(timer)
    // Whatever `f` still has in flight after failing (a request whose promise ignored the signal) is cut off now.
    // After a success nothing is: `f` resolves only once its request and body are done.
    if (!signal.aborted) controller.abort(new DeadlineExceeded(budget))
    onFailure(error)
  }
  // `extend` only moves the deadline; the timer, when it fires early, waits for the rest (no timer re-armed on the
  // hot path of every get).
  const expire = () => {
    if (settled) return
    const left = end() - Date.now()
    if (left > 0) {
      timer = setTimeout(expire, left)
      return
    }
    const error = new DeadlineExceeded(budget)
    // Aborting first: the layers below see why, and `fail` does not abort again.
    controller.abort(error)
    fail(error)
  }
  timer = setTimeout(expire, Math.max(0, end() - Date.now()))
  const deadline: Deadline = {
    signal,
    extend: (ms) => {
      if (ms > 0 && !settled && !signal.aborted) budget += ms
    },
    remaining: () => Math.max(1, end() - Date.now())
  }
  let running: Promise<A>
  try {
    running = f(deadline)
  } catch (error) {
    running = Promise.reject(error)
  }
  running.then((value) => {
    if (settled) return
    settled = true
    clearTimeout(timer)
    onSuccess(value)
  }, fail)
  return () => {
    if (settled) return
    settled = true
    clearTimeout(timer)
    if (!signal.aborted) controller.abort()
  }
}

const isReadable = (body: unknown): body is Readable => body instanceof Readable

/**
 * Destroy a response body that will not be read, so its socket goes back to the pool or is closed: an unread body
 * holds its socket forever, and request #51 then waits for a socket that never comes.
 *
 * @internal
 */
export const discardBody = (body: unknown): void => {
  if (isReadable(body)) {
    // A fully read body is left alone: its socket is already back in the pool.
    if (!body.destroyed && !body.readableEnded) body.destroy()
  } else if (typeof body === "object" && body !== null && "destroy" in body && typeof body.destroy === "function") {
    body.destroy()
  }
}

/**
 * Read a whole body into one array. With a known length the array is allocated once and filled in place (no
 * second copy of a large payload); a body shorter or longer than announced is a protocol violation. On abort or
 * error the body is destroyed.
 *
 * @internal
 */
export const readBody = async (
  body: unknown,
  expected: number | undefined,
  signal: AbortSignal
): Promise<Uint8Array> => {
  if (body === undefined || body === null) {
    if (expected === undefined || expected === 0) return new Uint8Array(0)
    throw new ProtocolViolation(`the response has no body but announced ${expected} bytes`)
  }
  if (!isReadable(body)) {
    discardBody(body)
    throw new ProtocolViolation("the response body is not a Node.js stream")
  }
  const onAbort = () => body.destroy(signal.reason instanceof Error ? signal.reason : new Error("aborted"))
  if (signal.aborted) onAbort()
  else signal.addEventListener("abort", onAbort, { once: true })
  try {
    if (expected !== undefined) {
      const out = new Uint8Array(expected)
      let offset = 0
      for await (const chunk of body as AsyncIterable<Uint8Array>) {
        if (offset + chunk.byteLength > expected) {
          throw new ProtocolViolation(`the response body is longer than its Content-Length of ${expected} bytes`)
        }
        out.set(chunk, offset)
        offset += chunk.byteLength
      }
      if (offset !== expected) {
        throw new ProtocolViolation(`the response body ended after ${offset} of ${expected} bytes`)
      }
      return out
    }
    const chunks: Array<Uint8Array> = []
    let total = 0
    for await (const chunk of body as AsyncIterable<Uint8Array>) {
      chunks.push(chunk)
      total += chunk.byteLength
    }
    const out = new Uint8Array(total)
    let offset = 0
    for (const chunk of chunks) {
      out.set(chunk, offset)
      offset += chunk.byteLength
    }
    return out
  } catch (error) {
    // A stream destroyed by our own abort reports a generic error; the abort reason says what really happened.
    throw signal.aborted && signal.reason !== undefined ? signal.reason : error
  } finally {
    signal.removeEventListener("abort", onAbort)
    discardBody(body)
  }
}
