import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as CacheKey from "../src/CacheKey.js"

// `unknown`: the runtime checks what JavaScript callers (and `as any`) can pass, beyond what the type allows
const hashOf = (key: unknown, namespace?: string) =>
  Either.getOrThrow(CacheKey.hash(key as CacheKey.CacheKey, namespace === undefined ? {} : { namespace })).hash

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
      [undefined],
      [null],
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
    // a key that is undefined is a missing argument, not a key every such call would share
    assert.strictEqual(errorOf(CacheKey.hash(undefined as any)).reason, "InvalidKey")
  })

  it("keeps white space inside quoted SQL literals exactly", () => {
    const differ = [
      ["SELECT * FROM t WHERE name = 'a  b'", "SELECT * FROM t WHERE name = 'a b'"],
      ["SELECT * FROM t WHERE name = 'a\tb'", "SELECT * FROM t WHERE name = 'a b'"],
      ["SELECT \"my  col\" FROM t", "SELECT \"my col\" FROM t"],
      ["SELECT `my  col` FROM t", "SELECT `my col` FROM t"],
      ["SELECT 'it''s  here'", "SELECT 'it''s here'"],
      ["SELECT $$a  b$$", "SELECT $$a b$$"],
      ["SELECT $fn$ x  'y'  $fn$", "SELECT $fn$ x 'y' $fn$"],
      // a line comment ends at the line break: on one line, the rest of the query would be commented out
      ["SELECT a -- note\nFROM t", "SELECT a -- note FROM t"],
      ["SELECT a # note\nFROM t", "SELECT a # note FROM t"],
      // a quote inside a block comment opens no literal
      [
        "/* don't */ SELECT * FROM users WHERE name = 'Ann  Lee'",
        "/* don't */ SELECT * FROM users WHERE name = 'Ann Lee'"
      ],
      ["SELECT 1 /* it's */ , 'a  b'", "SELECT 1 /* it's */ , 'a b'"],
      ["SELECT /* a  b */ 1", "SELECT /* a b */ 1"],
      // unclear quoting: the rest is kept as it is
      ["SELECT 'a\\'  ||  ' b'", "SELECT 'a\\' || ' b'"],
      ["SELECT 'open  ended", "SELECT 'open ended"]
    ] as const
    for (const [a, b] of differ) assert.notStrictEqual(hashOf(a), hashOf(b), `${a} | ${b}`)
    const same = [
      ["SELECT *\n  FROM t\n WHERE name = 'a  b'  ", "SELECT * FROM t WHERE name = 'a  b'"],
      ["SELECT 'x',\n\n   'y'", "SELECT 'x', 'y'"],
      ["SELECT a -- note\n\n   FROM   t", "SELECT a -- note\nFROM t"],
      ["SELECT $1,  $2  FROM t", "SELECT $1, $2 FROM t"],
      ["SELECT 'it''s'  FROM   t", "SELECT 'it''s' FROM t"],
      ["/* don't */\n  SELECT   1", "/* don't */ SELECT 1"]
    ] as const
    for (const [a, b] of same) assert.strictEqual(hashOf(a), hashOf(b), `${a} | ${b}`)
    assert.strictEqual(CacheKey.normalize("  SELECT 'a  b' ,\n \"c  d\"  "), "SELECT 'a  b' , \"c  d\"")
    assert.strictEqual(CacheKey.normalize("SELECT a -- x  y \n\t FROM t"), "SELECT a -- x y\nFROM t")
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
      const error = errorOf(CacheKey.hash(key as any))
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
    const storeId = "Store_id-1"
    const key = CacheKey.objectKey(storeId, "reports", hash, "w1")
    assert.strictEqual(key, `${storeId}/reports/${hash.slice(0, 2)}/${hash}-w1`)
    assert.deepStrictEqual(CacheKey.parseObjectKey(key), { storeId, namespace: "reports", hash, complete: true })
    assert.deepStrictEqual(CacheKey.parseObjectKey(`${key}.tmp-abc`), {
      storeId,
      namespace: "reports",
      hash,
      complete: false
    })
    assert.isUndefined(CacheKey.parseObjectKey(`${storeId}/reports/zz/notahash-w1`))
    assert.isUndefined(CacheKey.parseObjectKey(`${storeId}/reports/00/${hash}-w1`), "the shard must match the hash")
    assert.isUndefined(CacheKey.parseObjectKey(`reports/${hash.slice(0, 2)}/${hash}-w1`), "no store id")
    assert.isUndefined(CacheKey.parseObjectKey(`short/reports/${hash.slice(0, 2)}/${hash}-w1`), "too short an id")
    assert.isUndefined(CacheKey.parseObjectKey("README.txt"))
    assert.isTrue(CacheKey.isStoreId(storeId))
    assert.isFalse(CacheKey.isStoreId("a/b-cdefgh"))
  })
})
