/**
 * The core `BlobStore` conformance suite against s3rver (npm), started in a child process by the suite's layer.
 */
import { blobStoreSuite } from "@s3cache/core/test/BlobStoreSuite"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as S3BlobStore from "../src/S3BlobStore.js"
import { createBucket, s3rver, storeOptions } from "./utils/servers.js"

const bucket = "conformance"

blobStoreSuite(
  "S3BlobStore (s3rver)",
  Layer.unwrapScoped(Effect.gen(function*() {
    const server = yield* s3rver
    yield* createBucket(server, bucket)
    // attempts 3 rather than 2: s3rver's DeleteObjects deletes its keys concurrently and races itself removing
    // the folders they emptied, answering InternalError; a retry finishes the job (real S3 has no such race)
    return S3BlobStore.layer({ ...storeOptions(server, bucket), attempts: 3 })
  }))
)
