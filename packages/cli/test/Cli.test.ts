/**
 * The `s3cache` binary, run as a child process against a real redis-server and s3rver on loopback ports, on entries
 * the library wrote through the same stores.
 */
import { assert, describe, it } from "@effect/vitest"
import { BlobStore } from "@s3cache/core/BlobStore"
import * as Cache from "@s3cache/core/Cache"
import * as CacheKey from "@s3cache/core/CacheKey"
import { MetadataStore } from "@s3cache/core/MetadataStore"
import { RedisMetadataStore } from "@s3cache/redis"
import { S3BlobStore } from "@s3cache/s3"
import { createBucket, s3rver, storeOptions } from "@s3cache/s3/test/servers"
import { freshBucket, shared } from "@s3cache/s3/test/shared"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as RedisServer from "../../redis/test/utils/RedisServer.js"
import { run, runJson } from "./utils/cli.js"

const servers = shared(Effect.all({ redis: RedisServer.make(), s3: s3rver }))

let databases = 0
/** A fresh Redis database (1-15) and bucket, and the variables that point the binary at them. */
const deployment = Effect.gen(function*() {
  const { redis, s3 } = yield* servers
  const bucket = freshBucket("cli")
  yield* Effect.orDie(createBucket(s3, bucket))
  const url = `redis://127.0.0.1:${redis.port}/${(databases++ % 15) + 1}`
  const raw = yield* RedisServer.rawClient(url)
  yield* Effect.promise(() => raw.flushdb())
  const env = {
    S3CACHE_REDIS_URL: url,
    S3CACHE_S3_BUCKET: bucket,
    S3CACHE_S3_ENDPOINT: s3.endpoint,
    S3CACHE_S3_FORCE_PATH_STYLE: "true",
    S3CACHE_AWS_REGION: "us-east-1",
    S3CACHE_AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
    S3CACHE_AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey
  }
  // the application's side: a cache on the same stores, payloads of 64 bytes and more as objects
  const stores = Layer.merge(
    RedisMetadataStore.layer({ url }),
    S3BlobStore.layer(storeOptions(s3, bucket))
  )
  const app = yield* Layer.build(Cache.layer({ inlineThreshold: 64 }).pipe(Layer.provideMerge(stores)))
  const cache = Context.get(app, Cache.Cache)
  return { env, bucket, url, cache, metadata: Context.get(app, MetadataStore), blobs: Context.get(app, BlobStore) }
})

const big = crypto.randomBytes(4096).toString("hex")

/** Entries in two namespaces: small ones inline in the record, large ones as objects. */
const seed = (cache: Cache.Service) =>
  Effect.gen(function*() {
    for (const key of ["a", "b", "c"]) yield* cache.cached(Effect.succeed(key), { key, namespace: "reports" })
    for (const key of ["big-1", "big-2"]) {
      // random bytes do not compress below the inline threshold
      yield* cache.cached(Effect.succeed(big), { key, namespace: "reports" })
    }
    yield* cache.cached(Effect.succeed({ id: 1 }), { key: "user-1", namespace: "users" })
    yield* cache.flush
  })

describe("s3cache (the binary)", () => {
  it.scoped("doctor: every check passes on a healthy deployment, and the probe object is gone", () =>
    Effect.gen(function*() {
      const { blobs, env } = yield* deployment
      const ran = yield* runJson(["doctor"], env)
      assert.strictEqual(ran.code, 0, ran.stdout + ran.stderr)
      assert.isTrue(ran.json.ok)
      const names = ran.json.checks.map((check: any) => check.name)
      for (const name of ["redis reachable", "metadata store", "payloads writable", "payloads deletable"]) {
        assert.include(names, name)
      }
      assert.deepStrictEqual(ran.json.checks.filter((check: any) => check.status === "problem"), [])
      assert.strictEqual((yield* Stream.runCollect(blobs.list("s3cache-doctor/"))).length, 0)
      // the text form: one line per check, and the verdict
      const text = yield* run(["doctor"], env)
      assert.strictEqual(text.code, 0)
      assert.match(text.stdout, /^ok\s+payloads readable/m)
      assert.include(text.stdout, "no problem found")
    }))

  it.scoped("doctor: a missing bucket, no Redis, an unknown variable: problems and warnings, exit code 1", () =>
    Effect.gen(function*() {
      const { env } = yield* deployment
      const noBucket = yield* runJson(["doctor"], { ...env, S3CACHE_S3_BUCKET: "no-such-bucket-here" })
      assert.strictEqual(noBucket.code, 1)
      assert.isFalse(noBucket.json.ok)
      const payload = noBucket.json.checks.find((check: any) => check.status === "problem")
      assert.match(payload.name, /^payload/)
      assert.include(payload.detail, "no-such-bucket-here")

      const { S3CACHE_REDIS_URL: _, ...withoutRedis } = env
      const noRedis = yield* runJson(["doctor"], withoutRedis)
      assert.strictEqual(noRedis.code, 1)
      const metadata = noRedis.json.checks.find((check: any) => check.name === "metadata store")
      assert.strictEqual(metadata.status, "problem")
      assert.include(metadata.detail, "S3CACHE_REDIS_URL")

      const typo = yield* runJson(["doctor"], { ...env, S3CACHE_REDSI_URL: "redis://x" })
      assert.strictEqual(typo.code, 0, "a warning is not a problem")
      const warning = typo.json.checks.find((check: any) => check.status === "warning")
      assert.include(warning.detail, "S3CACHE_REDSI_URL")
      assert.include(warning.fix, "S3CACHE_REDIS_URL")
    }))

  it.scoped("stats: entries, inline and objects, bytes, per namespace, from the stores", () =>
    Effect.gen(function*() {
      const { cache, env } = yield* deployment
      yield* seed(cache)
      const ran = yield* runJson(["stats"], env)
      assert.strictEqual(ran.code, 0, ran.stderr)
      const byName = Object.fromEntries(ran.json.namespaces.map((ns: any) => [ns.namespace, ns]))
      assert.deepStrictEqual(Object.keys(byName).sort(), ["reports", "users"])
      assert.strictEqual(byName.reports.entries, 5)
      assert.strictEqual(byName.reports.inline, 3)
      assert.strictEqual(byName.reports.objects, 2)
      assert.strictEqual(byName.users.entries, 1)
      assert.strictEqual(ran.json.total.entries, 6)
      assert.isAbove(byName.reports.storedBytes, 2 * 4096)
      assert.isBelow(byName.reports.oldest, byName.reports.newest + 1)

      const one = yield* runJson(["stats", "--namespace", "users"], env)
      assert.deepStrictEqual(one.json.namespaces.map((ns: any) => ns.namespace), ["users"])
      const text = yield* run(["stats"], env)
      assert.match(text.stdout, /^namespace\s+entries\s+inline\s+objects/m)
      assert.match(text.stdout, /^reports\s+5\s+3\s+2/m)
    }))

  it.scoped("inspect: the record and its object; a corrupted object and an unknown key exit 1", () =>
    Effect.gen(function*() {
      const { blobs, cache, env, metadata } = yield* deployment
      yield* seed(cache)
      const ran = yield* runJson(["inspect", "--namespace", "reports", "big-1"], env)
      assert.strictEqual(ran.code, 0, ran.stdout + ran.stderr)
      const [entry] = ran.json.entries
      assert.strictEqual(entry.record.namespace, "reports")
      assert.strictEqual(entry.payload.kind, "object")
      assert.isTrue(entry.payload.exists)
      assert.isTrue(entry.payload.checksumMatches)
      assert.isTrue(entry.ok)
      const hash = yield* cache.hashKey("big-1", "reports")
      assert.strictEqual(entry.record.hash, hash)

      const inline = yield* runJson(["inspect", "--hash", yield* cache.hashKey("a", "reports")], env)
      assert.strictEqual(inline.code, 0)
      assert.strictEqual(inline.json.entries[0].payload.kind, "inline")

      // the object's bytes replaced: the check says so, and the exit code
      const record = Option.getOrThrow((yield* metadata.getMany("reports", [hash]))[0]!)
      yield* blobs.put(record.objectKey, new TextEncoder().encode("not the payload"))
      const corrupt = yield* runJson(["inspect", "--namespace", "reports", "big-1"], env)
      assert.strictEqual(corrupt.code, 1)
      assert.isFalse(corrupt.json.entries[0].payload.checksumMatches)
      const corruptText = yield* run(["inspect", "--namespace", "reports", "big-1"], env)
      assert.include(corruptText.stdout, "MISMATCH")

      const unknown = yield* runJson(["inspect", "no-such-key"], env)
      assert.strictEqual(unknown.code, 1)
      assert.isFalse(unknown.json.found)
      const bad = yield* run(["inspect", "--hash", "nothex"], env)
      assert.strictEqual(bad.code, 1)
      assert.include(bad.stderr, "is not an entry hash")
    }))

  it.scoped("invalidate: asks for --yes off a terminal; a key, a namespace, everything", () =>
    Effect.gen(function*() {
      const { cache, env, metadata } = yield* deployment
      yield* seed(cache)
      const refused = yield* run(["invalidate", "--key", "a", "--namespace", "reports"], env)
      assert.strictEqual(refused.code, 1)
      assert.include(refused.stderr, "--yes")
      assert.strictEqual(yield* metadata.size("reports"), 5)

      const key = yield* runJson(["invalidate", "--key", "big-1", "--namespace", "reports", "--yes"], env)
      assert.strictEqual(key.code, 0, key.stderr)
      assert.strictEqual(key.json.removed, 1)
      assert.strictEqual(yield* metadata.size("reports"), 4)
      // the next call of that key runs its effect
      let ran = 0
      yield* cache.cached(Effect.sync(() => ++ran), { key: "big-1", namespace: "reports" })
      assert.strictEqual(ran, 1)
      yield* cache.flush

      const namespace = yield* runJson(["invalidate", "--namespace", "reports", "--yes"], env)
      assert.strictEqual(namespace.json.removed, 5)
      assert.strictEqual(yield* metadata.size("reports"), 0)
      assert.strictEqual(yield* metadata.size("users"), 1)

      const all = yield* runJson(["invalidate", "--all", "--yes"], env)
      assert.strictEqual(all.json.removed, 1)
      assert.strictEqual(yield* metadata.size("users"), 0)

      const neither = yield* run(["invalidate", "--yes"], env)
      assert.strictEqual(neither.code, 1)
      // one line that says what to do, not the error's class
      assert.match(neither.stderr, /^s3cache: say what to invalidate/m)
    }))

  it.scoped("a key in the cache's namespace (S3CACHE_NAMESPACE), and a key that is not a string (--key-json)", () =>
    Effect.gen(function*() {
      const { cache, env, metadata } = yield* deployment
      yield* seed(cache)
      // the application's calls that name no namespace use S3CACHE_NAMESPACE: so do the CLI's
      const inNamespace = yield* runJson(["invalidate", "--key", "c", "--yes"], {
        ...env,
        S3CACHE_NAMESPACE: "reports"
      })
      assert.strictEqual(inNamespace.code, 0, inNamespace.stderr)
      assert.strictEqual(inNamespace.json.removed, 1)
      assert.strictEqual(yield* metadata.size("reports"), 4)

      // a wrapped function's key: { function, args }
      const key = { function: "users.get", args: ["42"] }
      yield* cache.cached(Effect.succeed({ id: 42 }), { key, namespace: "users" })
      yield* cache.flush
      const json = JSON.stringify(key)
      const inspected = yield* runJson(["inspect", "--namespace", "users", "--key-json", json], env)
      assert.strictEqual(inspected.code, 0, inspected.stdout + inspected.stderr)
      assert.strictEqual(inspected.json.entries[0].record.hash, yield* cache.hashKey(key, "users"))
      const removed = yield* runJson(["invalidate", "--namespace", "users", "--key-json", json, "--yes"], env)
      assert.strictEqual(removed.json.removed, 1)
      const notJson = yield* run(["invalidate", "--key-json", "{users", "--yes"], env)
      assert.strictEqual(notJson.code, 1)
      assert.match(notJson.stderr, /^s3cache: --key-json is not JSON/m)
    }))

  it.scoped("a password, in the url or its query, is never printed: stats, doctor, errors", () =>
    Effect.gen(function*() {
      const secured = yield* RedisServer.make()
      const raw = yield* RedisServer.rawClient(secured.url)
      yield* Effect.promise(() => raw.config("SET", "requirepass", "hunter2"))
      const folder = { S3CACHE_LOCAL_PATH: fs.mkdtempSync(path.join(os.tmpdir(), "s3cache-cli-")) }
      for (
        const url of [
          `redis://default:hunter2@127.0.0.1:${secured.port}/0`,
          `redis://127.0.0.1:${secured.port}/0?password=hunter2`
        ]
      ) {
        const stats = yield* runJson(["stats"], { ...folder, S3CACHE_REDIS_URL: url })
        assert.strictEqual(stats.code, 0, stats.stderr)
        assert.include(stats.json.metadata, "***")
        const doctor = yield* runJson(["doctor"], { ...folder, S3CACHE_REDIS_URL: url })
        assert.strictEqual(doctor.code, 0, doctor.stdout + doctor.stderr)
        const text = yield* run(["stats"], { ...folder, S3CACHE_REDIS_URL: url })
        for (const out of [stats, doctor, text]) assert.notInclude(out.stdout + out.stderr, "hunter2", url)
      }
      const wrong = yield* run(["stats"], {
        ...folder,
        S3CACHE_REDIS_URL: `redis://default:hunter3@127.0.0.1:${secured.port}/0`
      })
      assert.strictEqual(wrong.code, 1)
      assert.match(wrong.stderr, /refused the (user and )?password/)
      assert.notInclude(wrong.stderr, "hunter3")
    }))

  it.scoped("cleanup: orphans older than --older-than are deleted, referenced objects kept; --dry-run", () =>
    Effect.gen(function*() {
      const { blobs, cache, env, metadata } = yield* deployment
      yield* seed(cache)
      const storeId = yield* metadata.id
      const orphan = CacheKey.objectKey(storeId, "reports", yield* cache.hashKey("gone", "reports"), "w1")
      yield* blobs.put(orphan, new Uint8Array([1, 2, 3]))

      const dry = yield* runJson(["cleanup", "--older-than", "0s", "--dry-run"], env)
      assert.strictEqual(dry.code, 0, dry.stderr)
      assert.strictEqual(dry.json.orphaned, 1)
      assert.strictEqual(dry.json.deleted, 0)
      assert.strictEqual(dry.json.referenced, 2)
      assert.isTrue(Option.isSome(yield* blobs.get(orphan)))

      const young = yield* runJson(["cleanup"], env)
      assert.strictEqual(young.json.tooYoung, 3, "the default grace age keeps objects younger than an hour")

      // off a terminal, the progress is plain lines on stderr; the report is on stdout
      const real = yield* run(["cleanup", "--older-than", "0s", "--batch-size", "1"], env)
      assert.strictEqual(real.code, 0, real.stderr)
      assert.strictEqual(real.stderr.match(/^cleanup: batch \d+: listed \d+/gm)?.length, 3)
      assert.include(real.stdout, "1 deleted")
      assert.isTrue(Option.isNone(yield* blobs.get(orphan)))
      assert.strictEqual(yield* cache.cached(Effect.die("must hit"), { key: "big-2", namespace: "reports" }), big)

      const badAge = yield* run(["cleanup", "--older-than", "soon"], env)
      assert.strictEqual(badAge.code, 1)
      assert.include(badAge.stderr, "--older-than")
    }))

  it.effect("a flag wins over its variable; a password is never printed; an unknown option exits 2", () =>
    Effect.gen(function*() {
      const { redis } = yield* servers
      const flagged = yield* runJson(["stats", "--redis-url", `redis://127.0.0.1:${redis.port}/14`], {
        S3CACHE_REDIS_URL: "redis://127.0.0.1:1/0"
      })
      assert.strictEqual(flagged.code, 0, flagged.stderr)
      assert.include(flagged.json.metadata, `127.0.0.1:${redis.port}/14`)
      const refused = yield* run(["stats"], { S3CACHE_REDIS_URL: "redis://default:hunter2@127.0.0.1:1/0" })
      assert.strictEqual(refused.code, 1)
      assert.match(refused.stderr, /^s3cache: .*127\.0\.0\.1:1/m)
      assert.notInclude(refused.stdout + refused.stderr, "hunter2")
      const unknown = yield* run(["stats", "--no-such-flag"])
      assert.strictEqual(unknown.code, 2)
    }))
})
