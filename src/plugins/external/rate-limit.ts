import fp from 'fastify-plugin'
import { isIP } from 'node:net'
import rateLimit from '@fastify/rate-limit'
import type { FastifyRequest, preHandlerAsyncHookHandler, preValidationAsyncHookHandler } from 'fastify'
import type { Redis } from 'ioredis'
import { ipCountingKey } from '../../lib/client-ip.js'
import { ApiError } from '../../lib/errors.js'

type IncrCallback = (err: Error | null, result: { current: number, ttl: number } | null) => void
interface Store {
  incr (key: string, cb: IncrCallback, timeWindow: number, max: number): void
  child (params: unknown): Store
}

/** Client-IP limits: each protects one cost (argon2 per password, an SMS per send, a guess per verify). */
export type IpLimit = 'login' | 'send' | 'verify'

declare module 'fastify' {
  interface FastifyInstance {
    /** preValidation: a `context.ip` the backend reports must be an IP address (400 otherwise). */
    checkReportedIp: preValidationAsyncHookHandler
    /** preHandler: counts this request against the client IP's budget for `limit`; 429 past it. */
    limitPerIp (limit: IpLimit): preHandlerAsyncHookHandler
    /** The shared Redis client when REDIS_URL is set. */
    redis: Redis | undefined
  }
}

/** The end user's address: the one the backend reports in the body, else the peer (or X-Forwarded-For behind TRUSTED_PROXIES). */
export function clientIp (request: FastifyRequest): string {
  const reported = (request.body as { context?: { ip?: unknown } } | undefined)?.context?.ip
  return typeof reported === 'string' ? reported : request.ip
}

/**
 * Counters live in Redis when REDIS_URL is set, so every instance shares them.
 * When Redis fails the counters fall back to this instance's memory (logged once)
 * and go back to Redis as soon as it answers again: an outage loosens the limits
 * to per-instance ones but never takes logins down and never turns them off.
 */
function fallbackStoreClass (redis: Redis | undefined, keyPrefix: string, onOutage: (err: Error) => void) {
  // Loaded lazily: the plugin ships its stores as CommonJS without types.
  return async () => {
    const { default: LocalStore } = await import('@fastify/rate-limit/store/LocalStore.js' as string) as { default: new (...args: unknown[]) => Store }
    const { default: RedisStore } = await import('@fastify/rate-limit/store/RedisStore.js' as string) as { default: new (...args: unknown[]) => Store }
    class FallbackStore implements Store {
      constructor (private readonly remote: Store | undefined, private readonly local: Store) {}
      incr (key: string, cb: IncrCallback, timeWindow: number, max: number): void {
        if (this.remote === undefined || redis?.status !== 'ready') {
          if (redis !== undefined && redis.status !== 'ready') onOutage(new Error(`redis is ${redis.status}`))
          this.local.incr(key, cb, timeWindow, max)
          return
        }
        this.remote.incr(key, (err, result) => {
          if (err === null) { cb(null, result); return }
          onOutage(err)
          this.local.incr(key, cb, timeWindow, max)
        }, timeWindow, max)
      }

      child (params: unknown): Store {
        return new FallbackStore(this.remote?.child(params), this.local.child(params))
      }
    }
    return class RootStore extends FallbackStore {
      constructor (params: { continueExceeding: boolean, exponentialBackoff: boolean }) {
        super(
          redis === undefined ? undefined : new RedisStore(params.continueExceeding, params.exponentialBackoff, redis, keyPrefix),
          new LocalStore(params.continueExceeding, params.exponentialBackoff, 10_000)
        )
      }
    }
  }
}

export default fp(async (fastify) => {
  const { config } = fastify
  let redis: Redis | undefined
  let degraded = false
  const onOutage = (err: Error) => {
    if (degraded) return
    degraded = true
    fastify.log.warn({ err: { message: err.message } }, 'redis unavailable; rate limits fall back to this instance until it is back')
  }
  if (config.REDIS_URL !== undefined) {
    // Loaded only when configured: a single instance without Redis does not pay for the client at start.
    const { Redis: RedisClient } = await import('ioredis')
    redis = new RedisClient(config.REDIS_URL, {
      connectTimeout: 2_000,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      lazyConnect: true,
      retryStrategy: (times) => Math.min(times * 200, 2_000)
    })
    redis.on('error', (err: Error) => { onOutage(err) })
    redis.on('ready', () => {
      if (degraded) fastify.log.info('redis is back; rate limits are shared again')
      degraded = false
    })
    await redis.connect().catch(() => {})
    fastify.addHook('onClose', async () => { redis?.disconnect() })
  }
  // /ready asks the same client: a Redis that rate limiting cannot reach is what it reports.
  fastify.decorate('redis', redis)
  const store = await fallbackStoreClass(redis, config.REDIS_KEY_PREFIX, onOutage)()
  await fastify.register(rateLimit, {
    global: false,
    store: store as never,
    skipOnError: true,
    errorResponseBuilder: (_request, context) =>
      new ApiError('too_many_requests', 'too many requests; slow down', { retryAfter: Math.max(1, Math.ceil(context.ttl / 1000)) })
  })

  /** One limiter per rule; `max` 0 turns the rule off. Counts past the limit keep answering 429 until the window ends. */
  function limiter (name: string, max: number, timeWindow: number, key: (request: FastifyRequest) => string | undefined): preHandlerAsyncHookHandler {
    if (max === 0) return async () => {}
    const check = fastify.createRateLimit({ max, timeWindow, keyGenerator: (request) => `${name}:${key(request) ?? ''}` })
    return async (request, reply) => {
      if (key(request) === undefined) return
      const result = await check(request)
      if ('isExceeded' in result && result.isExceeded) {
        const retryAfter = Math.max(1, result.ttlInSeconds)
        reply.header('retry-after', String(retryAfter))
        throw new ApiError('too_many_requests', `too many ${name} requests; slow down`, { retryAfter })
      }
    }
  }

  const ipKey = (request: FastifyRequest) => ipCountingKey(clientIp(request))
  const perIp: Record<IpLimit, preHandlerAsyncHookHandler> = {
    login: limiter('login-ip', config.RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE, 60_000, ipKey),
    send: limiter('send-ip', config.RATE_LIMIT_SEND_PER_IP_PER_MINUTE, 60_000, ipKey),
    verify: limiter('verify-ip', config.RATE_LIMIT_VERIFY_PER_IP_PER_MINUTE, 60_000, ipKey)
  }
  fastify.decorate('limitPerIp', (limit: IpLimit) => perIp[limit])
  fastify.decorate('checkReportedIp', async (request: FastifyRequest) => {
    const reported = (request.body as { context?: { ip?: unknown } } | undefined)?.context?.ip
    if (reported !== undefined && (typeof reported !== 'string' || isIP(reported) === 0)) {
      throw new ApiError('invalid_request', 'context.ip must be an IPv4 or IPv6 address')
    }
  })

  // A leaked or runaway API key is capped as a whole, whatever IPs it reports.
  const perApiKey = limiter('api-key', config.RATE_LIMIT_API_KEY_PER_MINUTE, 60_000, (request) => request.caller?.clientId)
  fastify.addHook('preHandler', perApiKey)
}, { name: 'rate-limit', dependencies: ['config'] })
