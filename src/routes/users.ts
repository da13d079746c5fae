import { Type } from 'typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { requestContext } from '../plugins/app/auth.js'
import { Email, OrganizationId, Password, Role, User, UserIdParams, problems } from './schemas.js'

/** Contract section 1 (scope `users`). */
const users: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.addHook('onRequest', fastify.requireScope('users'))

  fastify.post('/v1/users', {
    schema: {
      tags: ['users'],
      summary: 'Create a user',
      body: Type.Object({ email: Email, password: Password, role: Type.Optional(Role), organizationId: Type.Optional(OrganizationId) }, { additionalProperties: false }),
      response: { 201: User, ...problems('email_taken', 'weak_password') }
    }
  }, async (request, reply) => {
    return await reply.code(201).send(await fastify.users.create(request.body, requestContext(request)))
  })

  fastify.get('/v1/users', {
    schema: {
      tags: ['users'],
      summary: 'Find users by email',
      querystring: Type.Object({ email: Email }, { additionalProperties: false }),
      response: { 200: Type.Object({ items: Type.Array(User) }), ...problems() }
    }
  }, async (request) => ({ items: await fastify.users.findByEmail(request.query.email) }))

  fastify.get('/v1/users/:userId', {
    schema: { tags: ['users'], summary: 'Read a user', params: UserIdParams, response: { 200: User, ...problems('not_found') } }
  }, async (request) => await fastify.users.view(request.params.userId))

  fastify.patch('/v1/users/:userId', {
    schema: {
      tags: ['users'],
      summary: 'Change a user',
      params: UserIdParams,
      body: Type.Object({ email: Type.Optional(Email), role: Type.Optional(Role), organizationId: Type.Optional(OrganizationId) }, { additionalProperties: false }),
      response: { 200: User, ...problems('not_found', 'email_taken') }
    }
  }, async (request) => await fastify.users.update(request.params.userId, request.body, requestContext(request)))

  fastify.put('/v1/users/:userId/password', {
    schema: {
      tags: ['users'],
      summary: 'Set a new password',
      params: UserIdParams,
      body: Type.Object({ password: Password }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...problems('not_found', 'weak_password') }
    }
  }, async (request, reply) => {
    await fastify.users.setPassword(request.params.userId, request.body.password, requestContext(request))
    return await reply.code(204).send(null)
  })

  fastify.delete('/v1/users/:userId', {
    schema: { tags: ['users'], summary: 'Delete a user', params: UserIdParams, response: { 204: Type.Null(), ...problems('not_found') } }
  }, async (request, reply) => {
    await fastify.users.remove(request.params.userId, requestContext(request))
    return await reply.code(204).send(null)
  })
}

export default users
