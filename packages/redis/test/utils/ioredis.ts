/**
 * The major of ioredis that `import "ioredis"` resolves to in this run: 5 in the package's own vitest project, 6 in
 * the one of `vitest.ioredis6.config.ts`, which aliases `ioredis` to the devDependency `ioredis6` (as for a user who
 * installed ioredis 6 as the peer). The fixture tests check that the clients really speak that major's protocol.
 */
export const major: 5 | 6 = process.env.S3CACHE_TEST_IOREDIS === "6" ? 6 : 5

/** RESP3 is ioredis 6's default (`HELLO 3` on connect); ioredis 5 speaks RESP2 only. */
export const protocol: 2 | 3 = major === 6 ? 3 : 2
