import { Type } from 'typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ApiError } from '../lib/errors.js'
import { problems } from './schemas.js'

const StatusCallback = Type.Object({
  MessageSid: Type.Optional(Type.String({ maxLength: 64 })),
  MessageStatus: Type.Optional(Type.String({ maxLength: 32 })),
  CallSid: Type.Optional(Type.String({ maxLength: 64 })),
  CallStatus: Type.Optional(Type.String({ maxLength: 32 })),
  ErrorCode: Type.Optional(Type.String({ maxLength: 16 }))
}, { additionalProperties: Type.String({ maxLength: 2048 }) })

/** Twilio's message and call statuses in the order they happen; the final ones share the top rank. */
const STATUS_RANK: Record<string, number> = {
  accepted: 1, scheduled: 1, queued: 2, initiated: 2, sending: 3, ringing: 3, sent: 4, 'in-progress': 4,
  delivered: 5, undelivered: 5, failed: 5, read: 6, completed: 5, busy: 5, 'no-answer': 5, canceled: 5
}

/** Contract section 7: Twilio's delivery callbacks. No API key: the request signature is the credential. */
const webhooks: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)))
  })

  fastify.post('/v1/webhooks/twilio/status', {
    schema: {
      tags: ['webhooks'],
      summary: 'Twilio message and call status callbacks (X-Twilio-Signature checked)',
      security: [],
      consumes: ['application/x-www-form-urlencoded'],
      headers: Type.Object({ 'x-twilio-signature': Type.Optional(Type.String({ maxLength: 256 })) }),
      body: StatusCallback,
      response: { 204: Type.Null(), ...problems('invalid_signature') }
    }
  }, async (request, reply) => {
    const { config } = fastify
    const signature = request.headers['x-twilio-signature']
    const url = `${config.PUBLIC_BASE_URL ?? `${request.protocol}://${request.host}`}${request.url}`
    const params = request.body as Record<string, string>
    // The Twilio SDK is loaded when first needed (see create-sender.ts), not at start.
    const { verifyTwilioSignature } = await import('../senders/twilio-sender.js')
    if (config.TWILIO_AUTH_TOKEN === undefined || typeof signature !== 'string' ||
        !verifyTwilioSignature(config.TWILIO_AUTH_TOKEN, signature, url, params)) {
      throw new ApiError('invalid_signature', 'X-Twilio-Signature does not match this request')
    }
    const providerId = request.body.MessageSid ?? request.body.CallSid
    const status = request.body.MessageStatus ?? request.body.CallStatus
    if (providerId !== undefined && status !== undefined) {
      // Callbacks can arrive out of order: a late "sent" must not hide "undelivered".
      const rank = STATUS_RANK[status] ?? 0
      const earlier = Object.entries(STATUS_RANK).filter(([, r]) => r < rank).map(([name]) => name)
      await fastify.prisma.delivery.updateMany({
        where: { providerId, OR: [{ status: { in: earlier } }, { status: { notIn: Object.keys(STATUS_RANK) } }] },
        data: { status, errorCode: request.body.ErrorCode ?? null }
      })
    }
    return await reply.code(204).send(null)
  })
}

export default webhooks
