/**
 * What a call does when its entry is old, or its effect fails or is slow: `grace` (stale entries), `refresh`,
 * `failSafe`, `graceBackoff`, `softTimeout` and `refreshAhead`. Each is an option of the cache layer (the default of
 * every call) and of one call. See the README's "When the source or the stores fail".
 *
 * @since 0.3.0
 */
import "./internal/effectVersion.js"
import * as Duration from "effect/Duration"
import type { CacheInputError } from "./CacheError.js"
import { Either } from "./internal/effect3.js"
import * as validate from "./internal/validate.js"

/**
 * What a call does when its entry is old or its effect fails or is slow. Each is a layer option (the default of every
 * call) and an option of one call. See the README's "When the source or the stores fail".
 *
 * @since 0.3.0
 * @category models
 */
export interface Options {
  /**
   * How long an entry is kept after its `ttl`, stale: a call that finds it returns it at once and refreshes it
   * (`refresh`), and it stands in for the effect's value when the effect fails (`failSafe`) or is slow
   * (`softTimeout`). Default 0: nothing past its TTL is ever served.
   */
  readonly grace?: Duration.DurationInput | undefined
  /**
   * With a stale entry: `"background"` returns it at once and runs the effect in the background (one refresh per key
   * across processes), the new value replacing it when the effect succeeds; `"foreground"` runs the effect now and
   * returns its value, or the stale one if it fails (`failSafe`) or is slow (`softTimeout`). Default `"background"`.
   */
  readonly refresh?: "background" | "foreground" | undefined
  /**
   * Which failures of the effect (its typed error, or a defect) let a stale entry stand in for its value: a predicate
   * of the error, `true` for all, `false` for none. Default true.
   */
  readonly failSafe?: boolean | ((error: unknown) => boolean) | undefined
  /**
   * after a failure of the effect that `failSafe` covers, how long calls get the stale entry without running the
   * effect again; default 5 s
   */
  readonly graceBackoff?: Duration.DurationInput | undefined
  /**
   * With a stale entry and `refresh: "foreground"`: how long to wait for the effect before returning the stale entry;
   * the effect finishes in the background and its value is stored. Default 0 (off). A hard limit on the effect is the
   * caller's `Effect.timeout`.
   */
  readonly softTimeout?: Duration.DurationInput | undefined
  /**
   * A fraction of the TTL (between 0 and 1): a hit on an entry older than that refreshes it in the background, so a
   * key read often never goes cold. Default 0 (off).
   */
  readonly refreshAhead?: number | undefined
}

/**
 * The fail-safe options after defaults and validation.
 *
 * @since 0.3.0
 * @category models
 */
export interface Resolved {
  readonly grace: Duration.Duration
  readonly refresh: "background" | "foreground"
  readonly failSafe: boolean | ((error: unknown) => boolean)
  readonly graceBackoff: Duration.Duration
  readonly softTimeout: Duration.Duration
  readonly refreshAhead: number
}

/**
 * @since 0.3.0
 * @category constants
 */
export const defaults: Resolved = {
  grace: Duration.zero,
  refresh: "background",
  failSafe: true,
  graceBackoff: Duration.seconds(5),
  softTimeout: Duration.zero,
  refreshAhead: 0
}

/**
 * The fail-safe options of a layer or of one call, over `base` (the defaults, or the layer's): each given one checked.
 *
 * @since 0.3.0
 * @category validation
 */
export const resolve = (
  options: Options,
  base: Resolved,
  method: string
): Either.Either<Resolved, CacheInputError> =>
  Either.gen(function*() {
    const { failSafe, refresh, refreshAhead } = options
    // options read by a `*Config` layer name their variable, options in code their own name
    const name = (option: keyof Options) => validate.nameOf(validate.sourceOf(options, option))
    if (refresh !== undefined && refresh !== "background" && refresh !== "foreground") {
      return yield* Either.left(
        validate.invalid(
          method,
          `${name("refresh")} must be "background" or "foreground" (got ${JSON.stringify(refresh)})`
        )
      )
    }
    if (failSafe !== undefined && typeof failSafe !== "boolean" && typeof failSafe !== "function") {
      return yield* Either.left(
        validate.invalid(method, `${name("failSafe")} must be true, false or a predicate of the effect's error`)
      )
    }
    if (refreshAhead !== undefined && !(typeof refreshAhead === "number" && refreshAhead >= 0 && refreshAhead < 1)) {
      return yield* Either.left(validate.invalid(
        method,
        `${name("refreshAhead")} must be a fraction of the TTL, at least 0 and below 1 (got ${
          String(refreshAhead)
        }); 0 is off`
      ))
    }
    const optional = (option: "grace" | "graceBackoff" | "softTimeout") => {
      const input = options[option]
      return input === undefined
        ? Either.right(base[option])
        : validate.nonNegativeDuration(input, validate.sourceOf(options, option), method)
    }
    return {
      grace: yield* optional("grace"),
      refresh: refresh ?? base.refresh,
      failSafe: failSafe ?? base.failSafe,
      graceBackoff: yield* optional("graceBackoff"),
      softTimeout: yield* optional("softTimeout"),
      refreshAhead: refreshAhead ?? base.refreshAhead
    }
  })
