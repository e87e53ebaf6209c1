/**
 * The port for payload bytes, addressed by object key. Implementations: memory and the local file system here,
 * S3 in `@s3cache/s3`. Every implementation must pass the conformance suite in `test/utils/BlobStoreSuite.ts`.
 *
 * Object keys are relative, `/`-separated paths made of `[A-Za-z0-9._=-]` segments (`<ns>/<hh>/<hash>-<writeId>`);
 * a store that maps keys onto a file system or a bucket prefix must refuse anything else with an
 * `InvalidArgument` error (`validateObjectKey` below), so no key can leave the store's root. A key must not also be
 * the start of another key followed by `/` (`a/b` and `a/b/c`): a file system cannot hold both, and the cache's own
 * keys never do that. The order of `list` is unspecified.
 *
 * The file-system store works on `node:fs` directly, so it needs no platform layer. It keeps payloads private to the
 * process's user: it creates folders `0700` and files `0600`, and refuses a root folder that is a symbolic link or
 * belongs to another user (see `FileSystemOptions`).
 *
 * @since 0.1.0
 */
import "./internal/effectVersion.js"
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Stream from "effect/Stream"
import * as os from "node:os"
import * as path from "node:path"
import type { BlobStoreError } from "./CacheError.js"
import * as fileSystem from "./internal/fileSystemBlobStore.js"
import * as memory from "./internal/memoryBlobStore.js"
import * as objectKey from "./internal/objectKey.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface BlobInfo {
  readonly key: string
  /** bytes */
  readonly size: number
  /** epoch milliseconds of the last write */
  readonly lastModified: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface DeleteResult {
  /** keys that are gone now, including keys that were already absent */
  readonly deleted: number
  /** keys that could not be deleted, with the reason */
  readonly failed: ReadonlyArray<{ readonly key: string; readonly error: BlobStoreError }>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class BlobStore extends Context.Tag("@s3cache/core/BlobStore")<BlobStore, {
  /**
   * True when every call settles by the `StoreDeadline` in its context, succeeding or failing with a `Timeout` error
   * (see `StoreDeadline`): the cache then runs the call in the caller's fiber. Otherwise (or absent) the cache runs
   * each call in a fiber of its own and stops waiting at the deadline.
   */
  readonly honoursDeadline?: boolean | undefined

  /** Store bytes under a key, replacing any object there. Atomic: a reader sees the old object, or all of the new. */
  readonly put: (key: string, bytes: Uint8Array) => Effect.Effect<void, BlobStoreError>

  /** Read an object; `Option.none()` when there is none. */
  readonly get: (key: string) => Effect.Effect<Option.Option<Uint8Array>, BlobStoreError>

  /**
   * Delete objects in batches. Deleting an absent key succeeds. Per-key failures, an invalid key among them, are
   * reported in `failed`, not raised; the call itself fails only when the store cannot be used at all.
   */
  readonly delete: (keys: ReadonlyArray<string>) => Effect.Effect<DeleteResult, BlobStoreError>

  /**
   * Every object whose key starts with `prefix` (`""` for all), page by page, in constant memory. Objects still
   * being written may be listed (with their temporary key) or not; they are never listed as complete objects.
   */
  readonly list: (prefix: string) => Stream.Stream<BlobInfo, BlobStoreError>
}>() {}

/**
 * Check an object key against the rules above; every store calls it before touching its backend.
 *
 * @since 0.1.0
 * @category validation
 */
export const validateObjectKey: (method: string, key: string) => Effect.Effect<string, BlobStoreError> =
  objectKey.validateObjectKey

/**
 * Check a `list` prefix: `""`, or the start of a valid key (a trailing `/` allowed).
 *
 * @since 0.1.0
 * @category validation
 */
export const validatePrefix: (method: string, prefix: string) => Effect.Effect<string, BlobStoreError> =
  objectKey.validatePrefix

/**
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<BlobStore["Type"]> = memory.make

/**
 * Payloads in a map, for tests and short-lived processes.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<BlobStore> = Layer.effect(BlobStore, makeMemory)

/**
 * @since 0.1.0
 * @category models
 */
export interface FileSystemOptions {
  /**
   * The folder that holds the objects; created when missing, with every folder `0700` and every file `0600`.
   *
   * Cached results are as sensitive as the database they came from, so the store fails to start
   * (`InvalidArgument`) when this folder is a symbolic link or belongs to another user, and restricts it to its
   * owner when it is open to group or others. Only its last component must not be a link; its ancestors may be.
   */
  readonly directory: string
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const makeFileSystem: (
  options: FileSystemOptions
) => Effect.Effect<BlobStore["Type"], BlobStoreError> = fileSystem.make

/**
 * Payloads as files under a folder, written atomically (a temporary file, then a rename), readable by the process's
 * user only (see `FileSystemOptions`). The store calls `node:fs` directly: no `FileSystem` or `Path` layer to provide.
 *
 * Building it fails with a `Timeout` error naming the folder when creating or checking the folder takes more than
 * 10 seconds, as on a network mount whose server is gone: a program must not hang at startup over its cache.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFileSystem = (options: FileSystemOptions): Layer.Layer<BlobStore, BlobStoreError> =>
  Layer.effect(BlobStore, makeFileSystem(options))

/**
 * Payloads as files in a local folder, through `node:fs`: the payload half of `Cache.layerEmbedded`. The folder is
 * `directory`, by default `defaultLocalPath`. Folders are created `0700` and files `0600`; building the layer fails
 * with `InvalidArgument` when the folder is a symbolic link or belongs to another user, and a folder of ours that is
 * open to group or others (left by an older version) is restricted to its owner. A folder that does not answer
 * within 10 seconds (a hung network mount) fails the layer with `Timeout`, as for `layerFileSystem`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLocal = (options: { readonly directory?: string | undefined } = {}): Layer.Layer<
  BlobStore,
  BlobStoreError
> => layerFileSystem({ directory: options.directory ?? defaultLocalPath })

// The uid on POSIX; elsewhere (Windows) the user name, escaped reversibly so two users never share a folder name.
const currentUserTag = (): string => {
  const uid = process.getuid?.()
  if (uid !== undefined) return String(uid)
  let username: string
  try {
    username = os.userInfo().username
  } catch {
    // no user entry for this process (some containers): still one name, never the old shared folder
    username = "unknown-user"
  }
  return username.replace(
    /[^A-Za-z0-9.-]/g,
    (char) => `_${char.charCodeAt(0).toString(16).padStart(4, "0")}`
  )
}

/**
 * `<os tmp>/query_cache-<uid>`, or `<os tmp>/query_cache-<user name>` where there are no uids (Windows).
 *
 * One folder per user: in the machine-wide temporary folder, a shared name would let any user read the others'
 * cached results, or create the folder first to capture or poison them.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultLocalPath: string = path.join(os.tmpdir(), `query_cache-${currentUserTag()}`)
