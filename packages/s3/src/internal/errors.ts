/**
 * SDK errors as `BlobStoreError`s: a reason the cache can act on, and a description that tells an operator what to
 * change. The raw SDK error stays in `cause`.
 *
 * @since 0.1.0
 */
import { BlobStoreError } from "@s3cache/core/CacheError"
import type { Resolved } from "./options.js"

/**
 * Thrown by the store itself when the server broke the protocol (a body shorter or longer than its
 * `Content-Length`, a missing upload id or ETag).
 *
 * @internal
 */
export class ProtocolViolation extends Error {
  override readonly name = "ProtocolViolation"
}

/**
 * The abort reason of an operation whose own budget ran out, so that a timeout is told apart from an interruption.
 *
 * @internal
 */
export class DeadlineExceeded extends Error {
  override readonly name = "DeadlineExceeded"
  constructor(readonly budgetMs: number) {
    super(`no complete answer within the operation's budget of ${budgetMs} ms`)
  }
}

const networkCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "ECONNABORTED",
  "ERR_STREAM_PREMATURE_CLOSE",
  "UND_ERR_SOCKET"
])

// Of the network codes, those of a connection that was up and broke, rather than one that could not be made.
const lostCodes = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED", "ERR_STREAM_PREMATURE_CLOSE", "UND_ERR_SOCKET"])

const timeoutCodes = new Set(["ETIMEDOUT", "ESOCKETTIMEDOUT", "RequestTimeout", "RequestTimeoutException"])

// Answers that say "try again": S3 throttling and server errors. Only these and network failures are retried.
const transientCodes = new Set([
  "SlowDown",
  "ServiceUnavailable",
  "InternalError",
  "RequestTimeout",
  "Throttling",
  "ThrottlingException",
  "RequestTimeTooSkewed"
])

const accessCodes = new Set([
  "AccessDenied",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "ExpiredToken",
  "InvalidToken",
  "TokenRefreshRequired",
  "AllAccessDisabled",
  "Forbidden"
])

interface SdkErrorShape {
  readonly name?: unknown
  readonly code?: unknown
  readonly Code?: unknown
  readonly message?: unknown
  readonly $metadata?: { readonly httpStatusCode?: number }
  readonly $response?: unknown
  readonly cause?: unknown
}

const shape = (error: unknown): SdkErrorShape => (typeof error === "object" && error !== null ? error : {})

const str = (value: unknown): string | undefined => (typeof value === "string" && value !== "" ? value : undefined)

/** The S3 error code (`NoSuchBucket`, `SlowDown`, …), or the Node error code, or the error name. @internal */
export const errorCode = (error: unknown): string | undefined => {
  const e = shape(error)
  return str(e.Code) ?? str(e.code) ?? str(e.name)
}

/** @internal */
export const statusOf = (error: unknown): number | undefined => shape(error).$metadata?.httpStatusCode

const messageOf = (error: unknown): string => str(shape(error).message) ?? String(error)

/**
 * Worth another attempt: throttling, 5xx, a connection that failed or was reset. Not our own deadline, not an
 * interruption, not a 4xx (the same request would fail the same way).
 *
 * @internal
 */
export const isTransient = (error: unknown): boolean => {
  if (error instanceof DeadlineExceeded || error instanceof ProtocolViolation) return false
  const code = errorCode(error)
  if (code === "AbortError") return false
  if (code !== undefined && (transientCodes.has(code) || networkCodes.has(code) || code === "TimeoutError")) {
    return code !== "ENOTFOUND"
  }
  const status = statusOf(error)
  return status !== undefined && (status >= 500 || status === 429)
}

/**
 * @internal
 */
export const isRetryable = (error: BlobStoreError): boolean =>
  (error.reason === "Unavailable" || error.reason === "Timeout") && isTransient(error.cause)

/** @internal */
export interface ErrorContext {
  readonly resolved: Resolved
  readonly method: string
  readonly key?: string | undefined
}

const where = ({ resolved }: ErrorContext) =>
  resolved.endpoint !== undefined ? ` at ${resolved.endpoint.origin}` : ` in region ${resolved.region}`

/** @internal */
export const toBlobStoreError = (context: ErrorContext, error: unknown): BlobStoreError => {
  const { key, method, resolved } = context
  const make = (reason: BlobStoreError["reason"], description: string) =>
    new BlobStoreError({ reason, method, ...(key !== undefined ? { key } : {}), description, cause: error })
  const code = errorCode(error)
  const status = statusOf(error)
  const message = messageOf(error)

  if (error instanceof DeadlineExceeded) {
    return make(
      "Timeout",
      `${error.message}; S3 is slow or unreachable${where(context)} (raise timeout / S3CACHE_S3_TIMEOUT, or ` +
        "minThroughput for large objects, if the network is just slow)"
    )
  }
  if (error instanceof ProtocolViolation) return make("Protocol", `${message}; the S3 server broke the protocol`)
  if (code === "AbortError") return make("Timeout", "the request was aborted before S3 answered")
  if (code === "CredentialsProviderError") {
    return make(
      "Unavailable",
      `no AWS credentials: ${message}; set S3CACHE_AWS_ACCESS_KEY_ID and S3CACHE_AWS_SECRET_ACCESS_KEY, or make ` +
        "the SDK's default chain find some (AWS_PROFILE, an instance or task role, web identity)"
    )
  }
  if (code === "NoSuchBucket") {
    return make(
      "Unavailable",
      `bucket ${resolved.bucket} does not exist${where(context)}; create it or fix S3CACHE_S3_BUCKET ` +
        "(and S3CACHE_AWS_REGION / S3CACHE_S3_ENDPOINT)"
    )
  }
  if (code === "PermanentRedirect" || code === "AuthorizationHeaderMalformed" || status === 301) {
    return make(
      "Unavailable",
      `bucket ${resolved.bucket} is not in region ${resolved.region} (${message}); set S3CACHE_AWS_REGION to the ` +
        "bucket's region"
    )
  }
  if ((code !== undefined && accessCodes.has(code)) || status === 403) {
    const kms = resolved.sse.ServerSideEncryption === "aws:kms"
      ? " and kms:GenerateDataKey / kms:Decrypt on the key"
      : ""
    return make(
      "Unavailable",
      `access denied to s3://${resolved.bucket}/${resolved.keyPrefix} (${code ?? status}: ${message}); check the ` +
        `credentials and that their policy allows s3:GetObject, s3:PutObject, s3:DeleteObject, s3:ListBucket${kms}`
    )
  }
  if (code !== undefined && code.startsWith("KMS.")) {
    return make(
      "Unavailable",
      `SSE-KMS failed (${code}: ${message}); check S3CACHE_S3_KMS_KEY_ID and that the key is enabled and usable`
    )
  }
  // MinIO without a KMS answers NotImplemented to SSE headers; others a 400 that names the encryption.
  const refusedSse = code === "NotImplemented" || status === 501 || (status === 400 && /encrypt|kms/i.test(message))
  if (method === "put" && resolved.sse.ServerSideEncryption !== undefined && refusedSse) {
    return make(
      "Unavailable",
      `the server refused server-side encryption ${resolved.sse.ServerSideEncryption} (${code}: ${message}); ` +
        "configure it on the server, or set serverSideEncryption: \"none\" (S3CACHE_S3_SSE=none)"
    )
  }
  if (code === "KeyTooLongError") {
    return make(
      "InvalidArgument",
      `the S3 key (prefix ${JSON.stringify(resolved.keyPrefix)} + key) is longer than S3's 1024 bytes; use a shorter ` +
        "prefix or key"
    )
  }
  if (code !== undefined && (code === "TimeoutError" || timeoutCodes.has(code))) {
    return make("Timeout", `S3 did not answer in time${where(context)} (${message})`)
  }
  if (code !== undefined && lostCodes.has(code)) {
    return make(
      "Unavailable",
      `the connection to S3${where(context)} broke (${code}: ${message}); nothing to change if it is rare`
    )
  }
  if (code !== undefined && networkCodes.has(code)) {
    return make(
      "Unavailable",
      `cannot reach S3${where(context)} (${code}: ${message}); check S3CACHE_S3_ENDPOINT and the network`
    )
  }
  if (isTransient(error)) {
    return make(
      "Unavailable",
      `S3 is overloaded or failing (${code ?? status}: ${message}); nothing to change if it is rare, check the ` +
        "server (or request rates) if it persists"
    )
  }
  if (/checksum mismatch/i.test(message)) {
    return make("Protocol", `the body does not match the checksum S3 sent with it (${message})`)
  }
  if (shape(error).$response !== undefined || code === "SyntaxError" || /deserializ/i.test(message)) {
    return make("Protocol", `S3 answered with something that is not a valid S3 response (${message})`)
  }
  return make(
    "Unknown",
    `S3 request failed (${code ?? "no code"}${status !== undefined ? `, HTTP ${status}` : ""}: ${message})`
  )
}
