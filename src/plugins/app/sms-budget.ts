import fp from 'fastify-plugin'
import type { PrismaClient } from '../../generated/prisma/client.js'
import { ApiError } from '../../lib/errors.js'
import type { PolicyService } from './policy.js'

/**
 * Users without an organization share one budget under this key, with the default
 * policy's limit: their sends are capped too, rather than left unbounded.
 */
export const NO_ORGANIZATION = ''

/** One send taken from an organization's day. */
export interface BudgetReservation { organizationId: string, day: string }

export interface SmsBudget {
  /** Takes one text or call from the day's budget of the user's organization, or refuses with 429 send_limit_reached. */
  take (organizationId: string | null): Promise<BudgetReservation>
  /** Nothing reached the provider (refused by another budget, or the provider failed): the send is given back. */
  refund (reservation: BudgetReservation): Promise<void>
}

const DAY_MS = 24 * 60 * 60_000

/** Today's date in UTC, the budget's day: every instance agrees on when it turns over. */
function utcDay (now = new Date()): string {
  return now.toISOString().slice(0, 10)
}

export function createSmsBudget ({ prisma, policy }: { prisma: PrismaClient, policy: PolicyService }): SmsBudget {
  const refused = () => {
    // The budget turns over at the next UTC midnight.
    const now = Date.now()
    const retryAfter = Math.max(1, Math.ceil((DAY_MS - (now % DAY_MS)) / 1000))
    return new ApiError('send_limit_reached', "the organization's texts and calls for today are used up; use an authenticator app or the recovery code", { retryAfter })
  }
  return {
    async take (userOrganizationId) {
      const organizationId = userOrganizationId ?? NO_ORGANIZATION
      const { smsDailyLimit } = await policy.get(userOrganizationId)
      if (smsDailyLimit <= 0) throw refused()
      const day = utcDay()
      // The count only grows while under the limit, in one statement: N concurrent sends cannot overshoot it.
      const rows = await prisma.$queryRaw<Array<{ count: number }>>`
        INSERT INTO org_sms_budgets (organization_id, day, count)
        VALUES (${organizationId}, ${day}::date, 1)
        ON CONFLICT (organization_id, day) DO UPDATE SET count = org_sms_budgets.count + 1
        WHERE org_sms_budgets.count < ${smsDailyLimit}::int
        RETURNING count`
      if (rows.length === 0) throw refused()
      if (Math.random() < 0.01) {
        // Past days are history nobody reads; an occasional sweep keeps the table small.
        await prisma.orgSmsBudget.deleteMany({ where: { day: { lt: new Date(Date.now() - 7 * DAY_MS) } } })
      }
      return { organizationId, day }
    },
    async refund ({ organizationId, day }) {
      await prisma.$executeRaw`
        UPDATE org_sms_budgets SET count = count - 1
         WHERE organization_id = ${organizationId} AND day = ${day}::date AND count > 0`
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance { smsBudget: SmsBudget }
}

export default fp(async (fastify) => {
  fastify.decorate('smsBudget', createSmsBudget({ prisma: fastify.prisma, policy: fastify.policy }))
}, { name: 'sms-budget', dependencies: ['database', 'policy'] })
