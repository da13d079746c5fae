import type { PrismaClient } from '../generated/prisma/client.js'
import { revokeAllDevices } from './device-tokens.js'

/**
 * Locks the account and closes its open challenges in one transaction, so no
 * challenge started before the lock can still be completed after it, and no remembered
 * device skips the second factor once support unlocks it.
 * Returns false when the account was already locked.
 */
export async function lockAccount (prisma: PrismaClient, userId: string, reason: string): Promise<boolean> {
  const now = new Date()
  const [locked] = await prisma.$transaction([
    prisma.user.updateMany({ where: { id: userId, lockedAt: null }, data: { lockedAt: now, lockedReason: reason } }),
    prisma.otpChallenge.updateMany({
      where: { userId, completedAt: null, closedAt: null },
      data: { closedAt: now, closedReason: 'account_locked' }
    }),
    revokeAllDevices(prisma, userId, now)
  ])
  return locked.count === 1
}
