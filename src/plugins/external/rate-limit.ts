import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import { ApiError } from '../../lib/errors.js'

/**
 * Limits are declared per route (`config.rateLimit`), not globally: each one
 * protects a specific cost, such as a paid SMS to a number the caller chose.
 */
export default fp(async (fastify) => {
  await fastify.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_request, context) =>
      new ApiError('too_many_requests', 'too many requests; slow down', { retryAfter: Math.max(1, Math.ceil(context.ttl / 1000)) })
  })
}, { name: 'rate-limit' })
