import { randomInt } from 'node:crypto'
import type { OtpChallenge, PrismaClient } from '../generated/prisma/client.js'
import { MAX_CODE_ATTEMPTS_PER_CHALLENGE, MAX_SENDS_PER_CHALLENGE, OTP_DIGITS, OTP_TTL_MS } from '../lib/limits.js'
import type { Secrets } from '../lib/secrets.js'
import type { Notifier } from '../plugins/app/notifier.js'
import type { Channel } from '../senders/message-sender.js'
import { challengeState, type ChallengeState } from './challenge-state.js'
import type { CodeCheck, EnrolledFactors, Method, SecondFactor } from './method.js'

export type SendResult =
  | { sent: true, resendAvailableAt: Date }
  | { sent: false, reason: 'too_soon', retryAfterSeconds: number }
  | { sent: false, reason: 'limit' }
  | { sent: false, reason: Exclude<ChallengeState, 'open'> }

export interface SendTarget { id: string | null, numberCipher: string, masked: string }

export interface PhoneCode extends SecondFactor {
  send (challengeId: string, userId: string, channel: Channel, target: SendTarget): Promise<SendResult>
  check (challenge: OtpChallenge, code: string): Promise<CodeCheck>
}

export interface PhoneCodeDeps {
  prisma: PrismaClient
  secrets: Secrets
  notifier: Notifier
  resendCooldownMs: number
}

function newCode (): string {
  return randomInt(0, 10 ** OTP_DIGITS).toString().padStart(OTP_DIGITS, '0')
}

/** Six-digit codes by SMS or voice call: sent, resent, checked, each step decided by one conditional UPDATE. */
export function createPhoneCode ({ prisma, secrets, notifier, resendCooldownMs }: PhoneCodeDeps): PhoneCode {
  return {
    methods: ['sms', 'voice'],
    availableFor (factors: EnrolledFactors): Method[] {
      return factors.phones.length > 0 ? ['sms', 'voice'] : []
    },

    async send (challengeId, userId, channel, target) {
      const code = newCode()
      const now = new Date()
      const cooldownStart = new Date(now.getTime() - resendCooldownMs)
      // The new hash replaces the old one in the same statement that spends the send budget:
      // a resend voids the previous code, and two racing sends cannot both pass the cooldown.
      const rows = await prisma.$queryRaw<Array<{ previous_sent_at: Date | null }>>`
        UPDATE otp_challenges AS c
           SET send_count = c.send_count + 1,
               last_sent_at = ${now}::timestamptz,
               code_hash = ${secrets.codeHash(challengeId, code)},
               code_expires_at = LEAST(${new Date(now.getTime() + OTP_TTL_MS)}::timestamptz, c.expires_at),
               channel = ${channel},
               phone_id = ${target.id}
          FROM otp_challenges AS before
         WHERE c.id = ${challengeId} AND before.id = c.id
           AND c.completed_at IS NULL AND c.closed_at IS NULL AND c.expires_at > ${now}::timestamptz
           AND c.send_count < ${MAX_SENDS_PER_CHALLENGE}::int
           AND (c.last_sent_at IS NULL OR c.last_sent_at <= ${cooldownStart}::timestamptz)
        RETURNING before.last_sent_at AS previous_sent_at`
      if (rows.length === 0) {
        const challenge = await prisma.otpChallenge.findUniqueOrThrow({ where: { id: challengeId } })
        const state = challengeState(challenge, now)
        if (state !== 'open') return { sent: false, reason: state }
        if (challenge.sendCount >= MAX_SENDS_PER_CHALLENGE) return { sent: false, reason: 'limit' }
        const availableAt = (challenge.lastSentAt?.getTime() ?? 0) + resendCooldownMs
        return { sent: false, reason: 'too_soon', retryAfterSeconds: Math.max(1, Math.ceil((availableAt - now.getTime()) / 1000)) }
      }
      try {
        await notifier.deliverCode({ userId, challengeId, channel, numberCipher: target.numberCipher, masked: target.masked, code })
      } catch (err) {
        // Nothing reached the user: give the send back so a retry (or the other channel) is not refused.
        await prisma.otpChallenge.updateMany({
          where: { id: challengeId, lastSentAt: now },
          data: { sendCount: { decrement: 1 }, lastSentAt: rows[0]?.previous_sent_at ?? null, codeHash: null, codeExpiresAt: null }
        })
        throw err
      }
      return { sent: true, resendAvailableAt: new Date(now.getTime() + resendCooldownMs) }
    },

    async check (challenge, code) {
      const now = new Date()
      const state = challengeState(challenge, now)
      if (state === 'expired') return { outcome: 'expired' }
      if (state !== 'open') return { outcome: 'closed' }
      const live = challenge.codeHash !== null && challenge.codeExpiresAt !== null && challenge.codeExpiresAt > now
      if (live && secrets.sameHash(secrets.codeHash(challenge.id, code), challenge.codeHash as string)) {
        // Single use: of N requests carrying the right code, only one finds completed_at still NULL.
        const { count } = await prisma.otpChallenge.updateMany({
          where: {
            id: challenge.id,
            codeHash: challenge.codeHash,
            completedAt: null,
            closedAt: null,
            failedAttempts: { lt: MAX_CODE_ATTEMPTS_PER_CHALLENGE },
            codeExpiresAt: { gt: now }
          },
          data: { completedAt: now }
        })
        if (count === 1) {
          await notifier.codeVerified(challenge.id)
          return { outcome: 'accepted' }
        }
        const fresh = await prisma.otpChallenge.findUniqueOrThrow({ where: { id: challenge.id } })
        const freshState = challengeState(fresh, now)
        if (freshState === 'expired') return { outcome: 'expired' }
        if (freshState !== 'open') return { outcome: 'closed' }
        // Still open: the code was voided by a resend in the meantime, so it counts as wrong.
      }
      const rows = await prisma.$queryRaw<Array<{ failed_attempts: number }>>`
        UPDATE otp_challenges
           SET failed_attempts = failed_attempts + 1,
               closed_at = CASE WHEN failed_attempts + 1 >= ${MAX_CODE_ATTEMPTS_PER_CHALLENGE}::int THEN ${now}::timestamptz ELSE NULL END,
               closed_reason = CASE WHEN failed_attempts + 1 >= ${MAX_CODE_ATTEMPTS_PER_CHALLENGE}::int THEN 'too_many_attempts' ELSE NULL END
         WHERE id = ${challenge.id} AND completed_at IS NULL AND closed_at IS NULL
           AND failed_attempts < ${MAX_CODE_ATTEMPTS_PER_CHALLENGE}::int
        RETURNING failed_attempts`
      const failed = rows[0]?.failed_attempts
      if (failed === undefined) return { outcome: 'closed' }
      return { outcome: 'wrong', attemptsRemaining: MAX_CODE_ATTEMPTS_PER_CHALLENGE - failed }
    }
  }
}
