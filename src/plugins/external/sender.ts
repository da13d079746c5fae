import fp from 'fastify-plugin'
import type { MessageSender } from '../../senders/message-sender.js'
import { createSender } from '../../senders/create-sender.js'
import { instrumentSender } from '../../senders/instrumented-sender.js'

declare module 'fastify' {
  interface FastifyInstance { sender: MessageSender }
}

/** The SMS/voice provider: Twilio, or the console in development. Tests may hand in their own. */
export default fp<{ sender?: MessageSender | undefined }>(async (fastify, opts) => {
  // Instrumented whatever its origin, so tests handing in a sender see the same metrics as production.
  fastify.decorate('sender', instrumentSender(opts.sender ?? createSender(fastify.config, fastify.log), fastify.metrics))
}, { name: 'sender', dependencies: ['config', 'metrics'] })
