import * as path from "node:path"
import { configDefaults, defineProject, mergeConfig } from "vitest/config"
import base from "./vitest.config.js"

/**
 * The package's tests once more with `ioredis` resolved to ioredis 6 (the devDependency `ioredis6`), as for a user who
 * installed ioredis 6 as the peer: the clients the store creates, the tests' own clients and the fixtures are all of
 * major 6 and speak RESP3.
 */
export default mergeConfig(
  base,
  defineProject({
    resolve: {
      alias: [{ find: /^ioredis$/, replacement: path.join(__dirname, "node_modules/ioredis6") }]
    },
    test: {
      name: "@s3cache/redis (ioredis 6)",
      env: { S3CACHE_TEST_IOREDIS: "6" },
      exclude: [
        ...configDefaults.exclude,
        // its workers run outside vitest, where `ioredis` is 5
        "test/CrossProcess.test.ts",
        // imports both majors by their own names
        "test/IoredisMajors.test.ts"
      ],
      // after the other projects, not beside them: the fault tests time calls on a 2-core machine
      sequence: { groupOrder: 1 }
    }
  })
)
