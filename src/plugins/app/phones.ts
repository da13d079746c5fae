import fp from 'fastify-plugin'
import { randomUUID } from 'node:crypto'
import type { CountryCode } from 'libphonenumber-js'
import type { Phone, PrismaClient } from '../../generated/prisma/client.js'
import { ApiError } from '../../lib/errors.js'
import { MAX_PHONES_PER_USER, OTP_TTL_MS } from '../../lib/limits.js'
import { normalisePhoneNumber } from '../../lib/phone-numbers.js'
import { recoveryKit } from '../../lib/recovery-codes.js'
import type { RequestContext } from '../../lib/request-context.js'
import type { Secrets } from '../../lib/secrets.js'
import type { PhoneCode } from '../../second-factor/phone-code.js'
import { assertMayRemove, hasSecondFactor, lockUserFactors, totpEnabledIn, type Tx } from '../../second-factor/factor-rules.js'
import type { RecoveryCode } from '../../second-factor/recovery-code.js'
import type { Channel } from '../../senders/message-sender.js'
import type { NoticeKind } from '../../senders/messages.js'
import type { Events } from './events.js'
import type { Notifier } from './notifier.js'
import { rolesRequire, type PolicyService } from './policy.js'
import { phoneView, type PhoneView } from './users.js'

export interface StartedVerification {
  verificationId: string
  expiresAt: string
  channel: Channel
  phone: { masked: string }
}

export interface IssuedRecoveryCode { recoveryCode: string, recoveryKit: string }

export interface Phones {
  startVerification (userId: string, input: { phoneNumber: string, label?: string | undefined, channel?: Channel | undefined }, context: RequestContext): Promise<StartedVerification>
  verify (userId: string, input: { verificationId: string, code: string }, context: RequestContext): Promise<{ phone: PhoneView } & IssuedRecoveryCode>
  list (userId: string): Promise<PhoneView[]>
  update (userId: string, phoneId: string, changes: { label?: string | null | undefined, primary?: true | undefined }, context: RequestContext): Promise<PhoneView>
  remove (userId: string, phoneId: string, context: RequestContext): Promise<void>
  regenerateRecoveryCode (userId: string, context: RequestContext): Promise<IssuedRecoveryCode>
}

export interface PhonesDeps {
  prisma: PrismaClient
  secrets: Secrets
  phoneCode: PhoneCode
  recoveryCode: RecoveryCode
  notifier: Notifier
  events: Events
  policy: PolicyService
  defaultCountry: CountryCode
  allowedCountries: CountryCode[]
  supportContact: string
}

export function createPhones (deps: PhonesDeps): Phones {
  const { prisma, secrets, phoneCode, recoveryCode, notifier, events, policy } = deps

  /** Phone changes of one user run one at a time: the limit, the slot and the single primary stay true under concurrency. */
  async function withUserPhones<T> (userId: string, work: (tx: Tx, phones: Phone[]) => Promise<T>): Promise<T> {
    return await prisma.$transaction(async (tx) => {
      await lockUserFactors(tx, userId)
      const phones = await tx.phone.findMany({ where: { userId }, orderBy: { slot: 'asc' } })
      return await work(tx, phones)
    })
  }

  async function userOrThrow (userId: string) {
    const user = await prisma.user.findUnique({ where: { id: userId }, select: { id: true, email: true, role: true, organizationId: true } })
    if (user === null) throw new ApiError('not_found', `no user ${userId}`)
    return user
  }

  async function issueRecoveryCode (userId: string, email: string, context: RequestContext): Promise<IssuedRecoveryCode> {
    const issued = await recoveryCode.issue(userId)
    await events.record('recovery_code.regenerated', userId, context)
    return {
      recoveryCode: issued.code,
      recoveryKit: recoveryKit({ email, code: issued.code, issuedAt: issued.createdAt, supportContact: deps.supportContact })
    }
  }

  function notice (userId: string, phone: Phone | undefined | null, kind: NoticeKind) {
    return notifier.notify(userId, phone ?? null, kind)
  }

  return {
    async startVerification (userId, input, context) {
      const user = await userOrThrow(userId)
      const number = normalisePhoneNumber(input.phoneNumber, deps.defaultCountry, deps.allowedCountries)
      const numberIndex = secrets.blindIndex('phone', number.e164)
      const phones = await prisma.phone.findMany({ where: { userId }, select: { numberIndex: true } })
      if (phones.some((phone) => phone.numberIndex === numberIndex)) {
        throw new ApiError('phone_already_verified', 'this number is already verified for the user')
      }
      if (phones.length >= MAX_PHONES_PER_USER) {
        throw new ApiError('phone_limit_reached', `a user can have at most ${MAX_PHONES_PER_USER} phones; remove one first`)
      }
      const channel = input.channel ?? 'sms'
      const id = randomUUID()
      const numberCipher = secrets.encrypt(number.e164)
      const expiresAt = new Date(Date.now() + OTP_TTL_MS)
      await prisma.otpChallenge.create({
        data: {
          id,
          userId,
          purpose: 'phone',
          expiresAt,
          pendingNumberCipher: numberCipher,
          pendingNumberIndex: numberIndex,
          pendingMasked: number.masked,
          pendingLabel: input.label ?? null,
          channel,
          ip: context.ip,
          userAgent: context.userAgent
        }
      })
      try {
        await phoneCode.send(id, userId, channel, { id: null, numberCipher, masked: number.masked }, { organizationId: user.organizationId, clientIp: context.ip })
      } catch (err) {
        await prisma.otpChallenge.update({ where: { id }, data: { closedAt: new Date(), closedReason: 'delivery_failed' } })
        throw err
      }
      await events.record('phone.verification_started', userId, context, { phone: number.masked, channel })
      return { verificationId: id, expiresAt: expiresAt.toISOString(), channel, phone: { masked: number.masked } }
    },

    async verify (userId, input, context) {
      const user = await userOrThrow(userId)
      const challenge = await prisma.otpChallenge.findFirst({ where: { id: input.verificationId, userId, purpose: 'phone' } })
      if (challenge === null) throw new ApiError('not_found', 'no such verification for this user')
      const check = await phoneCode.check(challenge, input.code)
      if (check.outcome === 'wrong') {
        await events.record('code.failed', userId, context, { purpose: 'phone', attemptsRemaining: check.attemptsRemaining })
        throw new ApiError('invalid_code', 'the code is wrong', { attemptsRemaining: check.attemptsRemaining })
      }
      if (check.outcome !== 'accepted') throw new ApiError('verification_expired', 'this verification is over; start a new one')

      const { phone, previousPrimary } = await withUserPhones(userId, async (tx, phones) => {
        if (phones.some((p) => p.numberIndex === challenge.pendingNumberIndex)) {
          throw new ApiError('phone_already_verified', 'this number is already verified for the user')
        }
        const taken = new Set(phones.map((p) => p.slot))
        const slot = [1, 2, 3].slice(0, MAX_PHONES_PER_USER).find((s) => !taken.has(s))
        if (slot === undefined) throw new ApiError('phone_limit_reached', `a user can have at most ${MAX_PHONES_PER_USER} phones; remove one first`)
        const created = await tx.phone.create({
          data: {
            id: randomUUID(),
            userId,
            slot,
            numberCipher: challenge.pendingNumberCipher as string,
            numberIndex: challenge.pendingNumberIndex as string,
            masked: challenge.pendingMasked as string,
            label: challenge.pendingLabel,
            channel: challenge.channel ?? 'sms',
            primary: phones.length === 0
          }
        })
        return { phone: created, previousPrimary: phones.find((p) => p.primary) }
      })
      await events.record('phone.verified', userId, context, { phoneId: phone.id, phone: phone.masked })
      const issued = await issueRecoveryCode(userId, user.email, context)
      await notice(userId, previousPrimary, 'phone_added')
      return { phone: phoneView(phone), ...issued }
    },

    async list (userId) {
      await userOrThrow(userId)
      const phones = await prisma.phone.findMany({ where: { userId }, orderBy: { slot: 'asc' } })
      return phones.map(phoneView)
    },

    async update (userId, phoneId, changes, context) {
      await userOrThrow(userId)
      const { phone, previousPrimary } = await withUserPhones(userId, async (tx, phones) => {
        const target = phones.find((p) => p.id === phoneId)
        if (target === undefined) throw new ApiError('not_found', `no phone ${phoneId} for this user`)
        const previous = phones.find((p) => p.primary)
        const becomesPrimary = changes.primary === true && !target.primary
        if (becomesPrimary) await tx.phone.updateMany({ where: { userId, primary: true }, data: { primary: false } })
        const updated = await tx.phone.update({
          where: { id: phoneId },
          data: {
            ...(changes.label === undefined ? {} : { label: changes.label }),
            ...(becomesPrimary ? { primary: true } : {})
          }
        })
        return { phone: updated, previousPrimary: becomesPrimary ? previous : undefined }
      })
      await events.record('phone.updated', userId, context, { phoneId, primary: phone.primary })
      if (previousPrimary !== undefined) await notice(userId, previousPrimary, 'primary_changed')
      return phoneView(phone)
    },

    async remove (userId, phoneId, context) {
      const user = await userOrThrow(userId)
      const userPolicy = await policy.forUser(user)
      const required = rolesRequire(userPolicy, user.role)
      const { allowedMethods } = userPolicy
      const { removed, previousPrimary } = await withUserPhones(userId, async (tx, phones) => {
        const target = phones.find((p) => p.id === phoneId)
        if (target === undefined) throw new ApiError('not_found', `no phone ${phoneId} for this user`)
        const remaining = phones.filter((p) => p.id !== phoneId)
        const left = { phones: remaining.length, totpEnabled: await totpEnabledIn(tx, userId) }
        assertMayRemove(required, allowedMethods, 'phone', left, allowedMethods.includes('totp')
          ? 'add another phone or an authenticator app before removing the last phone'
          : 'add another phone before removing the last one')
        await tx.phone.delete({ where: { id: phoneId } })
        const [next] = remaining
        if (target.primary && next !== undefined) await tx.phone.update({ where: { id: next.id }, data: { primary: true } })
        // Without any second factor a recovery code has nothing to stand in for.
        if (!hasSecondFactor(left)) await tx.recoveryCode.deleteMany({ where: { userId } })
        return { removed: target, previousPrimary: phones.find((p) => p.primary) }
      })
      await events.record('phone.removed', userId, context, { phoneId, phone: removed.masked })
      await notice(userId, previousPrimary, 'phone_removed')
    },

    async regenerateRecoveryCode (userId, context) {
      const user = await userOrThrow(userId)
      const phones = await prisma.phone.count({ where: { userId } })
      if (!hasSecondFactor({ phones, totpEnabled: await totpEnabledIn(prisma, userId) })) throw new ApiError('two_factor_not_enabled', 'the user has no second factor to recover')
      return await issueRecoveryCode(userId, user.email, context)
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance { phones: Phones }
}

export default fp(async (fastify) => {
  fastify.decorate('phones', createPhones({
    prisma: fastify.prisma,
    secrets: fastify.secrets,
    phoneCode: fastify.secondFactors.phoneCode,
    recoveryCode: fastify.secondFactors.recoveryCode,
    notifier: fastify.notifier,
    events: fastify.events,
    policy: fastify.policy,
    defaultCountry: fastify.config.DEFAULT_PHONE_COUNTRY,
    allowedCountries: fastify.config.ALLOWED_PHONE_COUNTRIES,
    supportContact: fastify.config.SUPPORT_CONTACT
  }))
}, { name: 'phones', dependencies: ['database', 'second-factors', 'notifier', 'events', 'policy'] })
