/**
 * Object key rules shared by every `BlobStore`. The file-system store joins keys onto its root folder, so a key
 * that is absolute, climbs with `..` or holds a separator of another platform must be refused before any I/O.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { BlobStoreError } from "../CacheError.js"

/**
 * S3 limits keys to 1024 bytes; the character set is ASCII, so characters and bytes agree.
 *
 * @since 0.1.0
 */
export const maxObjectKeyLength = 1024

const segmentPattern = /^[A-Za-z0-9._=-]+$/

/**
 * @since 0.1.0
 */
export const validKeyDescription = "a valid object key is 1 to 1024 characters of \"/\"-separated segments made of " +
  "A-Z a-z 0-9 . _ = -, with no \".\" or \"..\" segment and no leading, trailing or doubled \"/\" " +
  "(for example \"ns/ab/abcdef-1\")"

const validPrefixDescription =
  "a valid prefix is \"\" or the start of a valid object key, optionally ending in \"/\"; " +
  validKeyDescription

const segmentsProblem = (segments: ReadonlyArray<string>): Option.Option<string> => {
  for (const segment of segments) {
    if (segment === "") {
      return Option.some("it has an empty segment (a leading, trailing or doubled \"/\")")
    }
    if (segment === "." || segment === "..") {
      return Option.some(`it has a "${segment}" segment`)
    }
    if (!segmentPattern.test(segment)) {
      return Option.some(`the segment ${JSON.stringify(segment)} has a character outside A-Z a-z 0-9 . _ = -`)
    }
  }
  return Option.none()
}

/**
 * What is wrong with a key, or `none` when it is valid.
 *
 * @since 0.1.0
 */
export const objectKeyProblem = (key: string): Option.Option<string> => {
  if (key.length === 0) return Option.some("it is empty")
  if (key.length > maxObjectKeyLength) return Option.some(`it is ${key.length} characters long`)
  return segmentsProblem(key.split("/"))
}

/**
 * What is wrong with a listing prefix, or `none` when it is valid. The last segment may be partial (`"ns/ab"`
 * matches `"ns/abc"`), so a prefix follows the key rules except that it may be empty and may end in `/`.
 *
 * @since 0.1.0
 */
export const prefixProblem = (prefix: string): Option.Option<string> => {
  if (prefix.length === 0) return Option.none()
  if (prefix.length > maxObjectKeyLength) return Option.some(`it is ${prefix.length} characters long`)
  const trimmed = prefix.endsWith("/") ? prefix.slice(0, -1) : prefix
  return segmentsProblem(trimmed.split("/"))
}

/**
 * @since 0.1.0
 */
export const invalidObjectKey = (method: string, key: string, problem: string): BlobStoreError =>
  new BlobStoreError({
    reason: "InvalidArgument",
    method,
    key,
    description: `invalid object key ${JSON.stringify(key)}: ${problem}; ${validKeyDescription}`
  })

/**
 * @since 0.1.0
 */
export const validateObjectKey = (method: string, key: string): Effect.Effect<string, BlobStoreError> =>
  Option.match(objectKeyProblem(key), {
    onNone: () => Effect.succeed(key),
    onSome: (problem) => Effect.fail(invalidObjectKey(method, key, problem))
  })

/**
 * @since 0.1.0
 */
export const validatePrefix = (method: string, prefix: string): Effect.Effect<string, BlobStoreError> =>
  Option.match(prefixProblem(prefix), {
    onNone: () => Effect.succeed(prefix),
    onSome: (problem) =>
      Effect.fail(
        new BlobStoreError({
          reason: "InvalidArgument",
          method,
          key: prefix,
          description: `invalid prefix ${JSON.stringify(prefix)}: ${problem}; ${validPrefixDescription}`
        })
      )
  })
