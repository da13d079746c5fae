import fp from 'fastify-plugin'
import type { Method } from '../../second-factor/method.js'

export interface Policy {
  requiredRoles: string[]
  allowedMethods: Array<Exclude<Method, 'recovery'>>
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

export interface PolicyService {
  forUser (user: { organizationId: string | null }): Policy
  requires (user: { role: string, organizationId: string | null }): boolean
}

// Per-organization policies arrive with the policy routes; until then every user gets the default.
export function createPolicy (defaults: Policy = DEFAULT_POLICY): PolicyService {
  return {
    forUser: () => defaults,
    requires (user) {
      const { requiredRoles } = defaults
      return requiredRoles.includes('*') || requiredRoles.includes(user.role)
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance { policy: PolicyService }
}

export default fp(async (fastify) => {
  fastify.decorate('policy', createPolicy())
}, { name: 'policy' })
