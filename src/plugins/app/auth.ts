import fp from 'fastify-plugin'
import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify'
import { ApiError } from '../../lib/errors.js'
import type { RequestContext } from '../../lib/request-context.js'
import type { ApiCaller, Scope } from './api-keys.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** An onRequest hook: 401 without a known key, 403 without `scope` (contract section 0). */
    requireScope (scope: Exclude<Scope, '*'>): onRequestAsyncHookHandler
  }
  interface FastifyRequest { caller: ApiCaller | null }
}

const BEARER = /^Bearer ([\x21-\x7e]{1,256})$/

/** Who acted, for security events: the end user's address as the backend reports it, else the caller's. */
export function requestContext (request: FastifyRequest, reported?: { ip?: string | undefined, userAgent?: string | undefined }): RequestContext {
  const header = request.headers['user-agent']
  return {
    ip: reported?.ip ?? request.ip ?? null,
    userAgent: reported?.userAgent ?? (typeof header === 'string' ? header.slice(0, 512) : null)
  }
}

export default fp(async (fastify) => {
  fastify.decorateRequest('caller', null)
  fastify.decorate('requireScope', (scope: Exclude<Scope, '*'>) => {
    return async (request: FastifyRequest) => {
      const match = BEARER.exec(request.headers.authorization ?? '')
      const caller = match?.[1] === undefined ? null : await fastify.apiKeys.authenticate(match[1])
      if (caller === null) throw new ApiError('unauthorized', 'send Authorization: Bearer <api key>')
      if (!caller.scopes.includes('*') && !caller.scopes.includes(scope)) {
        throw new ApiError('forbidden', `this API key lacks the ${scope} scope`)
      }
      request.caller = caller
    }
  })
}, { name: 'auth', dependencies: ['api-keys'] })
