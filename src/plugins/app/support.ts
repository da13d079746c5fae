import fp from 'fastify-plugin'
import type { PrismaClient } from '../../generated/prisma/client.js'
import { lockAccount } from '../../lib/account-lock.js'
import { revokeAllDevices } from '../../lib/device-tokens.js'
import { ApiError } from '../../lib/errors.js'
import type { RequestContext } from '../../lib/request-context.js'
import type { Secrets } from '../../lib/secrets.js'
import type { Events } from './events.js'
import type { Notifier } from './notifier.js'
import type { UserView, Users } from './users.js'

/** What support does for a user who called in: each action records who asked and why. */
export interface Support {
  lock (userId: string, reason: string, context: RequestContext): Promise<UserView>
  unlock (userId: string, reason: string, context: RequestContext): Promise<UserView>
  resetTwoFactor (userId: string, reason: string, context: RequestContext): Promise<void>
}

export interface SupportDeps { prisma: PrismaClient, secrets: Secrets, users: Users, events: Events, notifier: Notifier }

export function createSupport ({ prisma, secrets, users, events, notifier }: SupportDeps): Support {
  return {
    async lock (userId, reason, context) {
      await users.assertExists(userId)
      await lockAccount(prisma, userId, reason)
      await events.record('account.locked', userId, context, { reason, by: 'support' })
      return await users.view(userId)
    },
    async unlock (userId, reason, context) {
      const user = await prisma.user.findUnique({ where: { id: userId }, select: { email: true } })
      if (user === null) throw new ApiError('not_found', `no user ${userId}`)
      // Every counter: a user support just helped must not still wait out a wrong-password throttle.
      // Devices too: the lock already revoked them, and an unlock must never bring one back.
      const [,, revoked] = await prisma.$transaction([
        prisma.user.updateMany({
          where: { id: userId },
          data: { lockedAt: null, lockedReason: null, recoveryFailures: 0, codeFailures: 0, codeLockedUntil: null }
        }),
        prisma.loginThrottle.deleteMany({ where: { emailIndex: secrets.blindIndex('email', user.email) } }),
        revokeAllDevices(prisma, userId)
      ])
      await events.record('account.unlocked', userId, context, { reason })
      if (revoked.count > 0) await events.record('device.revoked', userId, context, { all: true, count: revoked.count, reason: 'account_unlocked' })
      return await users.view(userId)
    },
    async resetTwoFactor (userId, reason, context) {
      await users.assertExists(userId)
      const previousPrimary = await prisma.phone.findFirst({ where: { userId, primary: true } })
      const now = new Date()
      const [,,, revoked] = await prisma.$transaction([
        prisma.phone.deleteMany({ where: { userId } }),
        prisma.recoveryCode.deleteMany({ where: { userId } }),
        prisma.otpChallenge.updateMany({ where: { userId, completedAt: null, closedAt: null }, data: { closedAt: now, closedReason: 'two_factor_reset' } }),
        revokeAllDevices(prisma, userId, now)
      ])
      await events.record('two_factor.reset', userId, context, { reason })
      if (revoked.count > 0) await events.record('device.revoked', userId, context, { all: true, count: revoked.count, reason: 'two_factor_reset' })
      await notifier.notify(userId, previousPrimary, 'two_factor_reset')
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance { support: Support }
}

export default fp(async (fastify) => {
  fastify.decorate('support', createSupport({ prisma: fastify.prisma, secrets: fastify.secrets, users: fastify.users, events: fastify.events, notifier: fastify.notifier }))
}, { name: 'support', dependencies: ['database', 'users', 'events', 'notifier'] })
