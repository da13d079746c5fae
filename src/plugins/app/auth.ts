import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify'
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

// RFC 7235: the scheme name is case-insensitive ("bearer" is as good as "Bearer").
const BEARER = /^Bearer ([\x21-\x7e]{1,256})$/i

/** Who acted, for security events: the end user's address as the backend reports it, else the caller's. */
export function requestContext (request: FastifyRequest, reported?: { ip?: string | undefined, userAgent?: string | undefined }): RequestContext {
  const header = request.headers['user-agent']
  return {
    ip: reported?.ip ?? request.ip ?? null,
    userAgent: reported?.userAgent ?? (typeof header === 'string' ? header.slice(0, 512) : null),
    requestId: request.id
  }
}

export default fp(async (fastify) => {
  fastify.decorateRequest('caller', null)
  fastify.decorate('requireScope', (scope: Exclude<Scope, '*'>) => {
    return async (request: FastifyRequest, reply: FastifyReply) => {
      const match = BEARER.exec(request.headers.authorization ?? '')
      const caller = match?.[1] === undefined ? null : await fastify.apiKeys.authenticate(match[1])
      if (caller === null) {
        // RFC 7235 3.1: a 401 must name the scheme the client should use.
        reply.header('www-authenticate', 'Bearer')
        throw new ApiError('unauthorized', 'send Authorization: Bearer <api key>')
      }
      if (!caller.scopes.includes('*') && !caller.scopes.includes(scope)) {
        throw new ApiError('forbidden', `this API key lacks the ${scope} scope`)
      }
      request.caller = caller
    }
  })
}, { name: 'auth', dependencies: ['api-keys'] })
