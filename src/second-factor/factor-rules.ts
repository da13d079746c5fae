import type { PrismaClient } from '../generated/prisma/client.js'
import { ApiError } from '../lib/errors.js'

export type Tx = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0]

/** What a user would still have to complete a login with, after a change. */
export interface RemainingFactors { phones: number, totpEnabled: boolean }

/**
 * Serialises the second-factor changes of one user (phones and authenticator app alike) for
 * the rest of the transaction: two removals at once, of the last phone and of TOTP, must
 * not each see the other factor still there and leave a required user with none.
 */
export async function lockUserFactors (tx: Tx, userId: string): Promise<void> {
  await tx.$queryRaw`SELECT pg_advisory_xact_lock(hashtext(${'second-factors:' + userId}))::text`
}

/** The factors of a user as read inside the lock: enabled TOTP only, a pending enrolment is no factor yet. */
export async function totpEnabledIn (tx: Tx, userId: string): Promise<boolean> {
  const totp = await tx.totpFactor.findUnique({ where: { userId }, select: { enabledAt: true } })
  return totp?.enabledAt != null
}

export function hasSecondFactor (remaining: RemainingFactors): boolean {
  return remaining.phones > 0 || remaining.totpEnabled
}

/** Whether a kind of factor can complete a login under the policy's allowed methods. */
function allowedKind (kind: 'phone' | 'totp', allowedMethods: readonly string[]): boolean {
  return kind === 'totp' ? allowedMethods.includes('totp') : allowedMethods.includes('sms') || allowedMethods.includes('voice')
}

/**
 * The one rule for removing a factor: never the last one a user the policy requires 2FA of
 * can still log in with (409 two_factor_required). A phone where the studio allows only the
 * app does not count as a way in, so it does not keep the app removable; a factor the
 * policy does not allow can always go. `required` and `allowedMethods` are read before the lock.
 */
export function assertMayRemove (required: boolean, allowedMethods: readonly string[], removing: 'phone' | 'totp', remaining: RemainingFactors, hint: string): void {
  const usableLeft = (remaining.phones > 0 && allowedKind('phone', allowedMethods)) || (remaining.totpEnabled && allowedKind('totp', allowedMethods))
  if (required && allowedKind(removing, allowedMethods) && !usableLeft) {
    throw new ApiError('two_factor_required', `two-factor authentication is required for this user: ${hint}`)
  }
}
