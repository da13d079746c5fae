import fp from 'fastify-plugin'
import { randomUUID } from 'node:crypto'
import type { Phone, PrismaClient } from '../../generated/prisma/client.js'
import { revokeAllDevices } from '../../lib/device-tokens.js'
import { ApiError } from '../../lib/errors.js'
import { isUniqueViolation, prismaCode } from '../../lib/prisma-errors.js'
import type { RequestContext } from '../../lib/request-context.js'
import type { EnrolledFactors, Method, SecondFactor } from '../../second-factor/method.js'
import type { Events } from './events.js'
import type { Passwords } from './passwords.js'
import type { PolicyService } from './policy.js'

export function normaliseEmail (email: string): string {
  return email.trim().toLowerCase()
}

export function phoneView (phone: Phone) {
  return {
    id: phone.id,
    masked: phone.masked,
    label: phone.label,
    channel: phone.channel === 'voice' ? 'voice' as const : 'sms' as const,
    primary: phone.primary,
    verifiedAt: phone.verifiedAt.toISOString()
  }
}

export type PhoneView = ReturnType<typeof phoneView>

export interface UserView {
  id: string
  email: string
  role: string
  organizationId: string | null
  createdAt: string
  locked: boolean
  lockedReason: string | null
  twoFactor: {
    enabled: boolean
    required: boolean
    enrollmentDueBy: string | null
    methods: Method[]
    phones: PhoneView[]
    totp: { enabledAt: string } | null
    recoveryCode: { createdAt: string } | null
  }
}

export interface NewUser { email: string, password: string, role?: string | undefined, organizationId?: string | null | undefined }
export interface UserChanges { email?: string | undefined, role?: string | undefined, organizationId?: string | null | undefined }

export interface Users {
  create (input: NewUser, context: RequestContext): Promise<UserView>
  view (userId: string): Promise<UserView>
  findByEmail (email: string): Promise<UserView[]>
  update (userId: string, changes: UserChanges, context: RequestContext): Promise<UserView>
  setPassword (userId: string, password: string, context: RequestContext): Promise<void>
  remove (userId: string, context: RequestContext): Promise<void>
  /** The methods a user can complete a challenge with, from every second-factor module. */
  methodsFor (factors: EnrolledFactors): Method[]
  /** Throws 404 not_found unless the user exists. */
  assertExists (userId: string): Promise<void>
}

export interface UsersDeps {
  prisma: PrismaClient
  passwords: Passwords
  events: Events
  policy: PolicyService
  factors: SecondFactor[]
}

const includeFactors = {
  phones: { orderBy: { slot: 'asc' as const } },
  recoveryCode: { select: { createdAt: true } }
}

export function createUsers ({ prisma, passwords, events, policy, factors }: UsersDeps): Users {
  const order: Method[] = ['sms', 'voice', 'totp', 'recovery']
  function methodsFor (enrolled: EnrolledFactors): Method[] {
    const found = new Set(factors.flatMap((factor) => factor.availableFor(enrolled)))
    return order.filter((method) => found.has(method))
  }

  async function view (userId: string): Promise<UserView> {
    const user = await prisma.user.findUnique({ where: { id: userId }, include: includeFactors })
    if (user === null) throw new ApiError('not_found', `no user ${userId}`)
    const methods = methodsFor({ phones: user.phones, totpEnabled: false, hasRecoveryCode: user.recoveryCode !== null })
    const userPolicy = await policy.forUser(user)
    const usable = methods.some((method) => method !== 'recovery' && (userPolicy.allowedMethods as Method[]).includes(method))
    const verdict = await policy.requirement(user, usable, userPolicy)
    return {
      id: user.id,
      email: user.email,
      role: user.role,
      organizationId: user.organizationId,
      createdAt: user.createdAt.toISOString(),
      locked: user.lockedAt !== null,
      lockedReason: user.lockedReason,
      twoFactor: {
        enabled: methods.some((method) => method !== 'recovery'),
        required: verdict.required,
        enrollmentDueBy: verdict.enrollmentDueBy?.toISOString() ?? null,
        methods,
        phones: user.phones.map(phoneView),
        totp: null,
        recoveryCode: user.recoveryCode === null ? null : { createdAt: user.recoveryCode.createdAt.toISOString() }
      }
    }
  }

  return {
    methodsFor,
    view,
    async assertExists (userId) {
      const found = await prisma.user.findUnique({ where: { id: userId }, select: { id: true } })
      if (found === null) throw new ApiError('not_found', `no user ${userId}`)
    },
    async create (input, context) {
      const email = normaliseEmail(input.email)
      passwords.assertStrong(input.password, email)
      const passwordHash = await passwords.hash(input.password)
      const id = randomUUID()
      try {
        await prisma.user.create({
          data: { id, email, passwordHash, role: input.role ?? 'staff', organizationId: input.organizationId ?? null }
        })
      } catch (err) {
        if (isUniqueViolation(err)) throw new ApiError('email_taken', 'email is already used by another user')
        throw err
      }
      await events.record('user.created', id, context, { role: input.role ?? 'staff' })
      return await view(id)
    },
    async findByEmail (email) {
      const user = await prisma.user.findUnique({ where: { email: normaliseEmail(email) }, select: { id: true } })
      return user === null ? [] : [await view(user.id)]
    },
    async update (userId, changes, context) {
      const data = {
        ...(changes.email === undefined ? {} : { email: normaliseEmail(changes.email) }),
        ...(changes.role === undefined ? {} : { role: changes.role }),
        ...(changes.organizationId === undefined ? {} : { organizationId: changes.organizationId })
      }
      try {
        await prisma.user.update({ where: { id: userId }, data })
      } catch (err) {
        if (isUniqueViolation(err)) throw new ApiError('email_taken', 'email is already used by another user')
        if (prismaCode(err) === 'P2025') throw new ApiError('not_found', `no user ${userId}`)
        throw err
      }
      await events.record('user.updated', userId, context, { fields: Object.keys(data) })
      return await view(userId)
    },
    async setPassword (userId, password, context) {
      const user = await prisma.user.findUnique({ where: { id: userId }, select: { email: true } })
      if (user === null) throw new ApiError('not_found', `no user ${userId}`)
      passwords.assertStrong(password, user.email)
      const passwordHash = await passwords.hash(password)
      // A new password signs every remembered browser out: whoever knew the old one may hold one of them.
      const [{ count }, revoked] = await prisma.$transaction([
        prisma.user.updateMany({ where: { id: userId }, data: { passwordHash } }),
        revokeAllDevices(prisma, userId)
      ])
      if (count === 0) throw new ApiError('not_found', `no user ${userId}`)
      await events.record('password.changed', userId, context)
      if (revoked.count > 0) await events.record('device.revoked', userId, context, { all: true, count: revoked.count, reason: 'password_changed' })
    },
    async remove (userId) {
      const { count } = await prisma.user.deleteMany({ where: { id: userId } })
      if (count === 0) throw new ApiError('not_found', `no user ${userId}`)
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance { users: Users }
}

export default fp(async (fastify) => {
  fastify.decorate('users', createUsers({
    prisma: fastify.prisma,
    passwords: fastify.passwords,
    events: fastify.events,
    policy: fastify.policy,
    factors: [fastify.secondFactors.phoneCode, fastify.secondFactors.recoveryCode]
  }))
}, { name: 'users', dependencies: ['database', 'passwords', 'events', 'policy', 'second-factors'] })
