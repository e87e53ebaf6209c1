/**
 * Compression and sealing of stored bytes: zstd, gzip or none, and the sha256 checksum kept in the record.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Crypto from "node:crypto"
import { createRequire } from "node:module"
import * as Util from "node:util"
import * as Zlib from "node:zlib"
import { SerializationError } from "../CacheError.js"
import type { Compression } from "../Serializer.js"
import { nextTurn } from "./turn.js"

/**
 * The native binding of `@mongodb-js/zstd`, not its wrapper: the 1.2.x wrapper drops the level on its way to the
 * binding (every level compresses like 3), and 2.x, which passes it on, downloads its binary from GitHub at install
 * time, which fails behind registry-only mirrors. The binding takes the level and is the same code the wrapper calls.
 */
const Zstd: {
  readonly compress: (data: Buffer, level: number) => Promise<Buffer>
  readonly decompress: (data: Buffer) => Promise<Buffer>
} = createRequire(import.meta.url)("@mongodb-js/zstd/bindings.js")

const gzip = Util.promisify(Zlib.gzip)
const gunzip = Util.promisify(Zlib.gunzip)

/** @internal */
export const defaultZstdLevel = 3

/** @internal */
export const messageOf = (u: unknown): string => u instanceof Error ? u.message : String(u)

/** @internal */
export const isCompression = (name: string): name is Compression =>
  name === "zstd" || name === "gzip" || name === "none"

const checksumSync: (bytes: Uint8Array) => string = typeof Crypto.hash === "function"
  // one-shot (Node 20.12+): the same digest without a `Hash` object, which costs more than hashing a small payload
  ? (bytes) => "sha256:" + Crypto.hash("sha256", bytes, "hex")
  : (bytes) => "sha256:" + Crypto.createHash("sha256").update(bytes).digest("hex")

/** Hashed in one go up to this size (~2 ms here); larger payloads in slices of it, the event loop turning between. */
const checksumSlice = 4 * 1024 * 1024

/**
 * The sha256 checksum kept in the record. Hashing 100 MB takes ~80 ms: a large payload is hashed in slices, so that
 * other callers' timers and I/O are not held up while it is.
 *
 * @internal
 */
export const checksumOf = (bytes: Uint8Array): Effect.Effect<string> =>
  Effect.suspend(() => {
    const now = checksumNow(bytes)
    return now !== undefined ? Effect.succeed(now) : checksumInSlices(bytes)
  })

/**
 * The checksum at once where it is hashed in one go (the payloads of almost every hit), for plain code that would
 * otherwise pay an Effect step for it; `undefined` where it takes `checksumOf`'s slices.
 *
 * @internal
 */
export const checksumNow = (bytes: Uint8Array): string | undefined =>
  bytes.byteLength <= checksumSlice ? checksumSync(bytes) : undefined

const checksumInSlices = (bytes: Uint8Array): Effect.Effect<string> =>
  Effect.suspend(() => {
    const hash = Crypto.createHash("sha256")
    const step = (offset: number): Effect.Effect<string> => {
      hash.update(bytes.subarray(offset, offset + checksumSlice))
      const next = offset + checksumSlice
      return next >= bytes.byteLength
        ? Effect.succeed("sha256:" + hash.digest("hex"))
        : Effect.zipRight(nextTurn, Effect.suspend(() => step(next)))
    }
    return step(0)
  })

// zstd and zlib want a Buffer; a view over the same memory spares a copy of a large payload.
const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/** Values come back as plain `Uint8Array`s whatever produced them, so they compare equal to what the user stored. */
export const asPlain = (bytes: Uint8Array): Uint8Array =>
  bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)

// Node hands out small results as views into a shared 8 KiB pool or an oversized zlib chunk: whoever reads
// `.buffer` (a transfer to a worker, a driver) would see other data. Those are copied; large results own their memory
// already and pass through without a copy. Only for bytes s3cache produced: the caller's own bytes are returned
// as views of exactly the payload.
export const owned = (bytes: Uint8Array): Uint8Array =>
  bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? asPlain(bytes) : new Uint8Array(bytes)

const transform = (
  bytes: Uint8Array,
  compression: Compression,
  run: (buffer: Buffer) => Promise<Buffer>,
  failure: (cause: unknown) => SerializationError
): Effect.Effect<Uint8Array, SerializationError> =>
  compression === "none"
    ? Effect.succeed(bytes)
    : Effect.tryPromise({ try: () => run(asBuffer(bytes)), catch: failure }).pipe(Effect.map(owned))

/** @internal */
export const compress = (
  bytes: Uint8Array,
  compression: Compression,
  zstdLevel: number,
  format: string
): Effect.Effect<Uint8Array, SerializationError> =>
  transform(
    bytes,
    compression,
    (buffer) => compression === "zstd" ? Zstd.compress(buffer, zstdLevel) : gzip(buffer),
    (cause) =>
      new SerializationError({
        reason: "Compression",
        format,
        description: `${compression} could not compress ${bytes.byteLength} bytes (${
          messageOf(cause)
        }); use another compression ("none" always works)`,
        cause
      })
  )

/** @internal */
export const decompress = (
  bytes: Uint8Array,
  compression: Compression,
  format: string
): Effect.Effect<Uint8Array, SerializationError> =>
  transform(
    bytes,
    compression,
    (buffer) => compression === "zstd" ? Zstd.decompress(buffer) : gunzip(buffer),
    (cause) =>
      new SerializationError({
        reason: "Compression",
        format,
        description:
          `${compression} could not decompress the stored bytes (${
            messageOf(cause)
          }), though their checksum matches: the writer stored a broken payload. The entry will be treated as a miss ` +
          "and written again",
        cause
      })
  )
