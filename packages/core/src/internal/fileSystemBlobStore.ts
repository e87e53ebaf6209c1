/**
 * The file-system `BlobStore`: each object is the file `<directory>/<key>`, written to a temporary file beside it
 * and renamed into place, so a reader sees the old bytes or all of the new ones.
 *
 * Written on `node:fs` directly, not on the Effect platform's `FileSystem` service, so keeping payloads in a local
 * folder needs no platform layer and no platform package.
 *
 * Cached results are as sensitive as the database they came from, so only the process's user may see them: folders
 * are created `0700` and files `0600` (less any bits the umask removes), and `make` refuses a root folder that is a
 * symbolic link or belongs to another user (`secureRoot` below).
 *
 * @since 0.1.0
 */
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import * as fsPromises from "node:fs/promises"
import * as path from "node:path"
import type { BlobInfo, BlobStore, DeleteResult, FileSystemOptions } from "../BlobStore.js"
import { BlobStoreError } from "../CacheError.js"
import * as CacheTracing from "../CacheTracing.js"
import { invalidObjectKey, objectKeyProblem, validateObjectKey, validatePrefix } from "./objectKey.js"

/**
 * Marks a file as an unfinished write. Part of the listed key, so orphan cleanup can recognise crash debris.
 *
 * @since 0.1.0
 */
export const temporaryMarker = ".tmp-"

// Owner only: other users of the machine must neither read cached results nor add files among them.
const directoryMode = 0o700
const fileMode = 0o600

// Bounds the open file handles of one `delete` or one listing page, far below common `ulimit -n` values.
const ioConcurrency = 16
// Entries of one directory are stat-ed and emitted this many at a time, so a huge folder streams out in pages.
const listPageSize = 256

// A failed `node:fs` call: the error Node gave, and its code (an errno name such as `ENOENT`, or one of Node's own
// such as `ERR_FS_EISDIR`).
interface FsError {
  readonly code: string | undefined
  readonly message: string
  readonly cause: unknown
}

const fsError = (cause: unknown): FsError => ({
  code: Predicate.hasProperty(cause, "code") && typeof cause.code === "string" ? cause.code : undefined,
  message: cause instanceof Error ? cause.message : String(cause),
  cause
})

const tryFs = <A>(evaluate: () => Promise<A>): Effect.Effect<A, FsError> =>
  Effect.tryPromise({ try: evaluate, catch: fsError })

// Payloads may be large: interrupting a read aborts it instead of leaving it to run to the end.
const readFile = (file: string): Effect.Effect<Buffer, FsError> =>
  Effect.async((resume, signal) => {
    try {
      fs.readFile(file, { signal }, (error, data) =>
        resume(error === null ? Effect.succeed(data) : Effect.fail(fsError(error))))
    } catch (error) {
      resume(Effect.fail(fsError(error)))
    }
  })

// No signal: `put` runs the write uninterruptibly (see there).
const writeFile = (file: string, bytes: Uint8Array): Effect.Effect<void, FsError> =>
  Effect.async((resume) => {
    try {
      fs.writeFile(file, bytes, { mode: fileMode }, (error) =>
        resume(error === null ? Effect.void : Effect.fail(fsError(error))))
    } catch (error) {
      resume(Effect.fail(fsError(error)))
    }
  })

// ENOTDIR / EISDIR (and ELOOP) mean a folder stands where a file would be or the other way round: either way no
// object has that key. `rm` reports a folder with Node's own ERR_FS_EISDIR.
const absentCodes = new Set(["ENOENT", "ENOTDIR", "EISDIR", "ELOOP", "ERR_FS_EISDIR"])
const isAbsent = (error: FsError): boolean => error.code !== undefined && absentCodes.has(error.code)

// For `put`: a file or folder stands where the key needs the other one.
const collisionCodes = new Set(["ENOTDIR", "EISDIR", "ELOOP", "EEXIST"])

const unavailableCodes = new Set(["EACCES", "EBUSY", "ENOSPC", "EDQUOT", "EROFS", "EMFILE", "ENFILE", "EIO", "EAGAIN"])

const toBlobStoreError = (
  method: string,
  key: string | undefined,
  description: string
) =>
(error: FsError): BlobStoreError =>
  new BlobStoreError({
    reason: error.code === "ETIMEDOUT"
      ? "Timeout"
      : error.code !== undefined && unavailableCodes.has(error.code)
      ? "Unavailable"
      : "Unknown",
    method,
    ...(key !== undefined ? { key } : {}),
    description: `${description}: ${error.message}`,
    cause: error.cause
  })

// Two writers of one key must never share a temporary file, or one would rename the other's half-written bytes.
const randomSuffix = (): string => {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(8))
  let out = ""
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0")
  return out
}

const refuseRoot = (root: string, problem: string): BlobStoreError =>
  new BlobStoreError({
    reason: "InvalidArgument",
    method: "make",
    description: `the store's folder ${root} ${problem}`
  })

// The link's target makes the message easier to act on; a link removed meanwhile is still reported, without it.
const refuseSymbolicLink = (setupFs: SetupFs, root: string): Effect.Effect<never, BlobStoreError> =>
  tryFs(() => setupFs.readlink(root)).pipe(
    Effect.option,
    Effect.flatMap((target) =>
      Effect.fail(refuseRoot(
        root,
        `is a symbolic link${Option.match(target, { onNone: () => "", onSome: (target) => ` (to ${target})` })}, ` +
          "which another user may have planted to read or poison cached results; " +
          "remove the link, or set `directory` to a real folder that belongs to you"
      ))
    )
  )

// After a failed creation: a dangling link fails it with a misleading "not found" or "exists", so report the link
// instead. Any failure of `lstat` here leaves the creation's own error to be reported.
const refuseIfSymbolicLink = (setupFs: SetupFs, root: string): Effect.Effect<void, BlobStoreError> =>
  tryFs(() => setupFs.lstat(root)).pipe(
    Effect.option,
    Effect.flatMap((info) =>
      Option.isSome(info) && info.value.isSymbolicLink() ? refuseSymbolicLink(setupFs, root) : Effect.void
    )
  )

/**
 * Refuse a root folder that another user could read or redirect, and close one that an older version left open.
 *
 * The default root sits in the machine-wide temporary folder, where any user can create the name first: a symbolic
 * link there would send every read and write to a folder of their choice, and a folder of theirs would let them read
 * or plant payloads. One `lstat` of the root answers both: it does not follow a link, so it sees a link as a link
 * and otherwise the folder itself. Only the root's own name is checked, because its ancestors are the user's choice
 * and some are links legitimately (macOS's `/var` → `/private/var`). A root of ours that is open to group or others
 * (made `0755` by an older version) is tightened, not refused: its files then need no fixing, as nobody else can
 * reach them. Without a process uid (Windows) there is no owner to compare and no POSIX mode to set; the per-user
 * temporary folder is private there.
 */
const secureRoot = Effect.fnUntraced(function*(setupFs: SetupFs, root: string) {
  const info = yield* tryFs(() => setupFs.lstat(root)).pipe(
    Effect.mapError(toBlobStoreError("make", undefined, `cannot inspect the store's folder ${root}`))
  )
  if (info.isSymbolicLink()) return yield* refuseSymbolicLink(setupFs, root)
  const uid = process.getuid?.()
  if (uid === undefined) return
  if (info.uid !== uid) {
    return yield* Effect.fail(refuseRoot(
      root,
      `belongs to the user with uid ${info.uid}, not to this process's user (uid ${uid}), so that user could ` +
        "read or poison cached results; remove the folder, or set `directory` to a folder that belongs to you"
    ))
  }
  if ((info.mode & 0o077) !== 0) {
    yield* tryFs(() => setupFs.chmod(root, directoryMode)).pipe(
      Effect.mapError(toBlobStoreError("make", undefined, `cannot restrict the store's folder ${root} to its owner`))
    )
  }
})

type ListTask =
  | { readonly _tag: "Directory"; readonly keyPrefix: string; readonly nameFilter: string }
  | { readonly _tag: "Entries"; readonly keyPrefix: string; readonly names: ReadonlyArray<string>; offset: number }

/**
 * How long creating and checking the root folder may take when the store is built. A folder on a network mount
 * whose server is gone (a hard NFS mount) never answers `mkdir` or `lstat`; without a bound, building the layer, and
 * so starting the program, would hang. Nothing else bounds it: the cache's `blobTimeout` covers its calls to a
 * store, not the building of one.
 *
 * @internal
 */
export const setupTimeout: Duration.Duration = Duration.seconds(10)

/**
 * The `node:fs` calls that set up the root folder, replaceable so a test can stand in for a mount that never
 * answers.
 *
 * @internal
 */
export interface SetupFs {
  readonly mkdir: (path: string, options: { readonly recursive: true; readonly mode: number }) => Promise<unknown>
  readonly lstat: (path: string) => Promise<fs.Stats>
  readonly chmod: (path: string, mode: number) => Promise<void>
  readonly readlink: (path: string) => Promise<string>
}

const nodeSetupFs: SetupFs = {
  mkdir: (path, options) => fsPromises.mkdir(path, options),
  lstat: (path) => fsPromises.lstat(path),
  chmod: (path, mode) => fsPromises.chmod(path, mode),
  readlink: (path) => fsPromises.readlink(path)
}

const setupTimedOut = (root: string, timeout: Duration.Duration): BlobStoreError =>
  new BlobStoreError({
    reason: "Timeout",
    method: "make",
    description: `the store's folder ${root} (directory, or S3CACHE_LOCAL_PATH for Cache.layerEmbeddedConfig) did ` +
      `not answer within ${Duration.format(timeout)}: a network mount whose server is unreachable? Check the mount, ` +
      "or point the store at a folder on a local disk"
  })

/**
 * `setup` replaces the `node:fs` calls that create and check the root folder, and `timeout` their bound: for tests.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(
  options: FileSystemOptions,
  setup: { readonly fs?: SetupFs | undefined; readonly timeout?: Duration.DurationInput | undefined } = {}
) {
  const root = path.resolve(options.directory)
  const spanAttributes = { "s3cache.blob_store": "file_system", "s3cache.directory": root } as const
  const setupFs = setup.fs ?? nodeSetupFs
  const timeout = Duration.decode(setup.timeout ?? setupTimeout)

  yield* tryFs(() => setupFs.mkdir(root, { recursive: true, mode: directoryMode })).pipe(
    Effect.mapError(toBlobStoreError("make", undefined, `cannot create the store's folder ${root}`)),
    Effect.tapError(() => refuseIfSymbolicLink(setupFs, root)),
    Effect.zipRight(secureRoot(setupFs, root)),
    // an abandoned `mkdir` on a dead mount keeps one thread of libuv's pool until the mount answers: nothing in Node
    // can cancel it, but the program goes on
    Effect.timeoutFail({ duration: timeout, onTimeout: () => setupTimedOut(root, timeout) })
  )

  // Keys are validated first, so every segment is a plain file name and the result stays under `root`.
  const toPath = (key: string): string => path.join(root, ...key.split("/").filter((segment) => segment !== ""))

  const put = (key: string, bytes: Uint8Array): Effect.Effect<void, BlobStoreError> =>
    Effect.gen(function*() {
      yield* validateObjectKey("put", key)
      const file = toPath(key)
      const temporary = `${file}${temporaryMarker}${randomSuffix()}`
      const refine = (error: FsError): BlobStoreError =>
        error.code !== undefined && collisionCodes.has(error.code)
          ? new BlobStoreError({
            reason: "InvalidArgument",
            method: "put",
            key,
            description: "a file stands where this key needs a folder, or a folder where it needs a file " +
              `(an object key must not also be the start of another key followed by "/"): ${error.message}`,
            cause: error.cause
          })
          : toBlobStoreError("put", key, `cannot write ${file}`)(error)

      yield* tryFs(() => fsPromises.mkdir(path.dirname(file), { recursive: true, mode: directoryMode })).pipe(
        Effect.mapError(refine)
      )
      // The write itself is uninterruptible: an aborted `writeFile` can still create the file after a cleanup has
      // run, leaving debris. Interruption is honoured right after it, before the rename, and the cleanup removes the
      // temporary file, which then surely exists in full.
      yield* Effect.uninterruptibleMask((restore) =>
        writeFile(temporary, bytes).pipe(
          Effect.zipRight(restore(Effect.yieldNow())),
          Effect.zipRight(tryFs(() => fsPromises.rename(temporary, file))),
          Effect.mapError(refine),
          Effect.onError(() => Effect.ignore(tryFs(() => fsPromises.rm(temporary, { force: true }))))
        )
      )
    }).pipe(
      CacheTracing.withInnerSpan("BlobStore.put", {
        kind: "client",
        attributes: { ...spanAttributes, "s3cache.object_key": key, "s3cache.object_size": bytes.byteLength }
      })
    )

  const get = (key: string): Effect.Effect<Option.Option<Uint8Array>, BlobStoreError> =>
    validateObjectKey("get", key).pipe(
      Effect.zipRight(
        readFile(toPath(key)).pipe(
          // A plain `Uint8Array` view, not Node's `Buffer` subclass, so callers compare it like any other store's.
          Effect.map((bytes) => Option.some(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength))),
          Effect.catchIf(isAbsent, () => Effect.succeedNone),
          Effect.mapError(toBlobStoreError("get", key, `cannot read ${toPath(key)}`))
        )
      ),
      CacheTracing.withInnerSpan("BlobStore.get", {
        kind: "client",
        attributes: { ...spanAttributes, "s3cache.object_key": key }
      })
    )

  const deleteOne = (key: string): Effect.Effect<Option.Option<BlobStoreError>> =>
    Option.match(objectKeyProblem(key), {
      onSome: (problem) => Effect.succeedSome(invalidObjectKey("delete", key, problem)),
      onNone: () =>
        // `rm`, not `unlink`: a folder at the key fails the same way everywhere (ERR_FS_EISDIR), and is no object.
        tryFs(() => fsPromises.rm(toPath(key), { force: true })).pipe(
          Effect.as(Option.none<BlobStoreError>()),
          Effect.catchIf(isAbsent, () => Effect.succeedNone),
          Effect.catchAll((error) =>
            Effect.succeedSome(toBlobStoreError("delete", key, `cannot remove ${toPath(key)}`)(error))
          )
        )
    })

  const delete_ = (keys: ReadonlyArray<string>): Effect.Effect<DeleteResult, BlobStoreError> =>
    Effect.forEach(keys, deleteOne, { concurrency: ioConcurrency }).pipe(
      Effect.map((results) => {
        let deleted = 0
        const failed: Array<DeleteResult["failed"][number]> = []
        results.forEach((result, i) => {
          if (Option.isSome(result)) failed.push({ key: keys[i]!, error: result.value })
          else deleted++
        })
        return { deleted, failed }
      }),
      CacheTracing.withInnerSpan("BlobStore.delete", {
        kind: "client",
        attributes: { ...spanAttributes, "s3cache.object_count": keys.length }
      })
    )

  const readDirectory = (keyPrefix: string): Effect.Effect<ReadonlyArray<string>, BlobStoreError> =>
    tryFs(() => fsPromises.readdir(keyPrefix === "" ? root : toPath(keyPrefix))).pipe(
      Effect.catchIf(isAbsent, () => Effect.succeed([])),
      Effect.map((names) => names.sort()),
      Effect.mapError(toBlobStoreError("list", keyPrefix, `cannot read the folder ${toPath(keyPrefix)}`))
    )

  const statEntry = (key: string): Effect.Effect<Option.Option<fs.Stats>, BlobStoreError> =>
    tryFs(() => fsPromises.stat(toPath(key))).pipe(
      Effect.map(Option.some),
      // Deleted between the directory read and the stat: it is simply not there any more.
      Effect.catchIf(isAbsent, () => Effect.succeedNone),
      Effect.mapError(toBlobStoreError("list", key, `cannot stat ${toPath(key)}`))
    )

  // One step of a depth-first walk over a stack of pending work: at most one directory read or one page of stats,
  // so memory holds the names of the folders on the current path, never the whole tree.
  const listStep = (
    stack: Array<ListTask>
  ): Effect.Effect<readonly [Chunk.Chunk<BlobInfo>, Option.Option<Array<ListTask>>], BlobStoreError> =>
    Effect.gen(function*() {
      const task = stack.pop()
      if (task === undefined) return [Chunk.empty(), Option.none()] as const
      const next = () => (stack.length === 0 ? Option.none() : Option.some(stack))
      if (task._tag === "Directory") {
        const names = yield* readDirectory(task.keyPrefix)
        const matching = task.nameFilter === "" ? names : names.filter((name) => name.startsWith(task.nameFilter))
        if (matching.length > 0) stack.push({ _tag: "Entries", keyPrefix: task.keyPrefix, names: matching, offset: 0 })
        return [Chunk.empty(), next()] as const
      }
      const page = task.names.slice(task.offset, task.offset + listPageSize)
      task.offset += page.length
      if (task.offset < task.names.length) stack.push(task)
      const infos = yield* Effect.forEach(
        page,
        (name) => Effect.map(statEntry(task.keyPrefix + name), (info) => [task.keyPrefix + name, info] as const),
        { concurrency: ioConcurrency }
      )
      const out: Array<BlobInfo> = []
      const directories: Array<ListTask> = []
      for (const [key, info] of infos) {
        if (Option.isNone(info)) continue
        if (info.value.isDirectory()) {
          directories.push({ _tag: "Directory", keyPrefix: `${key}/`, nameFilter: "" })
        } else if (info.value.isFile()) {
          out.push({ key, size: info.value.size, lastModified: info.value.mtime.getTime() })
        }
      }
      // Reversed, so the stack pops sub-folders in name order.
      for (let i = directories.length - 1; i >= 0; i--) stack.push(directories[i]!)
      return [Chunk.unsafeFromArray(out), next()] as const
    })

  const list = (prefix: string): Stream.Stream<BlobInfo, BlobStoreError> =>
    validatePrefix("list", prefix).pipe(
      Effect.map((prefix) => {
        const slash = prefix.lastIndexOf("/")
        const initial: Array<ListTask> = [{
          _tag: "Directory",
          keyPrefix: prefix.slice(0, slash + 1),
          nameFilter: prefix.slice(slash + 1)
        }]
        return Stream.paginateChunkEffect(initial, listStep)
      }),
      Stream.unwrap,
      Stream.withSpan("BlobStore.list", {
        kind: "client",
        attributes: { ...spanAttributes, "s3cache.prefix": prefix }
      })
    )

  return { put, get, delete: delete_, list } satisfies BlobStore["Type"]
})
