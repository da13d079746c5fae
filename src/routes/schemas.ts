import { Type } from 'typebox'
import { ERRORS, type ErrorCode } from '../lib/errors.js'
import { PASSWORD_MAX_LENGTH } from '../lib/limits.js'

// Shared request and response shapes. Every object refuses unknown properties (contract section 0).

export const Id = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' })
export const Timestamp = Type.String({ format: 'date-time' })
/**
 * Contract section 1: "email is trimmed", so spaces around a valid address are no error
 * (a pasted " Ana@Studio.com " is ana@studio.com); `format: email` would refuse them.
 */
export const Email = Type.String({
  minLength: 3,
  maxLength: 254,
  pattern: "^\\s*[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\\.)+[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\\s*$",
  examples: ['ana@studio.example']
})
/** Length is judged by the password rules (422 weak_password), so only an absurd size is a 400 here. */
export const Password = Type.String({ maxLength: PASSWORD_MAX_LENGTH * 4 })
export const Role = Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z][a-z0-9_-]*$' })
export const OrganizationId = Type.Union([Type.String({ minLength: 1, maxLength: 128 }), Type.Null()])
export const Reason = Type.Object({ reason: Type.String({ minLength: 1, maxLength: 500 }) }, { additionalProperties: false })
export const Channel = Type.Union([Type.Literal('sms'), Type.Literal('voice')])
export const Method = Type.Union([Type.Literal('sms'), Type.Literal('voice'), Type.Literal('totp'), Type.Literal('recovery')])
export const OtpCode = Type.String({ pattern: '^[0-9]{6}$', description: 'six digits' })

export const UserIdParams = Type.Object({ userId: Id }, { additionalProperties: false })
export const MaskedPhone = Type.Object({ masked: Type.String() })

export const Phone = Type.Object({
  id: Type.String(),
  masked: Type.String({ examples: ['+1 ••• ••• ••67'] }),
  label: Type.Union([Type.String(), Type.Null()]),
  channel: Channel,
  primary: Type.Boolean(),
  verifiedAt: Timestamp
})

export const User = Type.Object({
  id: Type.String(),
  email: Type.String(),
  role: Type.String(),
  organizationId: Type.Union([Type.String(), Type.Null()]),
  createdAt: Timestamp,
  locked: Type.Boolean(),
  lockedReason: Type.Union([Type.String(), Type.Null()]),
  twoFactor: Type.Object({
    enabled: Type.Boolean(),
    required: Type.Boolean(),
    enrollmentDueBy: Type.Union([Timestamp, Type.Null()]),
    methods: Type.Array(Method),
    phones: Type.Array(Phone),
    totp: Type.Union([Type.Object({ enabledAt: Timestamp }), Type.Null()]),
    recoveryCode: Type.Union([Type.Object({ createdAt: Timestamp }), Type.Null()])
  })
})

export const IssuedRecoveryCode = {
  recoveryCode: Type.String({ description: 'shown this once; store nowhere', examples: ['7KQ4-MZ2P-XH9T-3BWN-R6CD'] }),
  recoveryKit: Type.String({ description: 'plain text to save or print' })
}

export const Problem = Type.Object({
  type: Type.String(),
  title: Type.String(),
  status: Type.Integer(),
  code: Type.String(),
  detail: Type.Optional(Type.String()),
  attemptsRemaining: Type.Optional(Type.Integer()),
  retryAfter: Type.Optional(Type.Integer())
}, { additionalProperties: true })

const COMMON: ErrorCode[] = ['invalid_request', 'unauthorized', 'forbidden', 'payload_too_large', 'unsupported_media_type', 'too_many_requests', 'unavailable']

/**
 * The error responses of a route, grouped by status: each documents its codes as an enum
 * and its media type as application/problem+json, the type the error handler sends.
 */
export function problems (...codes: ErrorCode[]): Record<number, unknown> {
  const byStatus = new Map<number, Set<ErrorCode>>()
  for (const code of [...COMMON, ...codes]) {
    const { status } = ERRORS[code]
    byStatus.set(status, (byStatus.get(status) ?? new Set()).add(code))
  }
  const out: Record<number, unknown> = {}
  for (const [status, set] of byStatus) {
    const list = [...set]
    out[status] = {
      description: list.map((code) => `\`${code}\`: ${ERRORS[code].title}`).join('; '),
      content: {
        'application/problem+json': {
          schema: Type.Object({ ...Problem.properties, code: Type.Union(list.map((code) => Type.Literal(code))) }, { additionalProperties: true })
        }
      }
    }
  }
  return out
}

/** Who the end user is, as the backend reports it: the IP is the one the per-IP limits count. */
export const ClientContext = Type.Optional(Type.Object({
  ip: Type.Optional(Type.String({ maxLength: 64, description: "the end user's IP address (IPv4 or IPv6)" })),
  userAgent: Type.Optional(Type.String({ maxLength: 512 }))
}, { additionalProperties: false }))
