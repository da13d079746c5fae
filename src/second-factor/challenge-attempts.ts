import { Prisma, type PrismaClient } from '../generated/prisma/client.js'
import { MAX_CODE_ATTEMPTS_PER_CHALLENGE } from '../lib/limits.js'
import { challengeState } from './challenge-state.js'
import type { CodeCheck } from './method.js'

/*
 * The per-challenge half of code checking, shared by every code method (SMS, voice, TOTP):
 * a wrong code of any method spends the same five attempts of the challenge, and only one
 * right code can ever complete it. Each step is one conditional UPDATE, never read-then-write.
 */

/** What a right code completes besides the challenge: the caller's security event, written only if the challenge was completed. */
export interface OnCompleted { rows: Prisma.Sql }

/**
 * Completes the challenge if it is still open and under its attempt cap; with `codeHash`, only
 * while that is still the live code (a resend in the meantime voids it). Of N requests carrying
 * a right code, only one finds completed_at still NULL. The same statement writes `also` (the
 * login's security event, committed with the completion or not at all) and returns the masked
 * number the latest code went to, for the conversion signal: a right code costs one round trip.
 */
export async function completeChallenge (prisma: PrismaClient, challengeId: string, now: Date, codeHash?: string, also?: OnCompleted): Promise<{ deliveredTo: string | null } | null> {
  const liveCode = codeHash === undefined
    ? Prisma.empty
    : Prisma.sql`AND c.code_hash = ${codeHash} AND c.code_expires_at > ${now}::timestamptz`
  const alsoWritten = also === undefined
    ? Prisma.empty
    : Prisma.sql`, also_written AS (${also.rows} WHERE EXISTS (SELECT 1 FROM completed))`
  const rows = await prisma.$queryRaw<Array<{ delivered_to: string | null }>>`
    WITH completed AS (
      UPDATE otp_challenges AS c SET completed_at = ${now}::timestamptz
       WHERE c.id = ${challengeId} AND c.completed_at IS NULL AND c.closed_at IS NULL
         AND c.failed_attempts < ${MAX_CODE_ATTEMPTS_PER_CHALLENGE}::int AND c.expires_at > ${now}::timestamptz
         ${liveCode}
      RETURNING (SELECT d.masked FROM deliveries AS d
                  WHERE d.challenge_id = c.id AND d.kind = 'code' AND d.status <> 'failed'
                  ORDER BY d.created_at DESC LIMIT 1) AS delivered_to
    )${alsoWritten}
    SELECT delivered_to FROM completed`
  const [row] = rows
  return row === undefined ? null : { deliveredTo: row.delivered_to }
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
