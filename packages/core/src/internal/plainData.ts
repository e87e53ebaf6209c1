/**
 * What v8's structured clone gives back with the same type: the plain-data check behind the `v8` format.
 *
 * v8 keeps no prototypes: a class instance comes back as a plain object that the type system still calls an instance,
 * and fails far from the cache (`p.norm is not a function`). `foreignObject` finds the first object in a value whose
 * prototype v8 would not give back; `pathTo`, `describeForeign` and `plainCounterpart` say where it is, what it is and
 * what it would have become, for the error message.
 *
 * @since 0.1.0
 */

/** How far the walk looks inside an object whose prototype v8 keeps. */
type Shape = "record" | "array" | "map" | "set" | "error" | "opaque"

// v8 gives these back with the same prototype. The shape is where v8 finds further objects in them: a record's own
// keys, an array's elements, a map's keys and values, a set's members, an error's `cause`; an opaque one holds only
// bytes or a primitive. (v8 also writes an array's non-index properties; listing them would cost an array of every
// index on every array, for values nobody puts there.)
const shapes: ReadonlyMap<object | null, Shape> = new Map<object | null, Shape>([
  [Object.prototype, "record"],
  [null, "record"],
  [Array.prototype, "array"],
  [Map.prototype, "map"],
  [Set.prototype, "set"],
  ...[Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError].map((
    constructor
  ): [object, Shape] => [constructor.prototype, "error"]),
  ...[
    Date,
    RegExp,
    ArrayBuffer,
    DataView,
    Uint8Array,
    Int8Array,
    Uint8ClampedArray,
    Int16Array,
    Uint16Array,
    Int32Array,
    Uint32Array,
    Float32Array,
    Float64Array,
    BigInt64Array,
    BigUint64Array,
    // Node's serializer writes a Buffer as a Buffer (any other Uint8Array subclass comes back a Uint8Array)
    Buffer,
    Number,
    String,
    Boolean,
    BigInt
  ].map((constructor): [object, Shape] => [constructor.prototype, "opaque"])
])

/**
 * The first object in `root` that v8 would give back with another prototype, if any.
 *
 * Runs on every miss, so it stays lean: nothing allocated per primitive, no path built (`pathTo` finds it on
 * failure), an explicit stack so a deep value cannot overflow the call stack. Only objects that hold objects are
 * remembered as seen, which is all a cycle needs: adding every row of a large array to a set would cost more than
 * the rest of the walk (an identity hash per object), and a row of primitives walked twice costs next to nothing.
 *
 * @internal
 */
export const foreignObject = (root: unknown): object | undefined => {
  if (typeof root !== "object" || root === null) return undefined
  const seen = new Set<object>()
  const stack: Array<object> = [root]
  let current: object | undefined
  let holdsObjects = false
  // `for in` walks a record without the array `Object.keys` allocates (a third of the walk over many small rows),
  // and lists the same keys as long as nobody gave Object.prototype an enumerable property (v8 writes own keys only)
  const ownKeysOnly = !hasEnumerableKeys(Object.prototype)
  const push = (child: unknown): void => {
    if (typeof child === "object" && child !== null && !seen.has(child)) {
      if (!holdsObjects) {
        // marked before its children are pushed, so that a child leading back to it stops there
        holdsObjects = true
        seen.add(current!)
        if (child === current) return
      }
      stack.push(child)
    }
  }
  while ((current = stack.pop()) !== undefined) {
    // pushed twice before it was walked (two references to it)
    if (seen.has(current)) continue
    holdsObjects = false
    switch (shapes.get(Object.getPrototypeOf(current))) {
      case undefined:
        return current
      case "record": {
        const record = current as Record<string, unknown>
        if (ownKeysOnly) {
          for (const key in record) push(record[key])
        } else {
          const keys = Object.keys(record)
          for (let i = 0; i < keys.length; i++) push(record[keys[i]!])
        }
        break
      }
      case "array": {
        const array = current as ReadonlyArray<unknown>
        for (let i = 0; i < array.length; i++) push(array[i])
        break
      }
      case "map": {
        ;(current as ReadonlyMap<unknown, unknown>).forEach((value, key) => {
          push(key)
          push(value)
        })
        break
      }
      case "set": {
        for (const member of current as ReadonlySet<unknown>) push(member)
        break
      }
      case "error": {
        push((current as { readonly cause?: unknown }).cause)
        break
      }
    }
  }
  return undefined
}

const hasEnumerableKeys = (object: object): boolean => {
  for (const _ in object) return true
  return false
}

const identifier = /^[A-Za-z_$][\w$]*$/

const renderKey = (key: unknown): string | undefined => {
  switch (typeof key) {
    case "string":
      return key.length <= 40 ? JSON.stringify(key) : undefined
    case "number":
    case "boolean":
      return String(key)
    case "bigint":
      return `${key}n`
    default:
      return undefined
  }
}

/**
 * Where `target` is in `root`, as a human would find it (`value.rows[3].owner`, `value.byId.get("u1")`). Only on
 * failure: breadth first, so the shortest path is named, with parent links rather than a string per object visited.
 */
/** @internal */
export const pathTo = (root: unknown, target: object): string => {
  const objects: Array<unknown> = [root]
  const parents: Array<number> = [-1]
  const segments: Array<string> = ["value"]
  const seen = new Set<unknown>([root])
  const visit = (child: unknown, parent: number, segment: () => string): void => {
    if (typeof child === "object" && child !== null && !seen.has(child)) {
      seen.add(child)
      objects.push(child)
      parents.push(parent)
      segments.push(segment())
    }
  }
  let found = -1
  for (let at = 0; at < objects.length; at++) {
    const current = objects[at] as object
    if (current === target) {
      found = at
      break
    }
    switch (shapes.get(Object.getPrototypeOf(current))) {
      case "record": {
        for (const key of Object.keys(current)) {
          visit(
            (current as Record<string, unknown>)[key],
            at,
            () => identifier.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`
          )
        }
        break
      }
      case "array": {
        const array = current as ReadonlyArray<unknown>
        for (let i = 0; i < array.length; i++) visit(array[i], at, () => `[${i}]`)
        break
      }
      case "map": {
        let i = 0
        for (const [key, value] of current as ReadonlyMap<unknown, unknown>) {
          const n = i++
          visit(key, at, () => ` <Map key #${n}>`)
          visit(value, at, () => {
            const rendered = renderKey(key)
            return rendered === undefined ? ` <Map value #${n}>` : `.get(${rendered})`
          })
        }
        break
      }
      case "set": {
        let i = 0
        for (const member of current as ReadonlySet<unknown>) {
          const n = i++
          visit(member, at, () => ` <Set member #${n}>`)
        }
        break
      }
      case "error": {
        visit((current as { readonly cause?: unknown }).cause, at, () => ".cause")
        break
      }
    }
  }
  if (found === -1) return "a part of the value"
  const path: Array<string> = []
  for (let at = found; at !== -1; at = parents[at]!) path.push(segments[at]!)
  path.reverse()
  // a long chain (a linked list) would make a message of megabytes: its ends are enough to find it
  return path.length <= 16
    ? path.join("")
    : `${path.slice(0, 8).join("")}…(${path.length - 16} more)…${path.slice(-8).join("")}`
}

const constructorOf = (prototype: object | null): { readonly name: string } | undefined => {
  if (prototype === null) return undefined
  try {
    const constructor: unknown = (prototype as { readonly constructor?: unknown }).constructor
    return typeof constructor === "function" && constructor.prototype === prototype ? constructor : undefined
  } catch {
    // a throwing getter on the prototype: the object is described without its class name
    return undefined
  }
}

/** @internal */
export const describeForeign = (object: object): string => {
  const constructor = constructorOf(Object.getPrototypeOf(object))
  if (constructor === undefined) {
    return "an object whose prototype is not Object.prototype, set with Object.create or Object.setPrototypeOf"
  }
  if (constructor.name === "") return "an instance of an anonymous class"
  if (constructor.name === "Object" || constructor.name === "Array") {
    return `an ${constructor.name} of another realm (node:vm, a test environment)`
  }
  return `an instance of ${constructor.name}`
}

/** What v8 would give back instead: the nearest prototype up the chain that it keeps. */
/** @internal */
export const plainCounterpart = (object: object): string => {
  for (
    let prototype = Object.getPrototypeOf(object);
    prototype !== null;
    prototype = Object.getPrototypeOf(prototype)
  ) {
    const shape = shapes.get(prototype)
    if (shape === undefined) continue
    if (shape === "record") break
    const name = constructorOf(prototype)?.name ?? "object"
    // "a Uint8Array", "a URIError", "an Error"
    return `${/^[AEIO]/.test(name) ? "an" : "a"} ${name}`
  }
  return "a plain object"
}
