import { ApiError } from './errors.js'
import { HASH_SHARE_WHEN_OVERLOADED } from './limits.js'

/**
 * Admission control in front of argon2. A hash holds a thread-pool thread and ~19 MiB
 * for tens of milliseconds; a flood of wrong passwords queued without bound would make
 * every login wait seconds and starve the pool for everything else. The gate lets
 * `concurrency` hashes run, queues at most `queueMax` more for at most `maxWaitMs`, and
 * refuses the rest at once with 503 `overloaded` and Retry-After (contract section 0).
 */
export interface HashGate {
  run<T> (work: () => Promise<T>): Promise<T>
  readonly inFlight: number
  readonly queued: number
  /** Throws what `run` would throw now if it has no slot and no room in the queue. */
  refuseIfFull (): void
  /**
   * Calls `listener` once a new caller would get a slot or find the queue at most half full
   * (at once if that is already so). Half, not one free place: a refused caller sent back for
   * one place would meet a full queue again, and all of them would come back at every release.
   */
  whenRoom (listener: () => void): void
  /** How many more callers would be admitted now, to a slot or to the queue. */
  readonly places: number
  /** The Retry-After of this gate's refusals. */
  readonly retryAfterSeconds: number
}

export interface HashGateOptions {
  concurrency: number
  queueMax: number
  maxWaitMs: number
  /** Share of a slot's time hashing may use while the gate has refused within a Retry-After (1: no rest). */
  shareWhenOverloaded?: number
}

interface Waiter { start: () => void, timer: NodeJS.Timeout }

/** The Retry-After of a refusal: by then a login queued now would have had its answer. */
export function retryAfterSeconds (maxWaitMs: number): number {
  return Math.max(1, Math.ceil(maxWaitMs / 1000))
}

function overloaded (maxWaitMs: number): ApiError {
  return new ApiError('overloaded', 'too many password checks are in progress; try again shortly', {
    retryAfter: retryAfterSeconds(maxWaitMs)
  })
}

export function createHashGate ({ concurrency, queueMax, maxWaitMs, shareWhenOverloaded = HASH_SHARE_WHEN_OVERLOADED }: HashGateOptions): HashGate {
  let inFlight = 0
  const queue: Waiter[] = []
  let roomListeners: Array<() => void> = []
  const overloadMemoryMs = retryAfterSeconds(maxWaitMs) * 1000
  let lastRefusalAt = -Infinity

  function refusal (): ApiError {
    lastRefusalAt = performance.now()
    return overloaded(maxWaitMs)
  }

  /** How long a slot rests after a hash of `hashMs`: none unless the gate has refused lately. */
  function restAfter (hashMs: number): number {
    if (shareWhenOverloaded >= 1 || performance.now() - lastRefusalAt >= overloadMemoryMs) return 0
    return hashMs * (1 / shareWhenOverloaded - 1)
  }

  const hasRoom = () => inFlight < concurrency || (queue.length < queueMax && queue.length <= Math.floor(queueMax / 2))

  function announceRoom () {
    if (roomListeners.length === 0 || !hasRoom()) return
    const listeners = roomListeners
    roomListeners = []
    for (const listener of listeners) listener()
  }

  function release () {
    const next = queue.shift()
    if (next === undefined) {
      inFlight--
    } else {
      // The slot passes straight to the next waiter: inFlight stays the same.
      clearTimeout(next.timer)
      next.start()
    }
    announceRoom()
  }

  return {
    get inFlight () { return inFlight },
    get queued () { return queue.length },
    get places () { return Math.max(0, concurrency - inFlight) + Math.max(0, queueMax - queue.length) },
    retryAfterSeconds: retryAfterSeconds(maxWaitMs),
    refuseIfFull () {
      if (inFlight >= concurrency && queue.length >= queueMax) throw refusal()
    },
    whenRoom (listener) {
      roomListeners.push(listener)
      announceRoom()
    },
    async run (work) {
      if (inFlight < concurrency) {
        inFlight++
      } else {
        if (queue.length >= queueMax) throw refusal()
        await new Promise<void>((resolve, reject) => {
          const waiter: Waiter = {
            start: resolve,
            timer: setTimeout(() => {
              const at = queue.indexOf(waiter)
              if (at >= 0) queue.splice(at, 1)
              reject(refusal())
              announceRoom()
            }, maxWaitMs)
          }
          queue.push(waiter)
        })
      }
      const started = performance.now()
      try {
        return await work()
      } finally {
        // The caller has its answer now; the slot is handed on after the rest, if any.
        const rest = restAfter(performance.now() - started)
        if (rest > 0) setTimeout(release, rest).unref()
        else release()
      }
    }
  }
}
