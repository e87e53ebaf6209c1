import { defineProject, mergeConfig } from "vitest/config"
import shared from "../../vitest.shared.js"

export default mergeConfig(
  shared,
  defineProject({
    test: {
      // these files start real servers, a cluster and child processes: one file at a time keeps a 2-core machine
      // from starving the servers the fault tests time against
      fileParallelism: false
    }
  })
)
