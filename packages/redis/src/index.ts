/**
 * @since 0.1.0
 */

/**
 * The Redis metadata store: `RedisMetadataStore.layer(options)`, `RedisMetadataStore.layerConfig()`.
 *
 * @since 0.1.0
 */
export * as RedisMetadataStore from "./RedisMetadataStore.js"
