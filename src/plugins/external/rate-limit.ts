import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import type { Redis } from 'ioredis'
import { ApiError } from '../../lib/errors.js'

/**
 * Limits are declared per route (`config.rateLimit`), not globally: each one
 * protects a specific cost, such as a paid SMS to a number the caller chose.
 * With REDIS_URL the counters are shared by every instance.
 */
export default fp(async (fastify) => {
  let redis: Redis | undefined
  if (fastify.config.REDIS_URL !== undefined) {
    // Loaded only when configured: ioredis costs ~50 ms of start-up time a single instance never uses.
    const { Redis } = await import('ioredis')
    redis = new Redis(fastify.config.REDIS_URL, { connectTimeout: 2_000, maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true })
    redis.on('error', (err: Error) => { fastify.log.warn({ err: { message: err.message } }, 'redis unavailable; rate limits fall back to this instance') })
    await redis.connect().catch(() => {})
    fastify.addHook('onClose', async () => { redis?.disconnect() })
  }
  await fastify.register(rateLimit, {
    global: false,
    ...(redis === undefined ? {} : { redis, nameSpace: 'spa-rate-limit:' }),
    // A Redis outage must not take logins down with it.
    skipOnError: true,
    errorResponseBuilder: (_request, context) =>
      new ApiError('too_many_requests', 'too many requests; slow down', { retryAfter: Math.max(1, Math.ceil(context.ttl / 1000)) })
  })
}, { name: 'rate-limit', dependencies: ['config'] })
