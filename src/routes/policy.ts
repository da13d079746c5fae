import { Type } from 'typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { POLICY_MAX_DAYS } from '../lib/limits.js'
import { requestContext } from '../plugins/app/auth.js'
import { Role, problems } from './schemas.js'

const PolicyMethod = Type.Union([Type.Literal('sms'), Type.Literal('voice'), Type.Literal('totp')])
const Days = (description: string) => Type.Integer({ minimum: 0, maximum: POLICY_MAX_DAYS, description })

const Policy = Type.Object({
  requiredRoles: Type.Union([
    Type.Tuple([Type.Literal('*')]),
    Type.Array(Role, { maxItems: 50, uniqueItems: true })
  ], { description: 'roles that must use two-step sign-in; ["*"] for every role, [] for none' }),
  allowedMethods: Type.Array(PolicyMethod, { minItems: 1, maxItems: 3, uniqueItems: true, description: 'second factors the users may use; the recovery code always works' }),
  rememberDeviceDays: Days('how long a remembered device skips the second factor; 0 turns remembered devices off'),
  enrollmentGraceDays: Days('days a newly required user may still log in with the password alone'),
  smsDailyLimit: Type.Integer({ minimum: 0, maximum: 100_000_000, description: 'texts and calls per UTC day for the organization\'s users, enrolment codes included, security notices not counted; 0 sends none' })
}, { additionalProperties: false })

const OrganizationParams = Type.Object({ organizationId: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false })

/** Contract section 6 (scope `users`): a studio's two-factor rules. */
const policy: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.addHook('onRequest', fastify.requireScope('users'))

  fastify.get('/v1/organizations/:organizationId/policy', {
    schema: {
      tags: ['policy'],
      summary: "The organization's two-factor policy (the configured default until one is set)",
      params: OrganizationParams,
      response: { 200: Policy, ...problems() }
    }
  }, async (request) => await fastify.policy.get(request.params.organizationId))

  fastify.put('/v1/organizations/:organizationId/policy', {
    schema: {
      tags: ['policy'],
      summary: "Set the organization's two-factor policy (every field)",
      params: OrganizationParams,
      body: Policy,
      response: { 200: Policy, ...problems() }
    }
  }, async (request) => {
    const saved = await fastify.policy.put(request.params.organizationId, request.body)
    await fastify.events.record('policy.updated', null, requestContext(request), {
      organizationId: request.params.organizationId,
      requiredRoles: saved.requiredRoles,
      allowedMethods: saved.allowedMethods,
      rememberDeviceDays: saved.rememberDeviceDays,
      enrollmentGraceDays: saved.enrollmentGraceDays,
      smsDailyLimit: saved.smsDailyLimit
    })
    return saved
  })
}

export default policy
