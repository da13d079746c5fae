import fp from 'fastify-plugin'
import { Counter, type Registry } from 'prom-client'
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max'
import { Prisma, type PrismaClient } from '../../generated/prisma/client.js'
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
  reserve (to: string, clientIp: string | null): Promise<Reservation>
  /** The provider failed: nothing was sent, so nothing is spent. */
  refund (reservation: Reservation): Promise<void>
  /** The provider took the message: counts it in the conversion signal. */
  confirm (reservation: Reservation): void
  /** A code reached its owner (`deliveredTo`, the masked number it went to): the other half of the conversion signal. */
  verified (deliveredTo: string | null): void
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

  async function giveBack (counters: Reservation['counters']): Promise<void> {
    for (const counter of counters) {
      await prisma.sendCounter.updateMany({
        where: { scope: counter.scope, key: counter.key, windowStart: counter.windowStart, count: { gt: 0 } },
        data: { count: { decrement: 1 } }
      })
    }
  }

  return {
    async reserve (to, clientIp) {
      try {
        normalisePhoneNumber(to, deps.defaultCountry, deps.allowedCountries)
      } catch (err) {
        refused.inc({ reason: err instanceof ApiError ? err.code : 'invalid_phone_number' })
        throw err
      }
      const prefix = `+${parsePhoneNumberFromString(to)?.countryCallingCode ?? 'unknown'}`
      const numberIndex = secrets.blindIndex('phone', to)
      const keys: Record<Rule['scope'], string | null> = {
        'number-hour': numberIndex,
        'number-day': numberIndex,
        'ip-hour': clientIp === null ? null : ipCountingKey(clientIp),
        'prefix-day': prefix
      }
      const now = Date.now()
      const counters = rules
        .filter((rule) => rule.limit > 0 && keys[rule.scope] !== null)
        .map((rule) => ({ rule, scope: rule.scope, key: keys[rule.scope] as string, windowStart: new Date(now - (now % rule.windowMs)) }))
      // One statement for every budget: each count grows only while under its own limit, so
      // concurrent sends cannot overshoot any of them. Rows lock in the rules' order, the same
      // for every send, so two sends cannot deadlock.
      const granted = counters.length === 0
        ? []
        : await prisma.$queryRaw<Array<{ scope: string }>>`
          INSERT INTO send_counters (scope, key, window_start, count)
          VALUES ${Prisma.join(counters.map((c) => Prisma.sql`(${c.scope}, ${c.key}, ${c.windowStart}::timestamptz, 1)`))}
          ON CONFLICT (scope, key, window_start) DO UPDATE SET count = send_counters.count + 1
          WHERE send_counters.count < CASE send_counters.scope ${Prisma.join(counters.map((c) => Prisma.sql`WHEN ${c.scope} THEN ${c.rule.limit}::int`), ' ')} END
          RETURNING scope`
      const grantedScopes = new Set(granted.map((row) => row.scope))
      const full = counters.find((counter) => !grantedScopes.has(counter.scope)) ?? null
      // Refused: give back what this send took from the budgets that still had room.
      if (full !== null) await giveBack(counters.filter((counter) => grantedScopes.has(counter.scope)))
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
      await giveBack(reservation.counters)
    },

    confirm (reservation) {
      sent.inc({ prefix: reservation.prefix })
    },

    verified (deliveredTo) {
      verifiedCounter.inc({ prefix: prefixOf(deliveredTo) })
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
