import { Type } from 'typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { requestContext } from '../plugins/app/auth.js'
import { ApiError } from '../lib/errors.js'
import { createRefusedConnections } from '../lib/refused-connections.js'
import { Channel, ClientContext, Email, Id, IssuedRecoveryCode, MaskedPhone, Method, OtpCode, Password, Timestamp, problems } from './schemas.js'

const ChallengeParams = Type.Object({ challengeId: Id }, { additionalProperties: false })
const Delivery = Type.Object({ channel: Channel, phone: MaskedPhone, resendAvailableAt: Timestamp })
const Amr = Type.Array(Type.String(), { description: 'RFC 8176 words: pwd, sms, tel, otp, device, recovery' })
const Authenticated = {
  status: Type.Literal('authenticated'),
  userId: Type.String(),
  amr: Amr,
  deviceToken: Type.Optional(Type.String()),
  deviceTokenExpiresAt: Type.Optional(Timestamp)
}

const LoginResult = Type.Union([
  Type.Object({ ...Authenticated, enrollmentDueBy: Type.Optional(Timestamp) }),
  Type.Object({
    status: Type.Literal('challenge_required'),
    challengeId: Type.String(),
    expiresAt: Timestamp,
    methods: Type.Array(Method),
    delivery: Type.Union([Delivery, Type.Null()]),
    deliveryError: Type.Optional(Type.Literal('delivery_failed', { description: 'the first code could not be sent; offer a resend or another method' }))
  }),
  Type.Object({ status: Type.Literal('enrollment_required'), userId: Type.String() })
])

const OVERLOAD_NOTE = 'While too many password checks are in progress this answers 503 `overloaded` with `Retry-After` at once, ' +
  'and the connection it came on is not read again until a check could be admitted, for `Retry-After` seconds at most: ' +
  'a client that waits `Retry-After` before its next login, or sends other requests on other connections meanwhile, never notices.'

/** Contract section 3 (scope `login`): password first, then one second factor. */
const logins: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.addHook('onRequest', fastify.requireScope('login'))
  // While the hash gate is full a password check is refused before its body is
  // parsed and validated: in a flood that is most of what each refused request would cost.
  const refuseWhileHashingIsFull = async () => { fastify.passwords.refuseIfFull() }
  // And the connection it came on is not read again until such a check could be admitted.
  const refusedConnections = createRefusedConnections({
    whenRoom: fastify.passwords.whenRoom,
    places: () => fastify.passwords.places,
    maxPauseMs: fastify.passwords.retryAfterSeconds * 1000
  })
  const pauseIfOverloaded = async (_request: FastifyRequest, reply: FastifyReply, error: Error) => {
    if (error instanceof ApiError && error.code === 'overloaded') refusedConnections.pauseAfter(reply.raw)
  }
  fastify.addHook('preClose', async () => { refusedConnections.resumeAll() })

  fastify.post('/v1/logins', {
    onRequest: refuseWhileHashingIsFull,
    onError: pauseIfOverloaded,
    preValidation: fastify.checkReportedIp,
    preHandler: fastify.limitPerIp('login'),
    schema: {
      tags: ['login'],
      summary: 'Check the password and start the second step',
      description: OVERLOAD_NOTE,
      body: Type.Object({
        email: Email,
        password: Password,
        deviceToken: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
        context: ClientContext
      }, { additionalProperties: false }),
      response: { 200: LoginResult, ...problems('invalid_credentials', 'account_locked', 'too_many_attempts', 'overloaded') }
    }
  }, async (request) => await fastify.logins.start(request.body, requestContext(request, request.body.context)))

  fastify.get('/v1/logins/:challengeId', {
    schema: {
      tags: ['login'],
      summary: "A login challenge's state and its latest code delivery (updated by Twilio's status callbacks)",
      description: 'When `delivery.status` is `undelivered` or `failed`, offer a call (`send` with channel `voice`) or another method.',
      params: ChallengeParams,
      response: {
        200: Type.Object({
          challengeId: Type.String(),
          status: Type.Union([Type.Literal('open'), Type.Literal('completed'), Type.Literal('closed'), Type.Literal('expired')]),
          expiresAt: Timestamp,
          delivery: Type.Union([Type.Object({
            channel: Channel,
            phone: MaskedPhone,
            status: Type.String({ description: "queued, sent, delivered, undelivered, failed (Twilio's words), or failed when the provider refused it" }),
            errorCode: Type.Union([Type.String(), Type.Null()]),
            updatedAt: Timestamp
          }), Type.Null()])
        }),
        ...problems('not_found')
      }
    }
  }, async (request) => await fastify.logins.status(request.params.challengeId))

  fastify.post('/v1/logins/:challengeId/send', {
    preValidation: fastify.checkReportedIp,
    preHandler: fastify.limitPerIp('send'),
    schema: {
      tags: ['login'],
      summary: 'Send (again) a code by SMS or call, to the primary or a backup phone',
      params: ChallengeParams,
      body: Type.Object({ channel: Channel, phoneId: Type.Optional(Id), context: ClientContext }, { additionalProperties: false }),
      response: {
        202: Delivery,
        ...problems('not_found', 'resend_too_soon', 'send_limit_reached', 'challenge_expired', 'challenge_closed', 'account_locked', 'delivery_failed', 'invalid_phone_number', 'phone_country_not_allowed')
      }
    }
  }, async (request, reply) => {
    return await reply.code(202).send(await fastify.logins.send(request.params.challengeId, request.body, requestContext(request, request.body.context)))
  })

  fastify.post('/v1/logins/:challengeId/verify', {
    preValidation: fastify.checkReportedIp,
    preHandler: fastify.limitPerIp('verify'),
    schema: {
      tags: ['login'],
      summary: 'Complete the login with a code',
      params: ChallengeParams,
      body: Type.Object({
        code: OtpCode,
        method: Type.Optional(Type.Union([Type.Literal('sms'), Type.Literal('voice'), Type.Literal('totp')])),
        rememberDevice: Type.Optional(Type.Boolean()),
        context: ClientContext
      }, { additionalProperties: false }),
      response: {
        200: Type.Object(Authenticated),
        ...problems('not_found', 'invalid_code', 'challenge_expired', 'challenge_closed', 'account_locked', 'too_many_attempts')
      }
    }
  }, async (request) => await fastify.logins.verify(request.params.challengeId, request.body, requestContext(request, request.body.context)))

  fastify.post('/v1/logins/:challengeId/recovery', {
    // No early refusal: a recovery code is an HMAC, not an argon2 hash, so recovery works
    // through a password flood. Only a code stored by an older version is argon2, and its
    // check may still be refused by the gate, hence the pause.
    onError: pauseIfOverloaded,
    preValidation: fastify.checkReportedIp,
    preHandler: fastify.limitPerIp('verify'),
    schema: {
      tags: ['login'],
      summary: 'Complete the login with the recovery code; answers a new one',
      params: ChallengeParams,
      body: Type.Object({ recoveryCode: Type.String({ minLength: 1, maxLength: 64 }), context: ClientContext }, { additionalProperties: false }),
      response: {
        200: Type.Object({ ...Authenticated, ...IssuedRecoveryCode }),
        ...problems('not_found', 'invalid_recovery_code', 'account_locked', 'challenge_expired', 'challenge_closed', 'too_many_attempts', 'overloaded')
      }
    }
  }, async (request) => await fastify.logins.recover(request.params.challengeId, request.body, requestContext(request, request.body.context)))
}

export default logins
