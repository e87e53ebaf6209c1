/**
 * @since 0.2.0
 */
export * as Cli from "./Cli.js"
