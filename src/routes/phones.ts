import { Type } from 'typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { PHONE_VERIFICATIONS_PER_HOUR } from '../lib/limits.js'
import { normalisePhoneNumber } from '../lib/phone-numbers.js'
import { requestContext } from '../plugins/app/auth.js'
import { Channel, Id, IssuedRecoveryCode, MaskedPhone, OtpCode, Phone, Timestamp, UserIdParams, problems } from './schemas.js'

const Label = Type.String({ minLength: 1, maxLength: 64 })
const PhoneParams = Type.Object({ userId: Id, phoneId: Id }, { additionalProperties: false })

/** Contract section 2: the Security settings page (scope `users`). */
const phones: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.addHook('onRequest', fastify.requireScope('users'))

  fastify.post('/v1/users/:userId/phones', {
    // A number that cannot be texted is refused (422) before the budget below is spent:
    // a user fumbling their number on the settings page must not be locked out for an hour.
    preHandler: async (request) => {
      normalisePhoneNumber(request.body.phoneNumber, fastify.config.DEFAULT_PHONE_COUNTRY, fastify.config.ALLOWED_PHONE_COUNTRIES)
    },
    config: {
      // Every verification is a paid SMS or call to a number the caller chose. Counted after
      // authentication, validation and the number check (the preHandler above runs first).
      rateLimit: {
        hook: 'preHandler',
        max: PHONE_VERIFICATIONS_PER_HOUR,
        timeWindow: 60 * 60_000,
        keyGenerator: (request) => `phone-verifications:${(request.params as { userId: string }).userId}`
      }
    },
    schema: {
      tags: ['phones'],
      summary: 'Start verifying a phone: the code goes to the new number',
      params: UserIdParams,
      body: Type.Object({
        phoneNumber: Type.String({ minLength: 1, maxLength: 32, examples: ['+14155550167', '(415) 555-0167'] }),
        label: Type.Optional(Label),
        channel: Type.Optional(Channel)
      }, { additionalProperties: false }),
      response: {
        202: Type.Object({ verificationId: Type.String(), expiresAt: Timestamp, channel: Channel, phone: MaskedPhone }),
        ...problems('not_found', 'invalid_phone_number', 'phone_country_not_allowed', 'phone_limit_reached', 'phone_already_verified', 'delivery_failed', 'send_limit_reached')
      }
    }
  }, async (request, reply) => {
    return await reply.code(202).send(await fastify.phones.startVerification(request.params.userId, request.body, requestContext(request)))
  })

  fastify.post('/v1/users/:userId/phones/verify', {
    schema: {
      tags: ['phones'],
      summary: 'Confirm a phone with its code; answers a new recovery code',
      params: UserIdParams,
      body: Type.Object({ verificationId: Id, code: OtpCode }, { additionalProperties: false }),
      response: {
        200: Type.Object({ phone: Phone, ...IssuedRecoveryCode }),
        ...problems('not_found', 'invalid_code', 'verification_expired', 'phone_limit_reached', 'phone_already_verified')
      }
    }
  }, async (request) => await fastify.phones.verify(request.params.userId, request.body, requestContext(request)))

  fastify.get('/v1/users/:userId/phones', {
    schema: { tags: ['phones'], summary: 'List verified phones', params: UserIdParams, response: { 200: Type.Object({ items: Type.Array(Phone) }), ...problems('not_found') } }
  }, async (request) => ({ items: await fastify.phones.list(request.params.userId) }))

  fastify.patch('/v1/users/:userId/phones/:phoneId', {
    schema: {
      tags: ['phones'],
      summary: 'Rename a phone or make it the primary one',
      params: PhoneParams,
      body: Type.Object({ label: Type.Optional(Type.Union([Label, Type.Null()])), primary: Type.Optional(Type.Literal(true)) }, { additionalProperties: false }),
      response: { 200: Phone, ...problems('not_found') }
    }
  }, async (request) => await fastify.phones.update(request.params.userId, request.params.phoneId, request.body, requestContext(request)))

  fastify.delete('/v1/users/:userId/phones/:phoneId', {
    schema: { tags: ['phones'], summary: 'Remove a phone', params: PhoneParams, response: { 204: Type.Null(), ...problems('not_found', 'two_factor_required') } }
  }, async (request, reply) => {
    await fastify.phones.remove(request.params.userId, request.params.phoneId, requestContext(request))
    return await reply.code(204).send(null)
  })

  fastify.post('/v1/users/:userId/recovery-code', {
    schema: {
      tags: ['phones'],
      summary: 'Replace the recovery code (the old one stops working)',
      params: UserIdParams,
      response: { 201: Type.Object(IssuedRecoveryCode), ...problems('not_found', 'two_factor_not_enabled') }
    }
  }, async (request, reply) => {
    return await reply.code(201).send(await fastify.phones.regenerateRecoveryCode(request.params.userId, requestContext(request)))
  })
}

export default phones
