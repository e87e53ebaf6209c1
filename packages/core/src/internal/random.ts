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
