import { randomInt } from 'node:crypto'
import { Prisma, type OtpChallenge, type PrismaClient } from '../generated/prisma/client.js'
import { MAX_CODE_ATTEMPTS_PER_CHALLENGE, MAX_SENDS_PER_CHALLENGE, OTP_DIGITS, OTP_TTL_MS } from '../lib/limits.js'
import type { Database } from '../db/database.js'
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

/** The row a completed login leaves, as SQL a caller can write more rows from in the same statement. */
export interface CompletedRow { from: Prisma.Sql, userId: Prisma.Sql, channel: Prisma.Sql }

/** The login rules the one-statement path holds in its WHERE, each as the full path reads it. */
export interface LoginRules {
  /** The method the caller named; without one, the channel the code went by. */
  method: Channel | undefined
  /** The user's organization policy as SQL over their organization id. */
  policy: (organizationId: Prisma.Sql) => { allowedMethods: Prisma.Sql, rememberDeviceDays: Prisma.Sql }
  /** Written only with the completion (the login's security event). */
  also?: ((completed: CompletedRow) => Prisma.Sql) | undefined
}

export interface CompletedLogin { userId: string, channel: Channel, rememberDeviceDays: number }

export interface PhoneCode extends SecondFactor {
  send (challengeId: string, userId: string, channel: Channel, target: SendTarget, origin: SendOrigin): Promise<SendResult>
  /** `onCompleted` is written in the same statement that accepts the code, or not at all. */
  check (challenge: OtpChallenge, code: string, onCompleted?: OnCompleted): Promise<CodeCheck>
  /**
   * The busiest request of all, a right code, in one statement: completes the login only when
   * everything the full path checks holds (challenge open and under its attempt cap, code live
   * and right, account neither locked nor paused, method allowed by the policy), forgets the
   * account's wrong codes and writes `rules.also`. Null when anything is off, and nothing is
   * written: the caller then takes the full path, which reads the state and says what is wrong.
   */
  completeLogin (challengeId: string, code: string, rules: LoginRules): Promise<CompletedLogin | null>
}

export interface PhoneCodeDeps {
  prisma: PrismaClient
  /** Runs the one statement of a right code on the driver directly (see Database.rows). */
  rows: Database['rows']
  secrets: Secrets
  notifier: Notifier
  resendCooldownMs: number
}

function newCode (): string {
  return randomInt(0, 10 ** OTP_DIGITS).toString().padStart(OTP_DIGITS, '0')
}

/** Six-digit codes by SMS or voice call: sent, resent, checked, each step decided by one conditional UPDATE. */
export function createPhoneCode ({ prisma, rows: run, secrets, notifier, resendCooldownMs }: PhoneCodeDeps): PhoneCode {
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

    async completeLogin (challengeId, code, rules) {
      const now = new Date()
      const policy = rules.policy(Prisma.sql`u.organization_id`)
      const also = rules.also === undefined
        ? Prisma.empty
        : Prisma.sql`, also_written AS (${rules.also({ from: Prisma.sql`FROM completed`, userId: Prisma.sql`completed.user_id`, channel: Prisma.sql`completed.channel` })})`
      // Comparing HMACs in SQL leaks no timing an attacker can use: without the key they cannot
      // choose the bytes of the hash their guess produces.
      const rows = await run<{ user_id: string, channel: string, remember_device_days: number, delivered_to: string | null }>(Prisma.sql`
        WITH completed AS (
          UPDATE otp_challenges AS c SET completed_at = ${now}::timestamptz
            FROM users AS u
           WHERE c.id = ${challengeId} AND c.purpose = 'login' AND u.id = c.user_id
             AND c.completed_at IS NULL AND c.closed_at IS NULL
             AND c.failed_attempts < ${MAX_CODE_ATTEMPTS_PER_CHALLENGE}::int AND c.expires_at > ${now}::timestamptz
             AND c.code_hash = ${secrets.codeHash(challengeId, code)} AND c.code_expires_at > ${now}::timestamptz
             AND u.locked_at IS NULL AND (u.code_locked_until IS NULL OR u.code_locked_until <= ${now}::timestamptz)
             AND COALESCE(${rules.method ?? null}::text, c.channel) = ANY(${policy.allowedMethods})
          RETURNING c.user_id, c.channel, u.code_failures, ${policy.rememberDeviceDays} AS remember_device_days,
            (SELECT d.masked FROM deliveries AS d
              WHERE d.challenge_id = c.id AND d.kind = 'code' AND d.status <> 'failed'
              ORDER BY d.created_at DESC LIMIT 1) AS delivered_to
        ), forgotten AS (
          UPDATE users SET code_failures = 0 WHERE id IN (SELECT user_id FROM completed WHERE code_failures > 0)
        )${also}
        SELECT user_id, channel, remember_device_days, delivered_to FROM completed`)
      const [row] = rows
      if (row === undefined) return null
      notifier.codeVerified(row.delivered_to)
      return { userId: row.user_id, channel: row.channel === 'voice' ? 'voice' : 'sms', rememberDeviceDays: row.remember_device_days }
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
