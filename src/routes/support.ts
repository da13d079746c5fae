import { Type } from 'typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ApiError } from '../lib/errors.js'
import { EVENTS_PAGE_MAX } from '../lib/limits.js'
import { requestContext } from '../plugins/app/auth.js'
import { Id, Reason, Timestamp, User, UserIdParams, problems } from './schemas.js'

const SecurityEvent = Type.Object({
  id: Type.String(),
  type: Type.String(),
  createdAt: Timestamp,
  ip: Type.Union([Type.String(), Type.Null()]),
  userAgent: Type.Union([Type.String(), Type.Null()]),
  details: Type.Object({}, { additionalProperties: true })
})

/** Contract section 5 (scope `admin`): what support does for a user who called in. */
const support: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.addHook('onRequest', fastify.requireScope('admin'))

  fastify.post('/v1/users/:userId/unlock', {
    schema: { tags: ['support'], summary: 'Unlock an account and clear its counters', params: UserIdParams, body: Reason, response: { 200: User, ...problems('not_found') } }
  }, async (request) => await fastify.support.unlock(request.params.userId, request.body.reason, requestContext(request)))

  fastify.post('/v1/users/:userId/lock', {
    schema: { tags: ['support'], summary: 'Lock an account', params: UserIdParams, body: Reason, response: { 200: User, ...problems('not_found') } }
  }, async (request) => await fastify.support.lock(request.params.userId, request.body.reason, requestContext(request)))

  fastify.delete('/v1/users/:userId/two-factor', {
    schema: {
      tags: ['support'],
      summary: 'Remove every second factor (phones, recovery code) so the user can enrol again',
      params: UserIdParams,
      body: Reason,
      response: { 204: Type.Null(), ...problems('not_found') }
    }
  }, async (request, reply) => {
    await fastify.support.resetTwoFactor(request.params.userId, request.body.reason, requestContext(request))
    return await reply.code(204).send(null)
  })

  fastify.get('/v1/users/:userId/events', {
    schema: {
      tags: ['support'],
      summary: 'Security events, newest first',
      params: UserIdParams,
      querystring: Type.Object({
        limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$', description: `1 to ${EVENTS_PAGE_MAX}, default 50` })),
        before: Type.Optional(Id)
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ items: Type.Array(SecurityEvent) }), ...problems('not_found') }
    }
  }, async (request) => {
    const limit = Number(request.query.limit ?? 50)
    if (limit < 1 || limit > EVENTS_PAGE_MAX) throw new ApiError('invalid_request', `querystring.limit must be from 1 to ${EVENTS_PAGE_MAX}`)
    await fastify.users.assertExists(request.params.userId)
    const { before } = request.query
    // An unknown cursor used to be ignored, answering the first page again: a client paging
    // with `before` would then loop forever. It is a mistake in the request, so say so.
    if (before !== undefined && await fastify.prisma.securityEvent.count({ where: { id: before, userId: request.params.userId } }) === 0) {
      throw new ApiError('invalid_request', 'querystring.before is not an event of this user')
    }
    const items = await fastify.events.list(request.params.userId, { limit, before: request.query.before })
    return { items: items.map((event) => ({ ...event, createdAt: event.createdAt.toISOString(), details: (event.details ?? {}) as Record<string, unknown> })) }
  })
}

export default support
