import type { Prisma, PrismaClient } from '../generated/prisma/client.js'
import { MAX_CODE_ATTEMPTS_PER_CHALLENGE } from '../lib/limits.js'
import { challengeState } from './challenge-state.js'
import type { CodeCheck } from './method.js'

/*
 * The per-challenge half of code checking, shared by every code method (SMS, voice, TOTP):
 * a wrong code of any method spends the same five attempts of the challenge, and only one
 * right code can ever complete it. Each step is one conditional UPDATE, never read-then-write.
 */

/**
 * Completes the challenge if it is still open and under its attempt cap. `extra` adds the
 * method's own conditions (the SMS code must still be the one that was checked).
 * Of N requests carrying a right code, only one finds completed_at still NULL.
 */
export async function completeChallenge (prisma: PrismaClient, challengeId: string, now: Date, extra: Prisma.OtpChallengeWhereInput = {}): Promise<boolean> {
  const { count } = await prisma.otpChallenge.updateMany({
    where: {
      ...extra,
      id: challengeId,
      completedAt: null,
      closedAt: null,
      failedAttempts: { lt: MAX_CODE_ATTEMPTS_PER_CHALLENGE },
      expiresAt: { gt: now }
    },
    data: { completedAt: now }
  })
  return count === 1
}

/** After a lost race to complete: whether the challenge is over (then say so) or still open (then the code counts as wrong). */
export async function stateAfterRace (prisma: PrismaClient, challengeId: string, now: Date): Promise<CodeCheck | null> {
  const fresh = await prisma.otpChallenge.findUniqueOrThrow({ where: { id: challengeId } })
  const state = challengeState(fresh, now)
  if (state === 'expired') return { outcome: 'expired' }
  if (state !== 'open') return { outcome: 'closed' }
  return null
}

/** Spends one attempt of the challenge; the last one closes it (contract section 3: 5 wrong codes, then `challenge_closed`). */
export async function countWrongCode (prisma: PrismaClient, challengeId: string, now: Date): Promise<CodeCheck> {
  const rows = await prisma.$queryRaw<Array<{ failed_attempts: number }>>`
    UPDATE otp_challenges
       SET failed_attempts = failed_attempts + 1,
           closed_at = CASE WHEN failed_attempts + 1 >= ${MAX_CODE_ATTEMPTS_PER_CHALLENGE}::int THEN ${now}::timestamptz ELSE NULL END,
           closed_reason = CASE WHEN failed_attempts + 1 >= ${MAX_CODE_ATTEMPTS_PER_CHALLENGE}::int THEN 'too_many_attempts' ELSE NULL END
     WHERE id = ${challengeId} AND completed_at IS NULL AND closed_at IS NULL
       AND failed_attempts < ${MAX_CODE_ATTEMPTS_PER_CHALLENGE}::int
    RETURNING failed_attempts`
  const failed = rows[0]?.failed_attempts
  if (failed === undefined) return { outcome: 'closed' }
  return { outcome: 'wrong', attemptsRemaining: MAX_CODE_ATTEMPTS_PER_CHALLENGE - failed }
}
