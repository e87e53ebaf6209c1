import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as CacheKey from "../src/CacheKey.js"

const hashOf = (key: unknown, namespace?: string) =>
  Either.getOrThrow(CacheKey.hash(key, namespace === undefined ? {} : { namespace })).hash

const errorOf = (either: Either.Either<unknown, { readonly reason: string; readonly message: string }>) => {
  assert.isTrue(Either.isLeft(either))
  return (either as Either.Left<{ readonly reason: string; readonly message: string }, unknown>).left
}

describe("CacheKey", () => {
  it("normalizes white space in string keys and keeps case", () => {
    assert.strictEqual(CacheKey.normalize("  SELECT *\n\tFROM  t  "), "SELECT * FROM t")
    assert.strictEqual(hashOf("SELECT *\n FROM t"), hashOf(" SELECT * FROM t"))
    assert.notStrictEqual(hashOf("SELECT * FROM t"), hashOf("select * from t"))
  })

  it("hashes are sha256 hex and depend on namespace and version", () => {
    const hash = hashOf("k")
    assert.match(hash, /^[0-9a-f]{64}$/)
    assert.notStrictEqual(hash, hashOf("k", "other"))
    const v2 = Either.getOrThrow(CacheKey.hash("k", { version: "2" })).hash
    assert.notStrictEqual(hash, v2)
  })

  it("encodes structured keys stably: record fields in any order hash the same", () => {
    assert.strictEqual(hashOf({ a: 1, b: 2 }), hashOf({ b: 2, a: 1 }))
    assert.strictEqual(hashOf({ a: 1, b: undefined }), hashOf({ a: 1 }))
    assert.strictEqual(
      hashOf(new Map<unknown, unknown>([["x", 1], ["y", 2]])),
      hashOf(new Map<unknown, unknown>([["y", 2], ["x", 1]]))
    )
    assert.strictEqual(hashOf(new Set([1, 2, 3])), hashOf(new Set([3, 2, 1])))
    assert.strictEqual(hashOf(0), hashOf(-0))
  })

  it("keeps values of different types apart", () => {
    const keys: Array<unknown> = [
      "1",
      1,
      1n,
      true,
      "true",
      null,
      undefined,
      [1],
      ["1"],
      { a: 1 },
      { a: "1" },
      new Date(0),
      0,
      new Uint8Array([1]),
      [[1]],
      new Set([1]),
      new Map([[1, 1]]),
      NaN,
      Infinity
    ]
    const hashes = new Set(keys.map((key) => hashOf(key)))
    assert.strictEqual(hashes.size, keys.length)
    // strings inside structures are exact, not normalized
    assert.notStrictEqual(hashOf(["a  b"]), hashOf(["a b"]))
  })

  it("uses toJSON for class instances and refuses what has no stable encoding", () => {
    class Point {
      constructor(readonly x: number) {}
      toJSON() {
        return { x: this.x }
      }
    }
    assert.strictEqual(hashOf(new Point(1)), hashOf(new Point(1)))
    assert.notStrictEqual(hashOf(new Point(1)), hashOf(new Point(2)))
    class Opaque {
      readonly y = 1
    }
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    for (
      const [key, text] of [
        [() => 1, "function"],
        [Symbol("s"), "symbol"],
        [cyclic, "cyclic"],
        [new Date(NaN), "invalid Date"],
        [new Opaque(), "Opaque"],
        [{ nested: [{ f: () => 1 }] }, "function"]
      ] as const
    ) {
      const error = errorOf(CacheKey.hash(key))
      assert.strictEqual(error.reason, "InvalidKey")
      assert.include(error.message, text)
    }
    // a shared (not cyclic) sub-value is fine
    const shared = { a: 1 }
    assert.match(hashOf([shared, shared]), /^[0-9a-f]{64}$/)
  })

  it("refuses namespaces that could reach another namespace's keys", () => {
    for (const namespace of ["*", "{", "}", ":", "", "a:b", "a{b}", "a/b", "a b", ".hidden", "x".repeat(10_000)]) {
      const error = errorOf(CacheKey.validateNamespace(namespace, "test"))
      assert.strictEqual(error.reason, "InvalidNamespace")
      assert.include(error.message, "letters, digits")
      assert.isBelow(error.message.length, 400, "a 10 kB namespace is not echoed whole")
    }
    for (const namespace of ["default", "reports-2026", "a.b_c", "X", "9lives", "n".repeat(64)]) {
      assert.isTrue(Either.isRight(CacheKey.validateNamespace(namespace, "test")))
    }
  })

  it("object keys parse back, temporary files included", () => {
    const hash = hashOf("k")
    const key = CacheKey.objectKey("reports", hash, "w1")
    assert.strictEqual(key, `reports/${hash.slice(0, 2)}/${hash}-w1`)
    assert.deepStrictEqual(CacheKey.parseObjectKey(key), { namespace: "reports", hash, complete: true })
    assert.deepStrictEqual(CacheKey.parseObjectKey(`${key}.tmp-abc`), { namespace: "reports", hash, complete: false })
    assert.isUndefined(CacheKey.parseObjectKey("reports/zz/notahash-w1"))
    assert.isUndefined(CacheKey.parseObjectKey(`reports/00/${hash}-w1`), "the shard must match the hash")
    assert.isUndefined(CacheKey.parseObjectKey("README.txt"))
  })
})
