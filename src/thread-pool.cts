// Sizes libuv's thread pool before anything uses it, and runs its threads at a lower CPU
// priority. It must be CommonJS and loaded with `node --require`: the pool is created on its
// first use, and on Node 20 the ESM loader itself reads files through it, so setting the
// variable from the (ESM) app is too late.
//
// argon2 hashes, file reads, DNS lookups and crypto all share this pool. The default of 4
// on a 2-core host lets four 19 MiB hashes compete for two cores; sizing it from the core
// count (with a floor of 4 so that DNS and file work always find a free thread next to the
// hashes the admission gate lets through) keeps hashing from queueing everything else.
// An operator's explicit UV_THREADPOOL_SIZE wins.
import { readdirSync, stat } from 'node:fs'
import { availableParallelism, setPriority } from 'node:os'

/**
 * The pool threads' nice value. Hashing is the only CPU-heavy work they do; niced, a flood of
 * passwords takes the cores only when the event loop and PostgreSQL leave them idle, so the
 * codes, health checks and everything else keep their pace (issue 6: argon2 cannot starve the rest).
 */
export const POOL_THREAD_NICE = 10

/** HASH_CONCURRENCY hashes plus headroom for the pool's other users, never below libuv's 4. */
export function threadPoolSize (cores: number): number {
  return Math.max(4, cores + 2)
}

function threadIds (): Set<string> {
  try {
    return new Set(readdirSync('/proc/self/task'))
  } catch {
    return new Set() // not Linux: no per-thread priorities to set
  }
}

/**
 * Starts the pool (libuv creates all its threads on the first job, synchronously) and lowers
 * the priority of the threads that appeared. Returns their thread ids; none when the pool was
 * already running or the system has no /proc.
 */
export function startPoolWithLowerPriority (): number[] {
  const before = threadIds()
  if (before.size === 0) return []
  stat(__filename, () => {})
  const pool = [...threadIds()].filter((tid) => !before.has(tid)).map(Number)
  for (const tid of pool) {
    try {
      setPriority(tid, POOL_THREAD_NICE)
    } catch {
      // A lower priority is an optimisation: a container that forbids it still runs.
    }
  }
  return pool
}

if (process.env.UV_THREADPOOL_SIZE === undefined || process.env.UV_THREADPOOL_SIZE === '') {
  process.env.UV_THREADPOOL_SIZE = String(threadPoolSize(availableParallelism()))
}
startPoolWithLowerPriority()
