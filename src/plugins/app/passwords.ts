import fp from 'fastify-plugin'
import argon2 from 'argon2'
import { createRequire } from 'node:module'
import { ApiError } from '../../lib/errors.js'
import { createHashGate, type HashGate } from '../../lib/hash-gate.js'
import { HASH_CONCURRENCY, HASH_MAX_WAIT_MS, HASH_QUEUE_MAX, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../../lib/limits.js'

export interface Argon2Cost { memoryCost: number, timeCost: number, parallelism: number }

export interface Passwords {
  hash (secret: string): Promise<string>
  verify (hash: string, secret: string): Promise<boolean>
  /** Spends the same time as a real verify, for unknown emails (contract section 3). */
  verifyDummy (secret: string): Promise<void>
  /**
   * Throws overloaded at once while the gate is full, so that a flood is refused before it
   * costs the database anything (one password check would be refused at the gate anyway).
   */
  refuseIfFull (): void
  /** Calls `listener` once a password check would be admitted again (HashGate.whenRoom). */
  whenRoom (listener: () => void): void
  /** How many more password checks would be admitted now (HashGate.places). */
  readonly places: number
  /** Seconds a refused caller is told to wait (its Retry-After). */
  readonly retryAfterSeconds: number
  /** Throws weak_password for a password the contract refuses. */
  assertStrong (password: string, email: string): void
}

// zxcvbn-ts's list of the most common leaked passwords; a Set makes each check one lookup.
// Decompressing it took ~70 ms of every start (issue 6) though only new passwords need it:
// it is loaded at the first check (synchronously: assertStrong is synchronous).
let commonPasswords: Set<string> | undefined
function isCommonPassword (password: string): boolean {
  if (commonPasswords === undefined) {
    const { dictionary } = createRequire(import.meta.url)('@zxcvbn-ts/language-common') as typeof import('@zxcvbn-ts/language-common')
    commonPasswords = new Set(dictionary['passwords-common'] as string[])
  }
  return commonPasswords.has(password)
}

const DEFAULT_GATE = { concurrency: HASH_CONCURRENCY, queueMax: HASH_QUEUE_MAX, maxWaitMs: HASH_MAX_WAIT_MS }

/** Every argon2 call goes through `gate`: past its queue a caller gets 503 overloaded at once. */
export function createPasswords (cost: Argon2Cost, gate: HashGate = createHashGate(DEFAULT_GATE)): Passwords {
  const options: argon2.HashOptions & { raw?: false } = { type: argon2.argon2id, ...cost }
  let dummyHash: Promise<string> | undefined

  return {
    hash: async (secret) => await gate.run(async () => await argon2.hash(secret, options)),
    async verify (hash, secret) {
      return await gate.run(async () => {
        try {
          return await argon2.verify(hash, secret)
        } catch {
          return false
        }
      })
    },
    async verifyDummy (secret) {
      // The dummy hash is made outside the gate (once, at start-up), the verify inside it.
      dummyHash ??= argon2.hash('dummy password for unknown emails', options)
      const hash = await dummyHash
      await gate.run(async () => await argon2.verify(hash, secret).catch(() => false))
    },
    refuseIfFull: () => { gate.refuseIfFull() },
    whenRoom: (listener) => { gate.whenRoom(listener) },
    get places () { return gate.places },
    retryAfterSeconds: gate.retryAfterSeconds,
    assertStrong (password, email) {
      if (password.length < PASSWORD_MIN_LENGTH || password.length > PASSWORD_MAX_LENGTH) {
        throw new ApiError('weak_password', `password must be ${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters`)
      }
      if (isCommonPassword(password.toLowerCase())) {
        throw new ApiError('weak_password', 'password is on the list of common passwords')
      }
      if (password.trim().toLowerCase() === email.trim().toLowerCase()) {
        throw new ApiError('weak_password', 'password must not be the email address')
      }
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance { passwords: Passwords }
}

export default fp(async (fastify) => {
  const passwords = createPasswords({
    memoryCost: fastify.config.ARGON2_MEMORY_COST,
    timeCost: fastify.config.ARGON2_TIME_COST,
    parallelism: fastify.config.ARGON2_PARALLELISM
  }, createHashGate({
    concurrency: fastify.config.HASH_CONCURRENCY,
    queueMax: fastify.config.HASH_QUEUE_MAX,
    maxWaitMs: fastify.config.HASH_MAX_WAIT_MS
  }))
  // Hash the dummy once before traffic, so the first unknown email costs what the others do.
  // The hashing runs on the thread pool while the rest of the app loads (it was the longest
  // wait of the start, issue 6); ready, and so listening, still waits for it.
  const warmUp = passwords.verifyDummy('warm-up')
  warmUp.catch(() => {})
  fastify.addHook('onReady', async () => { await warmUp })
  fastify.decorate('passwords', passwords)
}, { name: 'passwords', dependencies: ['config'] })
