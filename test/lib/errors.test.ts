// Contract section 0: errors are RFC 9457 problem details with a stable `code`;
// every code the contract names exists with the contract's status.
import t from 'tap'
import { ApiError, ERRORS, problemBody, type ErrorCode } from '../../src/lib/errors.js'

const CONTRACT: Record<string, number> = {
  invalid_request: 400,
  unauthorized: 401,
  invalid_credentials: 401,
  forbidden: 403,
  not_found: 404,
  email_taken: 409,
  phone_limit_reached: 409,
  phone_already_verified: 409,
  two_factor_required: 409,
  two_factor_not_enabled: 409,
  verification_expired: 410,
  challenge_expired: 410,
  challenge_closed: 410,
  weak_password: 422,
  invalid_phone_number: 422,
  phone_country_not_allowed: 422,
  invalid_code: 422,
  invalid_recovery_code: 422,
  account_locked: 423,
  too_many_attempts: 429,
  resend_too_soon: 429,
  send_limit_reached: 429,
  delivery_failed: 502,
  unavailable: 503,
  overloaded: 503
}

t.test('every contract code is in the catalogue with the contract status', async (t) => {
  for (const [code, status] of Object.entries(CONTRACT)) {
    t.equal(ERRORS[code as ErrorCode]?.status, status, code)
  }
})

t.test('every catalogue entry is an error status with a title and a snake_case code', async (t) => {
  for (const [code, { status, title }] of Object.entries(ERRORS)) {
    t.match(code, /^[a-z]+(?:_[a-z]+)*$/, code)
    t.ok(status >= 400 && status <= 599, `${code} ${status}`)
    t.ok(title.length > 0 && !title.endsWith('.'), `${code} title`)
  }
  t.equal(ERRORS.payload_too_large.status, 413)
  t.equal(ERRORS.unsupported_media_type.status, 415)
})

t.test('problemBody is {type, title, status, code, detail?, ...extensions}', async (t) => {
  t.same(problemBody('invalid_code', 'the code is wrong', { attemptsRemaining: 3 }), {
    type: 'https://docs.studiopro.com/auth/errors#invalid_code',
    title: ERRORS.invalid_code.title,
    status: 422,
    code: 'invalid_code',
    detail: 'the code is wrong',
    attemptsRemaining: 3
  })
  const bare = problemBody('not_found')
  t.same(Object.keys(bare), ['type', 'title', 'status', 'code'], 'no detail key when there is none')
  t.equal(problemBody('too_many_requests', undefined, { retryAfter: 7 }).retryAfter, 7)
})

t.test('ApiError carries code, status, detail and extensions', async (t) => {
  const err = new ApiError('invalid_code', 'the code is wrong', { attemptsRemaining: 2 })
  t.ok(err instanceof Error)
  t.equal(err.name, 'ApiError')
  t.equal(err.code, 'invalid_code')
  t.equal(err.status, 422)
  t.equal(err.detail, 'the code is wrong')
  t.equal(err.message, 'the code is wrong')
  t.same(err.extensions, { attemptsRemaining: 2 })
  const bare = new ApiError('not_found')
  t.equal(bare.detail, undefined)
  t.equal(bare.message, ERRORS.not_found.title)
})
