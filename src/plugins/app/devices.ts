import fp from 'fastify-plugin'
import { randomUUID } from 'node:crypto'
import type { PrismaClient } from '../../generated/prisma/client.js'
import { hashDeviceToken, newDeviceToken, revokeAllDevices } from '../../lib/device-tokens.js'
import { ApiError } from '../../lib/errors.js'
import { DEVICES_LIST_MAX } from '../../lib/limits.js'
import type { RequestContext } from '../../lib/request-context.js'
import type { Events } from './events.js'
import type { Users } from './users.js'

const DAY_MS = 24 * 60 * 60_000

export interface DeviceView { id: string, userAgent: string | null, createdAt: string, lastUsedAt: string | null, expiresAt: string }

export interface RememberedToken { deviceToken: string, deviceTokenExpiresAt: string }

export interface Devices {
  /** After a completed second factor: a token that skips it for `days` days; `days` 0 issues none. */
  remember (userId: string, days: number, context: RequestContext): Promise<RememberedToken | null>
  /**
   * True when `token` is an active device of this user, issued within the last `days`
   * days (a policy shortened since then applies to old tokens too); marks it used.
   */
  use (userId: string, token: string, days: number): Promise<boolean>
  list (userId: string): Promise<DeviceView[]>
  revoke (userId: string, deviceId: string, context: RequestContext): Promise<void>
  revokeAll (userId: string, context: RequestContext, reason: string): Promise<number>
}

export interface DevicesDeps { prisma: PrismaClient, events: Events, users: Pick<Users, 'assertExists'> }

export function createDevices ({ prisma, events, users }: DevicesDeps): Devices {
  return {
    async remember (userId, days, context) {
      if (days <= 0) return null
      const token = newDeviceToken()
      const now = new Date()
      const expiresAt = new Date(now.getTime() + days * DAY_MS)
      const id = randomUUID()
      await prisma.rememberedDevice.create({
        data: { id, userId, tokenHash: hashDeviceToken(token), userAgent: context.userAgent, createdAt: now, expiresAt }
      })
      await events.record('device.remembered', userId, context, { deviceId: id, expiresAt: expiresAt.toISOString() })
      return { deviceToken: token, deviceTokenExpiresAt: expiresAt.toISOString() }
    },

    async use (userId, token, days) {
      if (days <= 0) return false
      // One statement decides: bound to this user, not revoked, not expired, not older than the policy allows.
      const rows = await prisma.$queryRaw<Array<{ id: string }>>`
        UPDATE remembered_devices SET last_used_at = now()
         WHERE token_hash = ${hashDeviceToken(token)} AND user_id = ${userId}
           AND revoked_at IS NULL AND expires_at > now()
           AND created_at > now() - make_interval(days => ${days}::int)
        RETURNING id`
      return rows.length === 1
    },

    async list (userId) {
      await users.assertExists(userId)
      const devices = await prisma.rememberedDevice.findMany({
        where: { userId, revokedAt: null, expiresAt: { gt: new Date() } },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        take: DEVICES_LIST_MAX
      })
      return devices.map((d) => ({
        id: d.id,
        userAgent: d.userAgent,
        createdAt: d.createdAt.toISOString(),
        lastUsedAt: d.lastUsedAt?.toISOString() ?? null,
        expiresAt: d.expiresAt.toISOString()
      }))
    },

    async revoke (userId, deviceId, context) {
      await users.assertExists(userId)
      const { count } = await prisma.rememberedDevice.updateMany({
        where: { id: deviceId, userId, revokedAt: null, expiresAt: { gt: new Date() } },
        data: { revokedAt: new Date() }
      })
      if (count === 0) throw new ApiError('not_found', `no device ${deviceId} for this user`)
      await events.record('device.revoked', userId, context, { deviceId, reason: 'removed' })
    },

    async revokeAll (userId, context, reason) {
      await users.assertExists(userId)
      const { count } = await revokeAllDevices(prisma, userId)
      if (count > 0) await events.record('device.revoked', userId, context, { all: true, count, reason })
      return count
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance { devices: Devices }
}

export default fp(async (fastify) => {
  fastify.decorate('devices', createDevices({ prisma: fastify.prisma, events: fastify.events, users: fastify.users }))
}, { name: 'devices', dependencies: ['database', 'events', 'users'] })
