/**
 * @since 0.1.0
 */
import "./internal/effectVersion.js"

/**
 * The public entry point: `Cache.cached`, `Cache.wrap`, invalidation, stats, layers.
 *
 * @since 0.1.0
 */
export * as Cache from "./Cache.js"

/**
 * @since 0.1.0
 */
export * as CacheConfig from "./CacheConfig.js"

/**
 * @since 0.2.0
 */
export * as CacheVariables from "./CacheVariables.js"

/**
 * @since 0.1.0
 */
export * as CacheError from "./CacheError.js"

/**
 * The fail-safe options: grace, refresh, failSafe, graceBackoff, softTimeout, refreshAhead.
 *
 * @since 0.3.0
 */
export * as CacheFailSafe from "./CacheFailSafe.js"

/**
 * @since 0.1.0
 */
export * as CacheKey from "./CacheKey.js"

/**
 * @since 0.1.0
 */
export * as CacheMetrics from "./CacheMetrics.js"

/**
 * @since 0.1.0
 */
export * as BlobStore from "./BlobStore.js"

/**
 * @since 0.1.0
 */
export * as MetadataStore from "./MetadataStore.js"

/**
 * @since 0.1.0
 */
export * as Serializer from "./Serializer.js"

/**
 * @since 0.2.0
 */
export * as CacheTracing from "./CacheTracing.js"

/**
 * @since 0.2.0
 */
export * as StoreDeadline from "./StoreDeadline.js"

/**
 * @since 0.2.0
 */
export * as CacheBus from "./CacheBus.js"

/**
 * The cache for code outside Effect: async functions in, Promises out, on one long-lived runtime.
 *
 * @since 0.2.0
 */
export * as CacheClient from "./CacheClient.js"
