/**
 * The file-system `BlobStore`: each object is the file `<directory>/<key>`, written to a temporary file beside it
 * and renamed into place, so a reader sees the old bytes or all of the new ones.
 *
 * Cached results are as sensitive as the database they came from, so only the process's user may see them: folders
 * are created `0700` and files `0600` (less any bits the umask removes), and `make` refuses a root folder that is a
 * symbolic link or belongs to another user (`secureRoot` below).
 *
 * @since 0.1.0
 */
import type * as PlatformError from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { BlobInfo, BlobStore, DeleteResult, FileSystemOptions } from "../BlobStore.js"
import { BlobStoreError } from "../CacheError.js"
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

const errnoCode = (error: PlatformError.PlatformError): string | undefined => {
  const cause: unknown = error.cause
  return typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
    ? cause.code
    : undefined
}

// ENOTDIR / EISDIR (`BadResource`) mean a folder stands where a file would be or the other way round: either way
// no object has that key.
const isAbsent = (error: PlatformError.PlatformError): boolean =>
  error._tag === "SystemError" &&
  (error.reason === "NotFound" || error.reason === "BadResource" || errnoCode(error) === "ERR_FS_EISDIR")

const unavailableCodes = new Set(["ENOSPC", "EDQUOT", "EROFS", "EMFILE", "ENFILE", "EIO", "EAGAIN"])

const toBlobStoreError = (
  method: string,
  key: string | undefined,
  description: string
) =>
(error: PlatformError.PlatformError): BlobStoreError => {
  const code = errnoCode(error)
  let reason: BlobStoreError["reason"] = "Unknown"
  if (error._tag === "SystemError") {
    switch (error.reason) {
      case "TimedOut":
        reason = "Timeout"
        break
      case "PermissionDenied":
      case "Busy":
      case "WouldBlock":
        reason = "Unavailable"
        break
      default:
        if (code !== undefined && unavailableCodes.has(code)) reason = "Unavailable"
    }
  }
  return new BlobStoreError({
    reason,
    method,
    ...(key !== undefined ? { key } : {}),
    description: `${description}: ${error.message}`,
    cause: error
  })
}

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

// Any failure of `readLink` means "not a link": a folder that is really missing or unreadable fails the next step.
const refuseSymbolicLink = (fs: FileSystem.FileSystem, root: string): Effect.Effect<void, BlobStoreError> =>
  fs.readLink(root).pipe(
    Effect.option,
    Effect.flatMap(Option.match({
      onNone: () => Effect.void,
      onSome: (target) =>
        Effect.fail(refuseRoot(
          root,
          `is a symbolic link (to ${target}), which another user may have planted to read or poison cached results; ` +
            "remove the link, or set `directory` to a real folder that belongs to you"
        ))
    }))
  )

/**
 * Refuse a root folder that another user could read or redirect, and close one that an older version left open.
 *
 * The default root sits in the machine-wide temporary folder, where any user can create the name first: a symbolic
 * link there would send every read and write to a folder of their choice, and a folder of theirs would let them read
 * or plant payloads. Only the root's own name is checked for a link, because its ancestors are the user's choice and
 * some are links legitimately (macOS's `/var` → `/private/var`); the platform `FileSystem` has no `lstat`, and
 * `readLink` succeeds on a link only. A root of ours that is open to group or others (made `0755` by an older
 * version) is tightened, not refused: its files then need no fixing, as nobody else can reach them. Without a process
 * uid (Windows) there is no owner to compare and no POSIX mode to set; the per-user temporary folder is private there.
 */
const secureRoot = Effect.fnUntraced(function*(fs: FileSystem.FileSystem, root: string) {
  yield* refuseSymbolicLink(fs, root)
  const uid = process.getuid?.()
  if (uid === undefined) return
  const info = yield* fs.stat(root).pipe(
    Effect.mapError(toBlobStoreError("make", undefined, `cannot inspect the store's folder ${root}`))
  )
  if (Option.isSome(info.uid) && info.uid.value !== uid) {
    return yield* Effect.fail(refuseRoot(
      root,
      `belongs to the user with uid ${info.uid.value}, not to this process's user (uid ${uid}), so that user could ` +
        "read or poison cached results; remove the folder, or set `directory` to a folder that belongs to you"
    ))
  }
  if ((info.mode & 0o077) !== 0) {
    yield* fs.chmod(root, directoryMode).pipe(
      Effect.mapError(toBlobStoreError("make", undefined, `cannot restrict the store's folder ${root} to its owner`))
    )
  }
})

type ListTask =
  | { readonly _tag: "Directory"; readonly keyPrefix: string; readonly nameFilter: string }
  | { readonly _tag: "Entries"; readonly keyPrefix: string; readonly names: ReadonlyArray<string>; offset: number }

/**
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options: FileSystemOptions) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const root = path.resolve(options.directory)
  const spanAttributes = { "s3cache.blob_store": "file_system", "s3cache.directory": root } as const

  yield* fs.makeDirectory(root, { recursive: true, mode: directoryMode }).pipe(
    Effect.mapError(toBlobStoreError("make", undefined, `cannot create the store's folder ${root}`)),
    // A dangling link fails the creation with a misleading "not found"; report the link instead.
    Effect.tapError(() => refuseSymbolicLink(fs, root))
  )
  yield* secureRoot(fs, root)

  // Keys are validated first, so every segment is a plain file name and the result stays under `root`.
  const toPath = (key: string): string => path.join(root, ...key.split("/").filter((segment) => segment !== ""))

  const put = (key: string, bytes: Uint8Array): Effect.Effect<void, BlobStoreError> =>
    Effect.gen(function*() {
      yield* validateObjectKey("put", key)
      const file = toPath(key)
      const temporary = `${file}${temporaryMarker}${randomSuffix()}`
      const collision = (error: PlatformError.PlatformError): BlobStoreError =>
        new BlobStoreError({
          reason: "InvalidArgument",
          method: "put",
          key,
          description: "a file stands where this key needs a folder, or a folder where it needs a file " +
            `(an object key must not also be the start of another key followed by "/"): ${error.message}`,
          cause: error
        })
      const refine = (error: PlatformError.PlatformError): BlobStoreError =>
        error._tag === "SystemError" && (error.reason === "BadResource" || error.reason === "AlreadyExists")
          ? collision(error)
          : toBlobStoreError("put", key, `cannot write ${file}`)(error)

      yield* fs.makeDirectory(path.dirname(file), { recursive: true, mode: directoryMode }).pipe(
        Effect.mapError(refine)
      )
      // The write itself is uninterruptible: an aborted `writeFile` can still create the file after a cleanup has
      // run, leaving debris. Interruption is honoured right after it, before the rename, and the cleanup removes the
      // temporary file, which then surely exists in full.
      yield* Effect.uninterruptibleMask((restore) =>
        fs.writeFile(temporary, bytes, { mode: fileMode }).pipe(
          Effect.zipRight(restore(Effect.yieldNow())),
          Effect.zipRight(fs.rename(temporary, file)),
          Effect.mapError(refine),
          Effect.onError(() => Effect.ignore(fs.remove(temporary, { force: true })))
        )
      )
    }).pipe(
      Effect.withSpan("BlobStore.put", {
        kind: "client",
        attributes: { ...spanAttributes, "s3cache.object_key": key, "s3cache.object_size": bytes.byteLength }
      })
    )

  const get = (key: string): Effect.Effect<Option.Option<Uint8Array>, BlobStoreError> =>
    validateObjectKey("get", key).pipe(
      Effect.zipRight(
        fs.readFile(toPath(key)).pipe(
          // A plain `Uint8Array` view, not Node's `Buffer` subclass, so callers compare it like any other store's.
          Effect.map((bytes) => Option.some(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength))),
          Effect.catchIf(isAbsent, () => Effect.succeedNone),
          Effect.mapError(toBlobStoreError("get", key, `cannot read ${toPath(key)}`))
        )
      ),
      Effect.withSpan("BlobStore.get", {
        kind: "client",
        attributes: { ...spanAttributes, "s3cache.object_key": key }
      })
    )

  const deleteOne = (key: string): Effect.Effect<Option.Option<BlobStoreError>> =>
    Option.match(objectKeyProblem(key), {
      onSome: (problem) => Effect.succeedSome(invalidObjectKey("delete", key, problem)),
      onNone: () =>
        fs.remove(toPath(key), { force: true }).pipe(
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
      Effect.withSpan("BlobStore.delete", {
        kind: "client",
        attributes: { ...spanAttributes, "s3cache.object_count": keys.length }
      })
    )

  const readDirectory = (keyPrefix: string): Effect.Effect<ReadonlyArray<string>, BlobStoreError> =>
    fs.readDirectory(keyPrefix === "" ? root : toPath(keyPrefix)).pipe(
      Effect.catchIf(isAbsent, () => Effect.succeed([])),
      Effect.map((names) => names.sort()),
      Effect.mapError(toBlobStoreError("list", keyPrefix, `cannot read the folder ${toPath(keyPrefix)}`))
    )

  const statEntry = (key: string): Effect.Effect<Option.Option<FileSystem.File.Info>, BlobStoreError> =>
    fs.stat(toPath(key)).pipe(
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
        if (info.value.type === "Directory") {
          directories.push({ _tag: "Directory", keyPrefix: `${key}/`, nameFilter: "" })
        } else if (info.value.type === "File") {
          out.push({
            key,
            size: Number(info.value.size),
            lastModified: Option.match(info.value.mtime, { onNone: () => 0, onSome: (date) => date.getTime() })
          })
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
