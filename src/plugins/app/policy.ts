import fp from 'fastify-plugin'
import { Prisma, type PrismaClient } from '../../generated/prisma/client.js'
import type { Method } from '../../second-factor/method.js'

export type PolicyMethod = Exclude<Method, 'recovery'>

export interface Policy {
  requiredRoles: string[]
  allowedMethods: PolicyMethod[]
  rememberDeviceDays: number
  enrollmentGraceDays: number
  smsDailyLimit: number
}

/** Contract section 6: with no organization policy, 2FA is required for every role, at once. */
export const DEFAULT_POLICY: Policy = {
  requiredRoles: ['*'],
  allowedMethods: ['sms', 'voice', 'totp'],
  rememberDeviceDays: 30,
  enrollmentGraceDays: 0,
  smsDailyLimit: 1000
}

const DAY_MS = 24 * 60 * 60_000
const METHOD_ORDER: PolicyMethod[] = ['sms', 'voice', 'totp']

/** What the policy says of one user who has, or has not, a usable second factor. */
export interface Requirement {
  required: boolean
  /** Set while a required user has no second factor and the policy grants a grace period. */
  enrollmentDueBy: Date | null
}

export interface PolicyUser {
  id: string
  role: string
  organizationId: string | null
  twoFactorRequiredSince: Date | null
}

export interface PolicyService {
  /** The organization's policy, or the configured default when it set none. */
  get (organizationId: string | null): Promise<Policy>
  put (organizationId: string, policy: Policy): Promise<Policy>
  forUser (user: { organizationId: string | null }): Promise<Policy>
  /** The same policy as SQL over an organization id, for a statement that decides a whole request in one round trip. */
  inSql (organizationId: Prisma.Sql): { allowedMethods: Prisma.Sql, rememberDeviceDays: Prisma.Sql }
  /**
   * The verdict for a user, recording when the requirement first applied to a user with no
   * second factor (the start of the grace period). A role the policy no longer requires
   * clears that start, so a later requirement gets a grace period of its own.
   */
  requirement (user: PolicyUser, enrolled: boolean, policy?: Policy): Promise<Requirement>
}

export function rolesRequire (policy: Policy, role: string): boolean {
  return policy.requiredRoles.includes('*') || policy.requiredRoles.includes(role)
}

export function createPolicy ({ prisma, defaults = DEFAULT_POLICY }: { prisma: PrismaClient, defaults?: Policy }): PolicyService {
  async function get (organizationId: string | null): Promise<Policy> {
    if (organizationId === null) return defaults
    const row = await prisma.organizationPolicy.findUnique({ where: { organizationId } })
    if (row === null) return defaults
    return {
      requiredRoles: row.requiredRoles,
      allowedMethods: METHOD_ORDER.filter((m) => row.allowedMethods.includes(m)),
      rememberDeviceDays: row.rememberDeviceDays,
      enrollmentGraceDays: row.enrollmentGraceDays,
      smsDailyLimit: row.smsDailyLimit
    }
  }

  async function requiredSince (userId: string, known: Date | null): Promise<Date> {
    if (known !== null) return known
    // Only the first writer sets it: a concurrent login cannot restart someone's grace period.
    const rows = await prisma.$queryRaw<Array<{ since: Date }>>`
      UPDATE users SET two_factor_required_since = now()
       WHERE id = ${userId} AND two_factor_required_since IS NULL
      RETURNING two_factor_required_since AS since`
    if (rows[0] !== undefined) return rows[0].since
    const user = await prisma.user.findUnique({ where: { id: userId }, select: { twoFactorRequiredSince: true } })
    return user?.twoFactorRequiredSince ?? new Date()
  }

  return {
    get,
    async put (organizationId, policy) {
      const data = {
        requiredRoles: policy.requiredRoles.includes('*') ? ['*'] : [...new Set(policy.requiredRoles)],
        allowedMethods: METHOD_ORDER.filter((m) => policy.allowedMethods.includes(m)),
        rememberDeviceDays: policy.rememberDeviceDays,
        enrollmentGraceDays: policy.enrollmentGraceDays,
        smsDailyLimit: policy.smsDailyLimit
      }
      await prisma.organizationPolicy.upsert({ where: { organizationId }, create: { organizationId, ...data }, update: data })
      return await get(organizationId)
    },
    forUser: async (user) => await get(user.organizationId),
    inSql (organizationId) {
      // No row (or no organization) means the defaults, exactly as get() reads it.
      return {
        allowedMethods: Prisma.sql`COALESCE((SELECT p.allowed_methods FROM organization_policies AS p WHERE p.organization_id = ${organizationId}), ${defaults.allowedMethods}::text[])`,
        rememberDeviceDays: Prisma.sql`COALESCE((SELECT p.remember_device_days FROM organization_policies AS p WHERE p.organization_id = ${organizationId}), ${defaults.rememberDeviceDays}::int)`
      }
    },
    async requirement (user, enrolled, policy) {
      const effective = policy ?? await get(user.organizationId)
      const required = rolesRequire(effective, user.role)
      if (!required) {
        if (user.twoFactorRequiredSince !== null) {
          await prisma.user.updateMany({ where: { id: user.id, twoFactorRequiredSince: { not: null } }, data: { twoFactorRequiredSince: null } })
        }
        return { required, enrollmentDueBy: null }
      }
      if (enrolled) return { required, enrollmentDueBy: null }
      const since = await requiredSince(user.id, user.twoFactorRequiredSince)
      if (effective.enrollmentGraceDays === 0) return { required, enrollmentDueBy: null }
      return { required, enrollmentDueBy: new Date(since.getTime() + effective.enrollmentGraceDays * DAY_MS) }
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance { policy: PolicyService }
}

export default fp(async (fastify) => {
  const { config } = fastify
  fastify.decorate('policy', createPolicy({
    prisma: fastify.prisma,
    defaults: {
      requiredRoles: config.DEFAULT_REQUIRED_ROLES,
      allowedMethods: config.DEFAULT_ALLOWED_METHODS,
      rememberDeviceDays: config.DEFAULT_REMEMBER_DEVICE_DAYS,
      enrollmentGraceDays: config.DEFAULT_ENROLLMENT_GRACE_DAYS,
      smsDailyLimit: config.DEFAULT_SMS_DAILY_LIMIT
    }
  }))
}, { name: 'policy', dependencies: ['config', 'database'] })
