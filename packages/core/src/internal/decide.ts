/**
 * What the cache decides before the user's effect runs: one lookup, then a hit (the record belongs to the key, its
 * payload reads back), the lock (the effect runs and its value will be stored), or another process's lock (wait for
 * its result, polling, until `stampedeLockTtl`). A provably bad entry is dropped and looked up again; a store that is
 * slow or down, or a format this process cannot read, proves nothing against the entry: it is kept, the call runs
 * uncached.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { BlobStore } from "../BlobStore.js"
import type * as CacheConfig from "../CacheConfig.js"
import type { SerializationError } from "../CacheError.js"
import { BlobStoreError } from "../CacheError.js"
import type * as CacheMetrics from "../CacheMetrics.js"
import type { EntryRecord, LookupResult, MetadataStore } from "../MetadataStore.js"
import type { Serializer } from "../Serializer.js"
import type { Fence } from "./fence.js"
import type { Locks } from "./locks.js"
import { type Plan, refreshPoint } from "./plan.js"
import { uniqueId } from "./random.js"
import * as readModule from "./read.js"
import type { Found, Hit } from "./read.js"

/** What the cache decided before the user's effect runs. @internal */
export type Decision =
  | Hit
  /**
   * `token`: the stampede lock was taken under it, and the value will be stored; none: the call runs uncached.
   * `fallback`: a stale entry that stands in for the effect's value if the effect fails or is slow.
   */
  | { readonly _tag: "Run"; readonly token: string | undefined; readonly fallback?: EntryRecord | undefined }

const uncached: Decision = { _tag: "Run", token: undefined }

/** Bad entries are dropped and looked up again this many times before the call runs uncached. */
const badEntryRetries = 1

/** @internal */
export interface Dependencies {
  readonly config: CacheConfig.Resolved
  readonly metadata: MetadataStore["Type"]
  readonly blobs: BlobStore["Type"]
  readonly serializer: Serializer["Type"]
  readonly metrics: CacheMetrics.Instruments
  readonly fence: Fence
  readonly locks: Locks
  /** deletes objects, logging (not raising) failures */
  readonly deleteObjects: (operation: string, keys: ReadonlyArray<string>) => Effect.Effect<void>
  /** sleep until the next poll, or less if the key's computation is reported done */
  readonly wait: (namespace: string, hash: string, delay: Duration.Duration) => Effect.Effect<void>
  /** whether the effect of `plan`'s key failed less than `graceBackoff` ago (then a stale entry is served as it is) */
  readonly inBackoff: (plan: Plan, now: number) => boolean
}

/**
 * What a read before the lookup already found: a record (judged as a lookup's hit would be), or a failure (the
 * lookup's own, reported as such).
 *
 * @internal
 */
export type Prior =
  | { readonly _tag: "Found"; readonly record: EntryRecord; readonly read: ReadStart }
  | { readonly _tag: "Failed"; readonly cause: Cause.Cause<unknown>; readonly read: ReadStart }

/**
 * When a read before the lookup began: the clock's time (ns), and the in-process tier's generation then (what the tier
 * dropped after it, an invalidation, must not come back from what the read found).
 *
 * @internal
 */
export interface ReadStart {
  readonly startedAt: bigint
  readonly generation: number
}

export type { Found, Hit } from "./read.js"

/** @internal */
export interface Decisions {
  /**
   * Decide for `plan`: `innerSpans`, the serializer's steps make spans of their own (`CacheTracing.InnerSpans`);
   * `now`, the clock's time (ms), just read by the caller; `prior`, what a read before the lookup found, which takes
   * the first lookup's place. A call that will run uncached (`Run` without a token) is the caller's to count.
   */
  readonly decide: (
    plan: Plan,
    innerSpans: boolean,
    now: number,
    prior: Prior | undefined
  ) => Effect.Effect<Decision>
  /**
   * A hit read in plain code from a record a read found, where it needs no Effect; `undefined` where the record takes
   * `decide`'s path (as its `prior`); the error that proves the entry bad is `decide`'s to handle too.
   */
  readonly hitNow: (plan: Plan, record: EntryRecord, innerSpans: boolean) => Hit | SerializationError | undefined
  /** the value of a stale entry kept as a fallback (`Run`'s), read when it is needed */
  readonly readStale: (plan: Plan, record: EntryRecord) => Effect.Effect<Hit, BlobStoreError | SerializationError>
  /**
   * Whether the store still holds `record` for its key (`"same"`: the same write), another record (`changed`), or
   * none (`"gone"`); `"unknown"` when the store does not answer.
   */
  readonly unchanged: (plan: Plan, record: EntryRecord) => Effect.Effect<Found>
}

/** @internal */
export const make = (
  { blobs, config, deleteObjects, fence, inBackoff, locks, metadata, metrics, serializer, wait }: Dependencies
): Decisions => {
  const { fenced, report, withMetadataDeadline } = fence
  const reader = readModule.make({ blobs, fence, metadata, metrics, serializer })
  const waitMs = Duration.toMillis(config.stampedeLockTtl)

  const { belongs, hitNow, read, unchanged } = reader
  /**
   * Drop a provably bad entry: the record, only if it still names the object judged bad (a record written meanwhile
   * survives), then that object, unless it belongs to another entry (a record copied from another key). True when
   * this call removed the record.
   */
  const drop = (plan: Plan, record: EntryRecord, deleteObject: boolean): Effect.Effect<boolean> =>
    fenced(
      "drop",
      "the bad entry stays until its TTL or until it is replaced",
      withMetadataDeadline("removeIf", metadata.removeIf(plan.namespace, plan.hash, record.objectKey)).pipe(
        Effect.tap((removed) => removed && deleteObject ? deleteObjects("drop", [record.objectKey]) : Effect.void)
      ),
      () => false
    )

  const decide: Decisions["decide"] = (plan, innerSpans, now, prior) => {
    const token = uniqueId()

    // A provably bad entry (not its key's, its object gone, its bytes failing the checksum or not decoding) is
    // dropped and looked up again, which takes the lock to write it anew. A store that is slow or down proves nothing
    // about the entry: it stays, and the call bypasses the cache rather than add a delete and a rewrite to a store
    // that is already struggling.
    // An entry past its TTL: within the call's grace, stale (served at once and refreshed in the background, or
    // refreshed now with the stale value standing by); past it, as if there were none. Its lock is taken with
    // `acquireLock`, since the record is still there; held by another process, that one is writing the entry.
    const onHit = (
      record: EntryRecord,
      retries: number,
      again: Effect.Effect<Decision, unknown>,
      now: number,
      busy: () => Effect.Effect<Decision, unknown>
    ): Effect.Effect<Decision, unknown> => {
      if (!belongs(plan, record)) return notItsKey(record, retries, again)
      const freshUntil = record.createdAt + record.ttlMs
      if (now < freshUntil) {
        const due = now >= refreshPoint(plan, record.createdAt, record.ttlMs) && !inBackoff(plan, now)
        return readHit(record, retries, again, false, due)
      }
      if (now >= freshUntil + plan.policy.graceMs) {
        return Effect.flatMap(
          locks.acquire(plan, token, now),
          (acquired) => acquired ? locked(record, retries, again, undefined) : busy()
        )
      }
      const backoff = inBackoff(plan, now)
      if (plan.policy.refresh === "background" || backoff) return readHit(record, retries, again, true, !backoff)
      return Effect.flatMap(
        locks.acquire(plan, token, now),
        (acquired) =>
          acquired
            ? locked(record, retries, again, record)
            // another process refreshes it: stale until it is done
            : readHit(record, retries, again, true, false)
      )
    }

    // The lock taken over a record judged past its TTL: between the lookup and the lock, another process may have
    // written the entry anew and released its lock. A fresh record written meanwhile is read (the lock is let go);
    // otherwise the effect runs to replace what is there (`fallback`: the stale record, to stand in if it is still
    // there then).
    const locked = (
      record: EntryRecord,
      retries: number,
      again: Effect.Effect<Decision, unknown>,
      fallback: EntryRecord | undefined
    ): Effect.Effect<Decision, unknown> =>
      Effect.flatMap(unchanged(plan, record), (found) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          if (typeof found === "object" && now < found.changed.createdAt + found.changed.ttlMs) {
            return Effect.zipRight(
              Effect.flatMap(locks.hold(plan, token), (lease) => lease.end(false)),
              readHit(found.changed, retries, again, false, false)
            )
          }
          return Effect.succeed<Decision>({
            _tag: "Run",
            token,
            ...(fallback !== undefined && (found === "same" || found === "unknown") ? { fallback } : {})
          })
        }))

    const notItsKey = (
      record: EntryRecord,
      retries: number,
      again: Effect.Effect<Decision, unknown>
    ): Effect.Effect<Decision, unknown> => {
      if (!belongs(plan, record)) {
        return report(
          "read",
          "the record belongs to another entry: it is dropped and the effect runs",
          Cause.fail(
            new BlobStoreError({
              reason: "Protocol",
              method: "get",
              key: record.objectKey,
              description: `the record found under ${plan.hash.slice(0, 12)}… names ${record.objectKey}`
            })
          )
        ).pipe(
          Effect.zipRight(drop(plan, record, false)),
          Effect.zipRight(retries > 0 ? again : Effect.succeed(uncached))
        )
      }
      return readHit(record, retries, again, false, false)
    }

    const readHit = (
      record: EntryRecord,
      retries: number,
      again: Effect.Effect<Decision, unknown>,
      stale: boolean,
      refresh: boolean
    ): Effect.Effect<Decision, unknown> =>
      read(plan, record, innerSpans).pipe(
        Effect.map((hit): Decision => stale || refresh ? { ...hit, stale, refresh, record } : hit),
        Effect.catchAllCause((cause): Effect.Effect<Decision, unknown> => {
          if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
          const failure = Option.getOrUndefined(Cause.failureOption(cause))
          // a format this process does not know proves nothing against the entry either: another process, with the
          // codec or a newer s3cache, reads it (a rolling deploy must not have old processes delete new entries)
          const badEntry = failure !== undefined &&
            (failure._tag === "SerializationError"
              ? failure.reason !== "UnsupportedFormat"
              : failure.reason === "Protocol")
          if (!badEntry) {
            return Effect.as(report("read", "the effect runs uncached; the entry is kept", cause), uncached)
          }
          const missing = failure._tag === "BlobStoreError"
          return Effect.flatMap(drop(plan, record, true), (removed) =>
            // An object missing under a record that was replaced or removed meanwhile is a race with a writer or an
            // invalidation, not damage: look again without a warning.
            (missing && !removed
              ? Effect.logDebug("s3cache: the entry changed while it was read; looking it up again")
              : report("read", "the entry is dropped and the effect runs", cause)).pipe(
                Effect.zipRight(retries > 0 ? again : Effect.succeed(uncached))
              ))
        })
      )

    // `now`: the clock's time, read once per lookup and shared with the lock bookkeeping
    const loop = (
      deadline: number,
      attempt: number,
      retries: number,
      now: number,
      prior?: Prior
    ): Effect.Effect<Decision, unknown> =>
      Effect.flatMap(
        prior === undefined
          ? locks.lookup(plan, token, now)
          : prior._tag === "Found"
          ? Effect.succeed<LookupResult>({ _tag: "Hit", record: prior.record })
          : Effect.failCause(prior.cause),
        (result) => {
          // A lock of our own that lost its work (release failed, lookup abandoned) holds the key until its lease
          // lapses: waiting for it would wait for a value that nobody computes.
          const busy = () =>
            Effect.flatMap(
              Clock.currentTimeMillis,
              (now) =>
                locks.orphaned(plan, now)
                  ? Effect.as(
                    Effect.logDebug(
                      "s3cache: the key is locked by a lock of this process that lost its work; running uncached"
                    ),
                    uncached
                  )
                  : now >= deadline
                  ? Effect.as(
                    Effect.logWarning(
                      "s3cache: waited stampedeLockTtl for another process's result; running the effect uncached"
                    ),
                    uncached
                  )
                  : Effect.zipRight(
                    // woken at once when the holder's commit (or an invalidation) is announced on the bus
                    wait(plan.namespace, plan.hash, pollDelay(attempt, deadline - now)),
                    Effect.flatMap(Clock.currentTimeMillis, (now) => loop(deadline, attempt + 1, retries, now))
                  )
            )
          switch (result._tag) {
            case "Hit":
              return onHit(
                result.record,
                retries,
                Effect.flatMap(Clock.currentTimeMillis, (now) => loop(deadline, attempt, retries - 1, now)),
                now,
                busy
              )
            case "Acquired":
              return Effect.succeed<Decision>({ _tag: "Run", token })
            case "Busy":
              return busy()
          }
        }
      )

    return fenced(
      "lookup",
      "the effect runs uncached",
      loop(now + waitMs, 0, badEntryRetries, now, prior),
      () => uncached
    )
  }

  return { decide, hitNow, readStale: (plan, record) => read(plan, record, false), unchanged: reader.unchanged }
}

/** Delay before asking again whether another process's result is there: fast at first, then every ~250 ms. */
const pollDelay = (attempt: number, remainingMs: number): Duration.Duration => {
  const base = Math.min(10 * 2 ** attempt, 250)
  return Duration.millis(Math.max(1, Math.min(remainingMs, base / 2 + Math.random() * base / 2)))
}
