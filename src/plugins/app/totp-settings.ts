import fp from 'fastify-plugin'
import QRCode from 'qrcode'
import type { PrismaClient } from '../../generated/prisma/client.js'
import { ApiError } from '../../lib/errors.js'
import { recoveryKit } from '../../lib/recovery-codes.js'
import type { RequestContext } from '../../lib/request-context.js'
import { assertMayRemove, hasSecondFactor, lockUserFactors } from '../../second-factor/factor-rules.js'
import type { RecoveryCode } from '../../second-factor/recovery-code.js'
import type { Totp } from '../../second-factor/totp.js'
import type { Events } from './events.js'
import type { Notifier } from './notifier.js'
import { rolesRequire, type PolicyService } from './policy.js'

export interface TotpEnrolment { enrollmentId: string, secret: string, otpauthUri: string, qrCodeSvg: string, expiresAt: string }
export interface TotpConfirmed { totp: { enabledAt: string }, recoveryCode?: string, recoveryKit?: string }

/** Contract section 4: an authenticator app on the Security settings page. */
export interface TotpSettings {
  enrol (userId: string, context: RequestContext): Promise<TotpEnrolment>
  confirm (userId: string, input: { enrollmentId: string, code: string }, context: RequestContext): Promise<TotpConfirmed>
  remove (userId: string, context: RequestContext): Promise<void>
}

export interface TotpSettingsDeps {
  prisma: PrismaClient
  totp: Totp
  recoveryCode: RecoveryCode
  events: Events
  notifier: Notifier
  policy: PolicyService
  supportContact: string
}

/**
 * Re-enrolling while an app is already enabled (a new phone, say) is allowed and safe: the
 * enabled secret keeps working until the new one is confirmed with a code from the new app,
 * and is replaced in the same statement. A user is never left without a working app, and
 * nothing changes on the account until a code proves the new secret was saved.
 */
export function createTotpSettings ({ prisma, totp, recoveryCode, events, notifier, policy, supportContact }: TotpSettingsDeps): TotpSettings {
  async function userOrThrow (userId: string) {
    const user = await prisma.user.findUnique({ where: { id: userId }, select: { id: true, email: true, role: true, organizationId: true } })
    if (user === null) throw new ApiError('not_found', `no user ${userId}`)
    return user
  }

  return {
    async enrol (userId, context) {
      const user = await userOrThrow(userId)
      const pending = await totp.startEnrolment(userId)
      const otpauthUri = totp.uri(pending.secret, user.email)
      const qrCodeSvg = await QRCode.toString(otpauthUri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 })
      await events.record('totp.enrollment_started', userId, context, { enrollmentId: pending.enrollmentId })
      return { enrollmentId: pending.enrollmentId, secret: pending.secret, otpauthUri, qrCodeSvg, expiresAt: pending.expiresAt.toISOString() }
    },

    async confirm (userId, input, context) {
      const user = await userOrThrow(userId)
      // Under the user's factor lock: whether TOTP is the FIRST method is decided against
      // phones that cannot be removed or added meanwhile.
      const { result, first } = await prisma.$transaction(async (tx) => {
        await lockUserFactors(tx, userId)
        const result = await totp.confirm(userId, input, tx)
        if (result.outcome !== 'confirmed' || result.replaced) return { result, first: false }
        return { result, first: !hasSecondFactor({ phones: await tx.phone.count({ where: { userId } }), totpEnabled: false }) }
      })
      switch (result.outcome) {
        case 'not_found': throw new ApiError('not_found', 'no such authenticator enrolment for this user')
        case 'expired': throw new ApiError('verification_expired', 'this authenticator enrolment is over; start a new one')
        case 'wrong':
          await events.record('code.failed', userId, context, { purpose: 'totp_enrollment', attemptsRemaining: result.attemptsRemaining })
          throw new ApiError('invalid_code', 'the code is wrong; check the time on the phone and try the current code', { attemptsRemaining: result.attemptsRemaining })
      }
      await events.record('totp.enabled', userId, context, { replaced: result.replaced })
      const enabled = { totp: { enabledAt: result.enabledAt.toISOString() } }
      if (!first) {
        // A new or replaced app on an account that already had a factor: tell the user's primary phone.
        const primary = await prisma.phone.findFirst({ where: { userId, primary: true } })
        await notifier.notify(userId, primary, 'authenticator_added')
        return enabled
      }
      // Contract section 4: the first method comes with a recovery code, as a first phone does.
      const issued = await recoveryCode.issue(userId)
      await events.record('recovery_code.regenerated', userId, context)
      return {
        ...enabled,
        recoveryCode: issued.code,
        recoveryKit: recoveryKit({ email: user.email, code: issued.code, issuedAt: issued.createdAt, supportContact })
      }
    },

    async remove (userId, context) {
      const user = await userOrThrow(userId)
      const userPolicy = await policy.forUser(user)
      const required = rolesRequire(userPolicy, user.role)
      const { allowedMethods } = userPolicy
      await prisma.$transaction(async (tx) => {
        await lockUserFactors(tx, userId)
        const row = await tx.totpFactor.findUnique({ where: { userId }, select: { enabledAt: true } })
        if (row === null) throw new ApiError('not_found', 'the user has no authenticator app')
        const left = { phones: await tx.phone.count({ where: { userId } }), totpEnabled: false }
        if (row.enabledAt !== null) assertMayRemove(required, allowedMethods, 'totp', left, allowedMethods.includes('sms') || allowedMethods.includes('voice')
          ? 'add a phone before removing the authenticator app'
          : 'the organization allows only authenticator apps: set up the new app, which replaces this one, instead of removing it')
        // The pending enrolment goes too: removing the app means starting over.
        await tx.totpFactor.delete({ where: { userId } })
        // Without any second factor a recovery code has nothing to stand in for.
        if (!hasSecondFactor(left)) await tx.recoveryCode.deleteMany({ where: { userId } })
      })
      await events.record('totp.removed', userId, context)
      await notifier.notify(userId, await prisma.phone.findFirst({ where: { userId, primary: true } }), 'authenticator_removed')
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance { totpSettings: TotpSettings }
}

export default fp(async (fastify) => {
  fastify.decorate('totpSettings', createTotpSettings({
    prisma: fastify.prisma,
    totp: fastify.secondFactors.totp,
    recoveryCode: fastify.secondFactors.recoveryCode,
    events: fastify.events,
    notifier: fastify.notifier,
    policy: fastify.policy,
    supportContact: fastify.config.SUPPORT_CONTACT
  }))
}, { name: 'totp-settings', dependencies: ['database', 'second-factors', 'events', 'notifier', 'policy'] })
