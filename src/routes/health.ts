import { Type } from 'typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { problemBody } from '../lib/errors.js'

const READY_TIMEOUT_MS = 2_000

/** Contract section 7: probes for the orchestrator, no authentication. */
const health: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/health', {
    schema: { tags: ['operations'], summary: 'Liveness', security: [], response: { 200: Type.Object({ status: Type.Literal('ok') }) } }
  }, async () => ({ status: 'ok' as const }))

  fastify.get('/ready', {
    schema: {
      tags: ['operations'],
      summary: 'Readiness: 200 when the database answers',
      security: [],
      response: { 200: Type.Object({ status: Type.Literal('ready') }), 503: Type.Object({}, { additionalProperties: true }) }
    }
  }, async (_request, reply) => {
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        fastify.db.ping(),
        new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error('ping timed out')), READY_TIMEOUT_MS) })
      ])
      return { status: 'ready' as const }
    } catch {
      return await reply.code(503).type('application/problem+json').header('retry-after', '5')
        .send(problemBody('unavailable', 'the database does not answer', { retryAfter: 5 }))
    } finally {
      clearTimeout(timer)
    }
  })

  fastify.get('/metrics', {
    schema: { tags: ['operations'], summary: 'Prometheus metrics (text exposition format)', security: [], response: { 200: Type.String() } }
  }, async (_request, reply) => {
    const { registry } = fastify.metrics
    return await reply.type(registry.contentType).send(await registry.metrics())
  })
}

export default health
