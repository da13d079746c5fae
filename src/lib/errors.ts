// The one catalogue of error codes (contract section 0 onwards). Clients switch on `code`.

export const ERRORS = {
  invalid_request: { status: 400, title: 'The request is malformed' },
  unauthorized: { status: 401, title: 'A valid API key is required' },
  invalid_credentials: { status: 401, title: 'Email or password is wrong' },
  forbidden: { status: 403, title: 'The API key lacks the scope for this route' },
  invalid_signature: { status: 403, title: 'The webhook signature is not valid' },
  not_found: { status: 404, title: 'Not found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  email_taken: { status: 409, title: 'The email is already in use' },
  phone_limit_reached: { status: 409, title: 'The user already has the maximum number of phones' },
  phone_already_verified: { status: 409, title: 'This number is already verified for the user' },
  two_factor_required: { status: 409, title: 'Two-factor authentication is required for this user' },
  two_factor_not_enabled: { status: 409, title: 'The user has no second factor' },
  verification_expired: { status: 410, title: 'The phone verification has expired' },
  challenge_expired: { status: 410, title: 'The login challenge has expired' },
  challenge_closed: { status: 410, title: 'The login challenge is closed' },
  payload_too_large: { status: 413, title: 'The request body is too large' },
  unsupported_media_type: { status: 415, title: 'The request body must be JSON' },
  weak_password: { status: 422, title: 'The password is too weak' },
  invalid_phone_number: { status: 422, title: 'The phone number is not valid' },
  phone_country_not_allowed: { status: 422, title: 'Numbers from this country are not accepted' },
  invalid_code: { status: 422, title: 'The code is wrong or no longer valid' },
  invalid_recovery_code: { status: 422, title: 'The recovery code is wrong' },
  account_locked: { status: 423, title: 'The account is locked' },
  too_many_attempts: { status: 429, title: 'Too many attempts' },
  too_many_requests: { status: 429, title: 'Too many requests' },
  resend_too_soon: { status: 429, title: 'A code was sent moments ago' },
  send_limit_reached: { status: 429, title: 'No more codes can be sent for this login' },
  internal_error: { status: 500, title: 'Internal error' },
  delivery_failed: { status: 502, title: 'The code could not be delivered' },
  unavailable: { status: 503, title: 'The service is temporarily unavailable' },
  overloaded: { status: 503, title: 'The service is overloaded' }
} as const satisfies Record<string, { status: number, title: string }>

export type ErrorCode = keyof typeof ERRORS

export interface ProblemExtensions {
  attemptsRemaining?: number
  retryAfter?: number
}

/** A failure the caller is meant to see, with its contract code. */
export class ApiError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly detail: string | undefined
  readonly extensions: ProblemExtensions

  constructor (code: ErrorCode, detail?: string, extensions: ProblemExtensions = {}) {
    super(detail ?? ERRORS[code].title)
    this.name = 'ApiError'
    this.code = code
    this.status = ERRORS[code].status
    this.detail = detail
    this.extensions = extensions
  }
}

export function problemBody (code: ErrorCode, detail?: string, extensions: ProblemExtensions = {}) {
  const { status, title } = ERRORS[code]
  return {
    type: `https://docs.studiopro.com/auth/errors#${code}`,
    title,
    status,
    code,
    ...(detail === undefined ? {} : { detail }),
    ...extensions
  }
}
