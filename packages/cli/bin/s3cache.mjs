#!/usr/bin/env node
// The workspace's `s3cache` (pnpm s3cache): the TypeScript sources through tsx. The published package's bin is
// dist/src/bin.js (publishConfig.bin).
import { register } from "tsx/esm/api"

register()
await import("../src/bin.ts")
