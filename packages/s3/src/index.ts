/**
 * @since 0.1.0
 */

/**
 * The S3 `BlobStore` of s3cache.
 *
 * @since 0.1.0
 */
export * as S3BlobStore from "./S3BlobStore.js"
