import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    // @s3cache/redis runs twice: with `ioredis` resolved to 5 (its own config) and to 6
    projects: ["packages/*", "packages/redis/vitest.ioredis6.config.ts"],
    // in CI, a JSON report as well, from which .ci/run prints the "N passed, N failed" line
    reporters: process.env.CI ? ["default", ["json", { outputFile: ".ci/test-results.json" }]] : ["default"],
    coverage: {
      provider: "v8",
      include: ["packages/*/src/**/*.ts"],
      // the demo is a program, run by `pnpm demo`, not library code
      exclude: ["packages/demo/**"],
      reporter: ["text-summary", "text"]
    }
  }
})
