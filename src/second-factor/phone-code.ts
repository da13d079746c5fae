import { randomInt } from 'node:crypto'
import type { OtpChallenge, PrismaClient } from '../generated/prisma/client.js'
import { MAX_SENDS_PER_CHALLENGE, OTP_DIGITS, OTP_TTL_MS } from '../lib/limits.js'
import type { Secrets } from '../lib/secrets.js'
import type { Notifier, SendOrigin } from '../plugins/app/notifier.js'
import type { Channel } from '../senders/message-sender.js'
import { completeChallenge, countWrongCode, stateAfterRace, type OnCompleted } from './challenge-attempts.js'
import { challengeState, type ChallengeState } from './challenge-state.js'
import type { CodeCheck, EnrolledFactors, Method, SecondFactor } from './method.js'

export type SendResult =
  | { sent: true, resendAvailableAt: Date }
  | { sent: false, reason: 'too_soon', retryAfterSeconds: number }
  | { sent: false, reason: 'limit' }
  | { sent: false, reason: Exclude<ChallengeState, 'open'> }

export interface SendTarget { id: string | null, numberCipher: string, masked: string }

export interface PhoneCode extends SecondFactor {
  send (challengeId: string, userId: string, channel: Channel, target: SendTarget, origin: SendOrigin): Promise<SendResult>
  /** `onCompleted` is written in the same statement that accepts the code, or not at all. */
  check (challenge: OtpChallenge, code: string, onCompleted?: OnCompleted): Promise<CodeCheck>
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

    async send (challengeId, userId, channel, target, origin) {
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
        await notifier.deliverCode({ userId, challengeId, origin, channel, numberCipher: target.numberCipher, masked: target.masked, code })
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

    async check (challenge, code, onCompleted) {
      const now = new Date()
      const state = challengeState(challenge, now)
      if (state === 'expired') return { outcome: 'expired' }
      if (state !== 'open') return { outcome: 'closed' }
      const live = challenge.codeHash !== null && challenge.codeExpiresAt !== null && challenge.codeExpiresAt > now
      if (live && secrets.sameHash(secrets.codeHash(challenge.id, code), challenge.codeHash as string)) {
        const completed = await completeChallenge(prisma, challenge.id, now, challenge.codeHash as string, onCompleted)
        if (completed !== null) {
          notifier.codeVerified(completed.deliveredTo)
          return { outcome: 'accepted' }
        }
        const over = await stateAfterRace(prisma, challenge.id, now)
        if (over !== null) return over
        // Still open: the code was voided by a resend in the meantime, so it counts as wrong.
      }
      return await countWrongCode(prisma, challenge.id, now)
    }
  }
}
