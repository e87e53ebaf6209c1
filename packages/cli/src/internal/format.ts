/**
 * How the commands print: numbers a human reads at a glance, tables in plain columns, and JSON for scripts.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"

/** `1.5 MiB`, `512 B` */
export const bytes = (n: number): string => {
  if (n < 1024) return `${n} B`
  const units = ["KiB", "MiB", "GiB", "TiB"]
  let value = n / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`
}

/** `2 h 5 min`, `45 s`, `120 ms`; a negative span is `-` and its length */
export const span = (ms: number): string => {
  if (ms < 0) return `-${span(-ms)}`
  if (ms < 1000) return `${Math.round(ms)} ms`
  const s = Math.floor(ms / 1000)
  if (s < 60) return `${s} s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min${s % 60 === 0 ? "" : ` ${s % 60} s`}`
  const h = Math.floor(m / 60)
  if (h < 48) return `${h} h${m % 60 === 0 ? "" : ` ${m % 60} min`}`
  return `${Math.floor(h / 24)} d${h % 24 === 0 ? "" : ` ${h % 24} h`}`
}

/** An epoch-ms time in ISO 8601 (UTC) */
export const time = (ms: number): string => new Date(ms).toISOString()

/** Rows in left-aligned columns, two spaces apart; the first row is the header. */
export const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths: Array<number> = []
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)))
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  "))
    .join("\n")
}

/** The result of a command: JSON on stdout for `--json`, else the text. */
export const output = (json: boolean, value: unknown, text: () => string): Effect.Effect<void> =>
  json ? Console.log(JSON.stringify(value, null, 2)) : Console.log(text())

/** Make the process exit with 1 once the command is done (a problem found, not an error of the command). */
export const exitWithProblem: Effect.Effect<void> = Effect.sync(() => {
  process.exitCode = 1
})
