import { Type } from 'typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { requestContext } from '../plugins/app/auth.js'
import { Id, Timestamp, UserIdParams, problems } from './schemas.js'

const Device = Type.Object({
  id: Type.String(),
  userAgent: Type.Union([Type.String(), Type.Null()], { description: 'as the backend reported it when the device was remembered' }),
  createdAt: Timestamp,
  lastUsedAt: Type.Union([Timestamp, Type.Null()], { description: 'the last login that skipped the second factor with it; null if none yet' }),
  expiresAt: Timestamp
})
const DeviceParams = Type.Object({ userId: Id, deviceId: Id }, { additionalProperties: false })

/** Contract section 4 (scope `users`): the "remembered devices" list of the Security settings page. */
const devices: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.addHook('onRequest', fastify.requireScope('users'))

  fastify.get('/v1/users/:userId/devices', {
    schema: {
      tags: ['devices'],
      summary: "The user's remembered devices that can still skip the second factor, newest first",
      params: UserIdParams,
      response: { 200: Type.Object({ items: Type.Array(Device) }), ...problems('not_found') }
    }
  }, async (request) => ({ items: await fastify.devices.list(request.params.userId) }))

  fastify.delete('/v1/users/:userId/devices/:deviceId', {
    schema: {
      tags: ['devices'],
      summary: 'Forget one device: its next login asks for the second factor again',
      params: DeviceParams,
      response: { 204: Type.Null(), ...problems('not_found') }
    }
  }, async (request, reply) => {
    await fastify.devices.revoke(request.params.userId, request.params.deviceId, requestContext(request))
    return await reply.code(204).send(null)
  })

  fastify.delete('/v1/users/:userId/devices', {
    schema: {
      tags: ['devices'],
      summary: 'Forget every device of the user ("sign out everywhere else")',
      params: UserIdParams,
      response: { 204: Type.Null(), ...problems('not_found') }
    }
  }, async (request, reply) => {
    await fastify.devices.revokeAll(request.params.userId, requestContext(request), 'removed')
    return await reply.code(204).send(null)
  })
}

export default devices
