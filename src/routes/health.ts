import { Type } from 'typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { problemBody } from '../lib/errors.js'
import { Problem } from './schemas.js'
import { READY_CHECK_TIMEOUT_MS } from '../lib/limits.js'

type CheckResult = 'ok' | 'failed'

/** Resolves 'failed' instead of waiting longer than READY_CHECK_TIMEOUT_MS or throwing. */
async function check (probe: () => Promise<unknown>): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      probe(),
      new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error('timed out')), READY_CHECK_TIMEOUT_MS) })
    ])
    return 'ok'
  } catch {
    return 'failed'
  } finally {
    clearTimeout(timer)
  }
}

const CheckValue = Type.Union([Type.Literal('ok'), Type.Literal('failed')])
const Checks = Type.Object({
  database: CheckValue,
  redis: Type.Optional(CheckValue)
}, { description: 'One entry per dependency; redis only when REDIS_URL is set' })

/** Contract section 7: probes for the orchestrator, no authentication. */
const health: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/health', {
    schema: { tags: ['operations'], summary: 'Liveness', security: [], response: { 200: Type.Object({ status: Type.Literal('ok') }) } }
  }, async () => ({ status: 'ok' as const }))

  fastify.get('/ready', {
    schema: {
      tags: ['operations'],
      summary: 'Readiness: 200 when the database (and Redis, when configured) answers',
      security: [],
      response: {
        200: Type.Object({ status: Type.Literal('ready'), checks: Checks }),
        503: {
          description: '`unavailable`: a dependency does not answer; `checks` says which',
          content: {
            'application/problem+json': {
              schema: Type.Object({ ...Problem.properties, code: Type.Union([Type.Literal('unavailable')]), checks: Checks }, { additionalProperties: true })
            }
          }
        }
      }
    }
  }, async (_request, reply) => {
    // Both at once: the answer takes one timeout at most, not one per dependency.
    const { redis } = fastify
    const [database, redisResult] = await Promise.all([
      check(async () => { await fastify.db.ping() }),
      redis === undefined ? undefined : check(async () => await redis.ping())
    ])
    const checks = { database, ...(redisResult === undefined ? {} : { redis: redisResult }) }
    if (database === 'ok' && redisResult !== 'failed') return { status: 'ready' as const, checks }
    const failed = Object.entries(checks).filter(([, result]) => result === 'failed').map(([name]) => name)
    return await reply.code(503).type('application/problem+json').header('retry-after', '5')
      .send({ ...problemBody('unavailable', `not answering: ${failed.join(', ')}`, { retryAfter: 5 }), code: 'unavailable' as const, checks })
  })

  fastify.get('/metrics', {
    schema: { tags: ['operations'], summary: 'Prometheus metrics (text exposition format)', security: [], response: { 200: Type.String({ examples: ['# TYPE spa_codes_sent_total counter\nspa_codes_sent_total{channel="sms",outcome="sent"} 12\n'] }) } }
  }, async (_request, reply) => {
    const { registry } = fastify.metrics
    return await reply.type(registry.contentType).send(await registry.metrics())
  })
}

export default health
