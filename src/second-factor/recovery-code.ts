import { randomUUID } from 'node:crypto'
import type { PrismaClient } from '../generated/prisma/client.js'
import { MAX_RECOVERY_FAILURES, RECOVERY_DOUBLE_SUBMIT_WINDOW_MS } from '../lib/limits.js'
import { canonicalRecoveryCode, generateRecoveryCode } from '../lib/recovery-codes.js'
import type { Secrets } from '../lib/secrets.js'
import type { Passwords } from '../plugins/app/passwords.js'
import type { EnrolledFactors, Method, SecondFactor } from './method.js'

export type RecoveryCheck =
  | { outcome: 'accepted' }
  /** The check was wrong; `lock` is set when it was the last one allowed. */
  | { outcome: 'wrong', attemptsRemaining: number, lock: boolean }
  /** The account is locked, or enough checks are already in flight to lock it. */
  | { outcome: 'refused', locked: boolean }
  /** The right code, but a concurrent request consumed it first. */
  | { outcome: 'already_used' }

export interface RecoveryCode extends SecondFactor {
  /** Replaces the user's code (the old one stops working) and returns the new one, in clear, once. */
  issue (userId: string): Promise<{ code: string, createdAt: Date }>
  /** `challengeCreatedAt`: when the login being answered began, to recognise a double submit that lost the race. */
  check (userId: string, input: string, challengeCreatedAt?: Date): Promise<RecoveryCheck>
  /** Whether a stored code hash (HMAC or, from before, argon2) accepts `input`; no counting. */
  matches (stored: string, input: string): Promise<boolean>
}

/**
 * Recovery codes are stored as `hmac-sha256$<hex>` under a key derived from SECRET_KEY.
 * argon2 exists to make guessing a low-entropy password from a stolen hash expensive; a
 * recovery code is 99 random bits, so no guessing is feasible at any hash speed, and a stolen
 * table without SECRET_KEY gives nothing to test guesses against. The slow hash would only
 * double the argon2 cost of a recovery login (one verify for the old code, one hash for the
 * new) and put recovery behind the password flood's admission queue. Codes stored as argon2
 * hashes before this change stay verifiable; they are replaced by HMAC ones on next issue.
 */
const HMAC_PREFIX = 'hmac-sha256$'

export function createRecoveryCode ({ prisma, passwords, secrets }: { prisma: PrismaClient, passwords: Passwords, secrets: Secrets }): RecoveryCode {
  async function matches (stored: string, input: string): Promise<boolean> {
    const code = canonicalRecoveryCode(input)
    if (stored.startsWith(HMAC_PREFIX)) return secrets.sameHash(stored.slice(HMAC_PREFIX.length), secrets.recoveryCodeHash(code))
    return await passwords.verify(stored, code)
  }

  return {
    methods: ['recovery'],
    matches,
    availableFor (factors: EnrolledFactors): Method[] {
      return factors.hasRecoveryCode ? ['recovery'] : []
    },

    async issue (userId) {
      const code = generateRecoveryCode()
      const codeHash = HMAC_PREFIX + secrets.recoveryCodeHash(canonicalRecoveryCode(code))
      const createdAt = new Date()
      // One statement, so two issues at once cannot both find no row and both insert. The new id
      // voids the old code: a check that read the old row consumes by id and finds nothing.
      await prisma.$executeRaw`
        INSERT INTO recovery_codes (id, user_id, code_hash, created_at)
        VALUES (${randomUUID()}, ${userId}, ${codeHash}, ${createdAt}::timestamptz)
        ON CONFLICT (user_id) DO UPDATE SET id = EXCLUDED.id, code_hash = EXCLUDED.code_hash, created_at = EXCLUDED.created_at`
      return { code, createdAt }
    },

    async check (userId, input, challengeCreatedAt) {
      // The attempt is counted BEFORE the hash is checked: N simultaneous guesses can
      // reserve at most MAX_RECOVERY_FAILURES checks between them, never more.
      // Read before reserving: a concurrent winner that consumes the code meanwhile is then
      // seen as `already_used` below instead of as a wrong guess.
      const stored = await prisma.recoveryCode.findUnique({ where: { userId } })
      const reserved = await prisma.$queryRaw<Array<{ recovery_failures: number }>>`
        UPDATE users SET recovery_failures = recovery_failures + 1
         WHERE id = ${userId} AND locked_at IS NULL AND recovery_failures < ${MAX_RECOVERY_FAILURES}::int
        RETURNING recovery_failures`
      const attempt = reserved[0]?.recovery_failures
      if (attempt === undefined) {
        const user = await prisma.user.findUnique({ where: { id: userId }, select: { lockedAt: true } })
        return { outcome: 'refused', locked: user?.lockedAt != null }
      }
      const right = stored !== null && await matches(stored.codeHash, input)
      if (!right || stored === null) {
        // The winner of a double submit deletes the code and issues a new one: a loser that
        // read after that sees only the new code. A code issued during this login, moments
        // ago, means the input was most likely that consumed code: not a guess, refund it.
        // No code at all when read means a concurrent winner was between consuming the old
        // code and issuing the new one (or none was ever issued): nothing to guess, no count.
        const current = stored ?? await prisma.recoveryCode.findUnique({ where: { userId } })
        if (stored === null || (challengeCreatedAt !== undefined && current !== null && current.createdAt > challengeCreatedAt &&
            Date.now() - current.createdAt.getTime() < RECOVERY_DOUBLE_SUBMIT_WINDOW_MS)) {
          await prisma.$executeRaw`UPDATE users SET recovery_failures = GREATEST(recovery_failures - 1, 0) WHERE id = ${userId}`
          return { outcome: 'already_used' }
        }
        return { outcome: 'wrong', attemptsRemaining: MAX_RECOVERY_FAILURES - attempt, lock: attempt >= MAX_RECOVERY_FAILURES }
      }
      const { count } = await prisma.recoveryCode.deleteMany({ where: { id: stored.id } })
      if (count === 0) {
        // A double submit is not a guess: give the reserved attempt back.
        await prisma.$executeRaw`UPDATE users SET recovery_failures = GREATEST(recovery_failures - 1, 0) WHERE id = ${userId}`
        return { outcome: 'already_used' }
      }
      await prisma.user.update({ where: { id: userId }, data: { recoveryFailures: 0 } })
      return { outcome: 'accepted' }
    }
  }
}
