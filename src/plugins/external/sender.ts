import fp from 'fastify-plugin'
import type { MessageSender } from '../../senders/message-sender.js'
import { createSender } from '../../senders/create-sender.js'

declare module 'fastify' {
  interface FastifyInstance { sender: MessageSender }
}

/** The SMS/voice provider: Twilio, or the console in development. Tests may hand in their own. */
export default fp<{ sender?: MessageSender | undefined }>(async (fastify, opts) => {
  fastify.decorate('sender', opts.sender ?? createSender(fastify.config, fastify.log))
}, { name: 'sender', dependencies: ['config'] })
