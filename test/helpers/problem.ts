// Contract section 0: every error is RFC 9457 problem+json carrying the contract's code.
import type { LightMyRequestResponse } from 'fastify'
import { ERRORS, type ErrorCode } from '../../src/lib/errors.js'

/** The part of a tap Test these helpers use. */
interface Asserts {
  equal (found: unknown, wanted: unknown, message?: string): unknown
  match (found: unknown, pattern: unknown, message?: string): unknown
  type (found: unknown, type: string, message?: string): unknown
}

/** Asserts `response` is the contract's problem for `code` (status, content type, members); returns the body. */
export function assertProblem (t: Asserts, response: LightMyRequestResponse, code: ErrorCode, detail?: RegExp | string): Record<string, unknown> & { detail?: string } {
  const { status } = ERRORS[code]
  t.equal(response.statusCode, status, `${status} ${code}: ${response.body}`)
  t.match(response.headers['content-type'], /^application\/problem\+json/, 'problem+json')
  let body: Record<string, unknown> = {}
  try { body = response.json() } catch { t.equal(response.body, '(JSON)', 'the body is JSON') }
  t.equal(body.code, code, 'code')
  t.equal(body.status, status, 'status member')
  t.equal(body.type, `https://docs.studiopro.com/auth/errors#${code}`, 'type')
  t.type(body.title, 'string', 'title')
  if (detail !== undefined) t.match(body.detail, detail, 'detail')
  return body as Record<string, unknown> & { detail?: string }
}
