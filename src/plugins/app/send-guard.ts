import fp from 'fastify-plugin'
import { Counter, type Registry } from 'prom-client'
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max'
import type { PrismaClient } from '../../generated/prisma/client.js'
import { ipCountingKey } from '../../lib/client-ip.js'
import { ApiError } from '../../lib/errors.js'
import { normalisePhoneNumber } from '../../lib/phone-numbers.js'
import type { Secrets } from '../../lib/secrets.js'

/** One budget: sends per key per fixed window; `limit` 0 turns it off. */
interface Rule { scope: 'number-hour' | 'number-day' | 'ip-hour' | 'prefix-day', limit: number, windowMs: number }

export interface SendBudgets {
  perNumberPerHour: number
  perNumberPerDay: number
  perIpPerHour: number
  perPrefixPerDay: number
}

/** What a send took from the budgets: given back when the provider fails. */
export interface Reservation { counters: Array<{ scope: string, key: string, windowStart: Date }>, prefix: string }

export interface SendGuard {
  /**
   * Before the provider is called: the number must be of an allowed country and a type
   * that reaches a person, and every budget must have room. Counts the send, atomically.
   */
  reserve (to: string, challengeId: string): Promise<Reservation>
  /** The provider failed: nothing was sent, so nothing is spent. */
  refund (reservation: Reservation): Promise<void>
  /** The provider took the message: counts it in the conversion signal. */
  confirm (reservation: Reservation): void
  /** A code reached its owner: the other half of the conversion signal. */
  verified (challengeId: string): Promise<void>
}

export interface SendGuardDeps {
  prisma: PrismaClient
  secrets: Secrets
  registry: Registry
  budgets: SendBudgets
  defaultCountry: CountryCode
  allowedCountries: readonly CountryCode[]
}

const HOUR = 60 * 60_000
const DAY = 24 * HOUR

/** Calling code as the masked number shows it, "+44 •••• ••••67" → "+44". */
function prefixOf (masked: string | null | undefined): string {
  return /^\+\d+/.exec(masked ?? '')?.[0] ?? 'unknown'
}

export function createSendGuard (deps: SendGuardDeps): SendGuard {
  const { prisma, secrets, budgets } = deps
  const sent = new Counter({ name: 'spa_codes_sent_by_prefix_total', help: 'Codes handed to the provider, by country calling code (with the verified count: the SMS pumping signal)', labelNames: ['prefix'], registers: [deps.registry] })
  const verifiedCounter = new Counter({ name: 'spa_codes_verified_by_prefix_total', help: 'Codes entered correctly, by country calling code', labelNames: ['prefix'], registers: [deps.registry] })
  const refused = new Counter({ name: 'spa_sends_refused_total', help: 'Sends refused before the provider was called, by reason', labelNames: ['reason'], registers: [deps.registry] })

  const rules: Rule[] = [
    { scope: 'number-hour', limit: budgets.perNumberPerHour, windowMs: HOUR },
    { scope: 'number-day', limit: budgets.perNumberPerDay, windowMs: DAY },
    { scope: 'ip-hour', limit: budgets.perIpPerHour, windowMs: HOUR },
    { scope: 'prefix-day', limit: budgets.perPrefixPerDay, windowMs: DAY }
  ]

  return {
    async reserve (to, challengeId) {
      try {
        normalisePhoneNumber(to, deps.defaultCountry, deps.allowedCountries)
      } catch (err) {
        refused.inc({ reason: err instanceof ApiError ? err.code : 'invalid_phone_number' })
        throw err
      }
      const prefix = `+${parsePhoneNumberFromString(to)?.countryCallingCode ?? 'unknown'}`
      const challenge = await prisma.otpChallenge.findUnique({ where: { id: challengeId }, select: { ip: true } })
      const numberIndex = secrets.blindIndex('phone', to)
      const keys: Record<Rule['scope'], string | null> = {
        'number-hour': numberIndex,
        'number-day': numberIndex,
        'ip-hour': challenge?.ip == null ? null : ipCountingKey(challenge.ip),
        'prefix-day': prefix
      }
      const now = Date.now()
      const counters = rules
        .filter((rule) => rule.limit > 0 && keys[rule.scope] !== null)
        .map((rule) => ({ rule, scope: rule.scope, key: keys[rule.scope] as string, windowStart: new Date(now - (now % rule.windowMs)) }))
      const full = await prisma.$transaction(async (tx) => {
        for (const counter of counters) {
          // The count only grows while it is under the limit: concurrent sends cannot overshoot it.
          const rows = await tx.$queryRaw<Array<{ count: number }>>`
            INSERT INTO send_counters (scope, key, window_start, count)
            VALUES (${counter.scope}, ${counter.key}, ${counter.windowStart}::timestamptz, 1)
            ON CONFLICT (scope, key, window_start) DO UPDATE SET count = send_counters.count + 1
            WHERE send_counters.count < ${counter.rule.limit}::int
            RETURNING count`
          // Refused: roll back the counters this send already took.
          if (rows.length === 0) throw counter
        }
        return null
      }).catch((err: unknown) => {
        if (err !== null && typeof err === 'object' && 'rule' in err) return err as typeof counters[number]
        throw err
      })
      if (full !== null) {
        refused.inc({ reason: full.scope })
        const retryAfter = Math.max(1, Math.ceil((full.windowStart.getTime() + full.rule.windowMs - Date.now()) / 1000))
        const what = { 'number-hour': 'this number this hour', 'number-day': 'this number today', 'ip-hour': 'this network this hour', 'prefix-day': 'this country today' }[full.scope]
        throw new ApiError('send_limit_reached', `no more codes can be sent to ${what}; use another method or try later`, { retryAfter })
      }
      if (Math.random() < 0.01) {
        // Old windows are useless; an occasional sweep keeps the table small.
        await prisma.sendCounter.deleteMany({ where: { windowStart: { lt: new Date(now - 2 * DAY) } } })
      }
      return { counters: counters.map(({ scope, key, windowStart }) => ({ scope, key, windowStart })), prefix }
    },

    async refund (reservation) {
      for (const counter of reservation.counters) {
        await prisma.sendCounter.updateMany({
          where: { scope: counter.scope, key: counter.key, windowStart: counter.windowStart, count: { gt: 0 } },
          data: { count: { decrement: 1 } }
        })
      }
    },

    confirm (reservation) {
      sent.inc({ prefix: reservation.prefix })
    },

    async verified (challengeId) {
      const delivery = await prisma.delivery.findFirst({ where: { challengeId, kind: 'code', status: { not: 'failed' } }, orderBy: { createdAt: 'desc' }, select: { masked: true } })
      verifiedCounter.inc({ prefix: prefixOf(delivery?.masked) })
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance { sendGuard: SendGuard }
}

export default fp(async (fastify) => {
  const { config } = fastify
  fastify.decorate('sendGuard', createSendGuard({
    prisma: fastify.prisma,
    secrets: fastify.secrets,
    registry: fastify.metrics.registry,
    budgets: {
      perNumberPerHour: config.SMS_PER_NUMBER_PER_HOUR,
      perNumberPerDay: config.SMS_PER_NUMBER_PER_DAY,
      perIpPerHour: config.SMS_PER_IP_PER_HOUR,
      perPrefixPerDay: config.SMS_PER_PREFIX_PER_DAY
    },
    defaultCountry: config.DEFAULT_PHONE_COUNTRY,
    allowedCountries: config.ALLOWED_PHONE_COUNTRIES
  }))
}, { name: 'send-guard', dependencies: ['config', 'database', 'metrics'] })
