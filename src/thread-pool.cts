// Sizes libuv's thread pool before anything uses it. It must be CommonJS and loaded with
// `node --require`: the pool is created on its first use, and on Node 20 the ESM loader
// itself reads files through it, so setting the variable from the (ESM) app is too late.
//
// argon2 hashes, file reads, DNS lookups and crypto all share this pool. The default of 4
// on a 2-core host lets four 19 MiB hashes compete for two cores; sizing it from the core
// count (with a floor of 4 so that DNS and file work always find a free thread next to the
// hashes the admission gate lets through) keeps hashing from queueing everything else.
// An operator's explicit UV_THREADPOOL_SIZE wins.
import { availableParallelism } from 'node:os'

/** HASH_CONCURRENCY hashes plus headroom for the pool's other users, never below libuv's 4. */
export function threadPoolSize (cores: number): number {
  return Math.max(4, cores + 2)
}

if (process.env.UV_THREADPOOL_SIZE === undefined || process.env.UV_THREADPOOL_SIZE === '') {
  process.env.UV_THREADPOOL_SIZE = String(threadPoolSize(availableParallelism()))
}
