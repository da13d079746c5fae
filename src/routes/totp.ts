import { Type } from 'typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { requestContext } from '../plugins/app/auth.js'
import { Id, IssuedRecoveryCode, OtpCode, Timestamp, UserIdParams, problems } from './schemas.js'

const Enabled = Type.Object({ enabledAt: Timestamp })

/** Contract section 4: an authenticator app (Google Authenticator, Duo Mobile, 1Password...), scope `users`. */
const totp: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.addHook('onRequest', fastify.requireScope('users'))

  fastify.post('/v1/users/:userId/totp', {
    schema: {
      tags: ['totp'],
      summary: 'Start setting up an authenticator app: show the QR code (or the secret) to the user',
      description: 'Nothing changes on the account until a first code confirms the enrolment (`/totp/verify`) before `expiresAt`. ' +
        'Starting again replaces a pending enrolment; with an app already enabled, the old app keeps working until the new one is confirmed.',
      params: UserIdParams,
      response: {
        201: Type.Object({
          enrollmentId: Type.String(),
          secret: Type.String({ description: 'base32, for typing into the app by hand; shown this once', examples: ['JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'] }),
          otpauthUri: Type.String({ examples: ['otpauth://totp/Studio%20Pro:ana%40studio.example?issuer=Studio%20Pro&secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&algorithm=SHA1&digits=6&period=30'] }),
          qrCodeSvg: Type.String({ description: 'the otpauth URI as an SVG QR code' }),
          expiresAt: Timestamp
        }),
        ...problems('not_found')
      }
    }
  }, async (request, reply) => {
    return await reply.code(201).send(await fastify.totpSettings.enrol(request.params.userId, requestContext(request)))
  })

  fastify.post('/v1/users/:userId/totp/verify', {
    schema: {
      tags: ['totp'],
      summary: 'Confirm the authenticator app with its current code; the first method of a user comes with a recovery code',
      params: UserIdParams,
      body: Type.Object({ enrollmentId: Id, code: OtpCode }, { additionalProperties: false, examples: [{ enrollmentId: '3b0c8c1e-5d1a-4d8e-9a51-0f6f1f9a2b7c', code: '123456' }] }),
      response: {
        200: Type.Object({
          totp: Enabled,
          recoveryCode: Type.Optional(IssuedRecoveryCode.recoveryCode),
          recoveryKit: Type.Optional(IssuedRecoveryCode.recoveryKit)
        }),
        ...problems('not_found', 'invalid_code', 'verification_expired')
      }
    }
  }, async (request) => await fastify.totpSettings.confirm(request.params.userId, request.body, requestContext(request)))

  fastify.delete('/v1/users/:userId/totp', {
    schema: {
      tags: ['totp'],
      summary: 'Remove the authenticator app (and any pending enrolment)',
      params: UserIdParams,
      response: { 204: Type.Null(), ...problems('not_found', 'two_factor_required') }
    }
  }, async (request, reply) => {
    await fastify.totpSettings.remove(request.params.userId, requestContext(request))
    return await reply.code(204).send(null)
  })
}

export default totp
