import fp from 'fastify-plugin'
import type { FastifyError, FastifyReply } from 'fastify'
import { ApiError, problemBody, type ErrorCode, type ProblemExtensions } from '../../lib/errors.js'
import { prismaCode } from '../../lib/prisma-errors.js'

function send (reply: FastifyReply, code: ErrorCode, detail?: string, extensions: ProblemExtensions = {}) {
  const body = problemBody(code, detail, extensions)
  if (extensions.retryAfter !== undefined) reply.header('retry-after', String(extensions.retryAfter))
  return reply.code(body.status).type('application/problem+json').send(body)
}

interface ValidationIssue { instancePath?: string, message?: string, keyword?: string, params?: Record<string, unknown> }

/** Names the offending field in words a client developer can act on, without echoing the value. */
function describeValidation (context: string | undefined, issue: ValidationIssue | undefined): string {
  const where = (context ?? 'body') + (issue?.instancePath ?? '').replace(/\//g, '.')
  if (issue?.keyword === 'additionalProperties') return `${where}.${String(issue.params?.additionalProperty)} is not an accepted field`
  if (issue?.keyword === 'required') return `${where}.${String(issue.params?.missingProperty)} is required`
  return `${where} ${issue?.message ?? 'is invalid'}`
}

// Connection-level failures of either driver: the database is away, not the request wrong.
// "Query read timeout" and "canceling statement due to statement timeout" come from the
// pool's query timeouts (src/lib/limits.ts DB_QUERY_TIMEOUT_MS): a database that stopped answering.
const UNAVAILABLE = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|Connection terminated|timeout exceeded when trying to connect|terminating connection|the database system is|Can't reach database|connection (?:is )?(?:closed|ended)|Query read timeout|canceling statement due to statement timeout|Client has encountered a connection error/i

export function isDatabaseUnavailable (err: unknown): boolean {
  const code = prismaCode(err)
  if (code !== undefined && ['P1001', 'P1002', 'P1008', 'P1017', 'P2024'].includes(code)) return true
  const name = (err as { name?: string } | null)?.name ?? ''
  const message = (err as { message?: string } | null)?.message ?? ''
  // pg names a server's error after its protocol message: 'error' (Database.rows meets them unwrapped).
  return (name.startsWith('Prisma') || name === 'DriverAdapterError' || name === 'Error' || name === 'error') && UNAVAILABLE.test(message)
}

/** Where in the input a NUL character hides (PostgreSQL text and jsonb cannot store one), as `body.field`. */
export function findNul (value: unknown, path: string, depth = 0): string | null {
  if (typeof value === 'string') return value.includes('\u0000') ? path : null
  if (typeof value !== 'object' || value === null || depth > 32) return null
  for (const [key, item] of Object.entries(value)) {
    if (key.includes('\u0000')) return path
    const found = findNul(item, Array.isArray(value) ? `${path}[${key}]` : `${path}.${key}`, depth + 1)
    if (found !== null) return found
  }
  return null
}

/**
 * Errors the router raises before any route or hook runs (a URL that is not valid
 * percent-encoding, a path parameter over the router's length limit): Fastify answers
 * those itself, in plain JSON, unless the server's `frameworkErrors` option says otherwise.
 */
export function frameworkErrors (err: FastifyError, _request: unknown, reply: FastifyReply) {
  // Like a path parameter over its schema's maxLength: 400, never a 414 in plain JSON.
  return send(reply, 'invalid_request', err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'params: a path parameter is too long' : 'the URL is malformed')
}

/** The one place errors become problem+json (RFC 9457); a 5xx never says why. */
export default fp(async (fastify) => {
  // Fastify parses text/plain by default; the contract takes JSON only (415 for anything else).
  fastify.removeContentTypeParser('text/plain')

  fastify.addHook('preValidation', async (request) => {
    // A route without a body schema takes no body: an unknown property is refused, not ignored.
    const body = request.body
    if (request.routeOptions.schema?.body === undefined && body !== undefined && body !== null) {
      const [field] = typeof body === 'object' ? Object.keys(body) : []
      if (typeof body !== 'object' || field !== undefined) {
        throw new ApiError('invalid_request', field === undefined ? 'this route takes no body' : `body.${field} is not an accepted field`)
      }
    }
    // PostgreSQL cannot store NUL in text or jsonb: refuse it here rather than fail at the INSERT.
    const where = findNul(request.body, 'body') ?? findNul(request.query, 'querystring') ?? findNul(request.params, 'params')
    if (where !== null) throw new ApiError('invalid_request', `${where} must not contain a NUL character`)
  })

  fastify.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof ApiError) return send(reply, err.code, err.detail, err.extensions)
    if (err.validation !== undefined) {
      return send(reply, 'invalid_request', describeValidation(err.validationContext, err.validation[0] as ValidationIssue))
    }
    switch (err.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE': return send(reply, 'payload_too_large', 'the body is larger than this service accepts')
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': return send(reply, 'unsupported_media_type', 'send Content-Type: application/json')
      case 'FST_ERR_CTP_EMPTY_JSON_BODY': return send(reply, 'invalid_request', 'the body is empty; send a JSON object')
    }
    const status = err.statusCode ?? 500
    if (status === 429) return send(reply, 'too_many_requests', 'slow down', { retryAfter: 1 })
    if (status >= 400 && status < 500) {
      // Parser messages can quote the body (and so a password): say only what kind of mistake it is.
      const detail = err instanceof SyntaxError || /JSON/i.test(err.message) ? 'the body is not valid JSON' : 'the request is malformed'
      return send(reply, status === 404 ? 'not_found' : status === 405 ? 'method_not_allowed' : 'invalid_request', detail)
    }
    if (isDatabaseUnavailable(err)) {
      request.log.error({ err: { message: err.message, code: err.code } }, 'database unavailable')
      return send(reply, 'unavailable', 'the database cannot be reached; try again shortly', { retryAfter: 5 })
    }
    request.log.error({ err }, 'unhandled error')
    return send(reply, 'internal_error')
  })

  fastify.setNotFoundHandler((request, reply) => send(reply, 'not_found', `no route ${request.method} ${request.url.split('?')[0] ?? ''}`))
}, { name: 'error-handler' })
