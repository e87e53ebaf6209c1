/**
 * Random identifiers: lock tokens, write ids, store ids.
 *
 * @since 0.1.0
 */
import * as crypto from "node:crypto"

/**
 * 96 random bits, base64url (16 characters of `[A-Za-z0-9_-]`): valid in object keys and Redis values alike.
 *
 * @internal
 */
export const randomId = (): string => crypto.randomBytes(12).toString("base64url")

// 96 random bits drawn once per process, then a counter: unique across processes like `randomId`, at the cost of an
// increment. Every lookup carries a token (the lookup takes the lock when the entry is missing), so a hit pays it too.
const processPrefix = randomId()
let counter = 0

/**
 * A token no other lock holder has: this process's random prefix and a counter (base 36). Not secret: a token only
 * tells holders apart.
 *
 * @internal
 */
export const uniqueId = (): string => `${processPrefix}${(counter++).toString(36)}`
