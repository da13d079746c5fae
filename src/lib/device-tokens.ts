import { createHash, randomBytes } from 'node:crypto'
import type { PrismaClient } from '../generated/prisma/client.js'
import { DEVICE_TOKEN_BYTES } from './limits.js'

/** A new device token: only the browser keeps it; the database keeps its hash. */
export function newDeviceToken (): string {
  return randomBytes(DEVICE_TOKEN_BYTES).toString('base64url')
}

/**
 * Plain SHA-256 is enough: the token carries 256 random bits, so a stolen table gives
 * nothing to guess, and an unkeyed hash survives a SECRET_KEY rotation.
 */
export function hashDeviceToken (token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex')
}

/**
 * Revokes every remembered device of a user, as one statement that can join the
 * transaction of the action that calls for it (lock, unlock, password change, reset).
 */
export function revokeAllDevices (prisma: Pick<PrismaClient, 'rememberedDevice'>, userId: string, now: Date = new Date()) {
  return prisma.rememberedDevice.updateMany({ where: { userId, revokedAt: null }, data: { revokedAt: now } })
}
