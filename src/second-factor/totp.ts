import { randomUUID } from 'node:crypto'
import { Secret, TOTP } from 'otpauth'
import type { OtpChallenge, PrismaClient } from '../generated/prisma/client.js'
import { MAX_CODE_ATTEMPTS_PER_CHALLENGE, TOTP_DIGITS, TOTP_ENROLLMENT_TTL_MS, TOTP_PERIOD_SECONDS, TOTP_SECRET_BYTES, TOTP_WINDOW_STEPS } from '../lib/limits.js'
import type { Secrets } from '../lib/secrets.js'
import { completeChallenge, countWrongCode, stateAfterRace, type OnCompleted } from './challenge-attempts.js'
import { challengeState } from './challenge-state.js'
import type { Tx } from './factor-rules.js'
import type { CodeCheck, EnrolledFactors, Method, SecondFactor } from './method.js'

/** The name authenticator apps show above the account email. */
export const TOTP_ISSUER = 'Studio Pro'

const PARAMS = { algorithm: 'SHA1', digits: TOTP_DIGITS, period: TOTP_PERIOD_SECONDS } as const
const CODE = new RegExp(`^[0-9]{${TOTP_DIGITS}}$`)

export type TotpCheck = CodeCheck | { outcome: 'unavailable' }

export type ConfirmResult =
  | { outcome: 'confirmed', enabledAt: Date, replaced: boolean }
  | { outcome: 'wrong', attemptsRemaining: number }
  | { outcome: 'not_found' }
  | { outcome: 'expired' }

export interface PendingEnrolment { enrollmentId: string, secret: string, expiresAt: Date }

export interface Totp extends SecondFactor {
  /** otpauth:// URI for the apps (Key Uri Format): issuer and account label, SHA-1, 6 digits, 30 s. */
  uri (secret: string, accountEmail: string): string
  /** The RFC 6238 time step `code` belongs to under `secret`, within ±TOTP_WINDOW_STEPS of `atMs`; null if none. No counting. */
  matchStep (secret: string, code: string, atMs?: number): number | null
  /** Starts (or replaces) the user's pending enrolment; a confirmed secret stays in force until the new one is confirmed. */
  startEnrolment (userId: string): Promise<PendingEnrolment>
  /** Confirms a pending enrolment with its first code, which is then spent (its step is recorded). */
  confirm (userId: string, input: { enrollmentId: string, code: string }, db?: Tx): Promise<ConfirmResult>
  /** Checks a login code; of N requests carrying one right code, one is accepted. */
  check (challenge: OtpChallenge, code: string, onCompleted?: OnCompleted): Promise<TotpCheck>
  enabledFor (userId: string): Promise<boolean>
}

export interface TotpDeps {
  prisma: PrismaClient
  secrets: Secrets
  /** Milliseconds since the epoch: a test moves the clock to prove the ±1 step window. */
  now?: () => number
}

/** Authenticator apps (RFC 6238). Secrets live only encrypted; single use is the database's `last_step < $step`. */
export function createTotp ({ prisma, secrets, now = Date.now }: TotpDeps): Totp {
  function matchStep (secret: string, code: string, atMs = now()): number | null {
    if (!CODE.test(code)) return null
    const key = Secret.fromBase32(secret)
    const delta = TOTP.validate({ ...PARAMS, secret: key, token: code, timestamp: atMs, window: TOTP_WINDOW_STEPS })
    if (delta === null) return null
    return TOTP.counter({ period: PARAMS.period, timestamp: atMs }) + delta
  }

  return {
    methods: ['totp'],
    availableFor (factors: EnrolledFactors): Method[] {
      return factors.totpEnabled ? ['totp'] : []
    },
    matchStep,

    uri (secret, accountEmail) {
      return new TOTP({ ...PARAMS, issuer: TOTP_ISSUER, label: accountEmail, secret: Secret.fromBase32(secret) }).toString()
    },

    async enabledFor (userId) {
      const row = await prisma.totpFactor.findUnique({ where: { userId }, select: { enabledAt: true } })
      return row?.enabledAt != null
    },

    async startEnrolment (userId) {
      // otpauth draws the bytes from node:crypto's randomBytes.
      const secret = new Secret({ size: TOTP_SECRET_BYTES }).base32
      const enrollmentId = randomUUID()
      const expiresAt = new Date(now() + TOTP_ENROLLMENT_TTL_MS)
      // One statement: a second enrolment replaces the pending one (its id stops working), and
      // two at once cannot both insert. The confirmed secret, if any, is left alone.
      await prisma.$executeRaw`
        INSERT INTO totp_factors (user_id, pending_id, pending_secret_cipher, pending_expires_at, pending_failed_attempts)
        VALUES (${userId}, ${enrollmentId}, ${secrets.encrypt(secret)}, ${expiresAt}::timestamptz, 0)
        ON CONFLICT (user_id) DO UPDATE SET
          pending_id = EXCLUDED.pending_id,
          pending_secret_cipher = EXCLUDED.pending_secret_cipher,
          pending_expires_at = EXCLUDED.pending_expires_at,
          pending_failed_attempts = 0`
      return { enrollmentId, secret, expiresAt }
    },

    async confirm (userId, input, db = prisma) {
      const at = now()
      const row = await db.totpFactor.findFirst({ where: { userId, pendingId: input.enrollmentId } })
      if (row === null || row.pendingSecretCipher === null || row.pendingExpiresAt === null) return { outcome: 'not_found' }
      if (row.pendingExpiresAt.getTime() <= at) return { outcome: 'expired' }
      const step = matchStep(secrets.decrypt(row.pendingSecretCipher), input.code, at)
      if (step === null) {
        // Counted in the database; the last allowed wrong code ends the enrolment (it expires
        // now), so a secret is never guessed one code at a time, however many requests race.
        const counted = await db.$queryRaw<Array<{ pending_failed_attempts: number }>>`
          UPDATE totp_factors
             SET pending_failed_attempts = pending_failed_attempts + 1,
                 pending_expires_at = CASE WHEN pending_failed_attempts + 1 >= ${MAX_CODE_ATTEMPTS_PER_CHALLENGE}::int
                                           THEN ${new Date(at)}::timestamptz ELSE pending_expires_at END
           WHERE user_id = ${userId} AND pending_id = ${input.enrollmentId}
             AND pending_expires_at > ${new Date(at)}::timestamptz
          RETURNING pending_failed_attempts`
        const failed = counted[0]?.pending_failed_attempts
        if (failed === undefined) return { outcome: 'expired' }
        return { outcome: 'wrong', attemptsRemaining: Math.max(0, MAX_CODE_ATTEMPTS_PER_CHALLENGE - failed) }
      }
      const enabledAt = new Date(at)
      // The pending secret becomes the secret in the same statement that checks it is still
      // this enrolment's: of two confirmations at once, or a confirmation racing a new
      // enrolment, only one takes effect. The confirming code's step is spent.
      const rows = await db.$queryRaw<Array<{ previous_enabled_at: Date | null }>>`
        UPDATE totp_factors AS t
           SET secret_cipher = t.pending_secret_cipher,
               enabled_at = ${enabledAt}::timestamptz,
               last_step = ${BigInt(step)}::bigint,
               pending_id = NULL, pending_secret_cipher = NULL, pending_expires_at = NULL
          FROM totp_factors AS before
         WHERE t.user_id = ${userId} AND before.user_id = t.user_id
           AND t.pending_id = ${input.enrollmentId}
           AND t.pending_secret_cipher = ${row.pendingSecretCipher}
           AND t.pending_expires_at > ${enabledAt}::timestamptz
        RETURNING before.enabled_at AS previous_enabled_at`
      const [confirmed] = rows
      if (confirmed === undefined) return { outcome: 'expired' }
      return { outcome: 'confirmed', enabledAt, replaced: confirmed.previous_enabled_at !== null }
    },

    async check (challenge, code, onCompleted) {
      const at = now()
      const atDate = new Date(at)
      const state = challengeState(challenge, atDate)
      if (state === 'expired') return { outcome: 'expired' }
      if (state !== 'open') return { outcome: 'closed' }
      const factor = await prisma.totpFactor.findUnique({ where: { userId: challenge.userId }, select: { secretCipher: true, enabledAt: true } })
      if (factor?.secretCipher == null || factor.enabledAt === null) return { outcome: 'unavailable' }
      const step = matchStep(secrets.decrypt(factor.secretCipher), code, at)
      if (step !== null) {
        // Single use, decided by the database alone: the step is taken only if no code of this
        // step or a later one was accepted before, and only while the secret that matched is
        // still the user's. A replayed code finds nothing to update and counts as wrong.
        const claimed = await prisma.$queryRaw<Array<{ user_id: string }>>`
          UPDATE totp_factors SET last_step = ${BigInt(step)}::bigint
           WHERE user_id = ${challenge.userId} AND enabled_at IS NOT NULL AND secret_cipher = ${factor.secretCipher}
             AND (last_step IS NULL OR last_step < ${BigInt(step)}::bigint)
          RETURNING user_id`
        if (claimed.length === 1) {
          // The step is spent even if the challenge was closed meanwhile: a code is never good twice.
          if (await completeChallenge(prisma, challenge.id, atDate, undefined, onCompleted) !== null) return { outcome: 'accepted' }
          const over = await stateAfterRace(prisma, challenge.id, atDate)
          if (over !== null) return over
        }
      }
      return await countWrongCode(prisma, challenge.id, atDate)
    }
  }
}
