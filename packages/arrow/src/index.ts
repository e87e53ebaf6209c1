/**
 * @since 0.1.0
 */

/**
 * Arrow tables in s3cache: the `arrow` codec (Arrow IPC stream, compressed like every payload) and the serializer
 * layer that adds it.
 *
 * @since 0.1.0
 */
export * as ArrowCodec from "./ArrowCodec.js"
