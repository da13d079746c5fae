import { ERRORS, problemBody, type ErrorCode } from './errors.js'

/**
 * QA and the backend team read openapi.yaml and try routes from /docs: every operation gets
 * examples and a list of its error codes. Both are derived from the route schemas when the
 * document is built, so they cannot drift from what the routes accept and answer; a schema's
 * own `examples` win over the generated value.
 */

type Schema = Record<string, unknown>
type Operation = {
  parameters?: Array<{ name: string, schema?: Schema, example?: unknown, examples?: unknown }>
  requestBody?: { content?: Record<string, MediaType> }
  responses?: Record<string, { content?: Record<string, MediaType> }>
  [extension: `x-${string}`]: unknown
}
type MediaType = { schema?: Schema, example?: unknown, examples?: Record<string, { summary?: string, value: unknown }> }
export type OpenApiDocument = { paths?: Record<string, Record<string, Operation>> }

const METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options'])

const SAMPLE_ID = '3f6c1e2a-8b4d-4c1f-9e7a-2d5b6c8a9f01'
const SAMPLE_TIME = '2026-03-14T09:30:00.000Z'

/** Values for strings the schema does not constrain enough to invent one, by property name. */
const BY_NAME: Record<string, unknown> = {
  email: 'ana@studio.example',
  password: 'Pirouette-Jete-1987!',
  phoneNumber: '+14155550123',
  masked: '+1 ••• ••• ••23',
  label: 'Work phone',
  reason: 'Caller verified by support: phone lost',
  name: 'studio-backend',
  key: 'spa_Zm9yIGV4YW1wbGUgb25seSwgbm90IGEgcmVhbCBrZXkgISEh',
  ip: '203.0.113.9',
  userAgent: 'StudioProApp/5.1 (iPhone)',
  role: 'owner',
  organizationId: 'org_studio_42',
  type: 'https://docs.studiopro.com/auth/errors#not_found',
  title: 'Not found',
  detail: 'no such user',
  recoveryKit: 'Studio Pro recovery kit for ana@studio.example ...',
  otpauthUrl: 'otpauth://totp/Studio%20Pro:ana%40studio.example?secret=JBSWY3DPEHPK3PXP&issuer=Studio%20Pro',
  MessageSid: 'SM0123456789abcdef0123456789abcdef',
  CallSid: 'CA0123456789abcdef0123456789abcdef',
  MessageStatus: 'delivered',
  CallStatus: 'completed',
  AccountSid: 'AC0123456789abcdef0123456789abcdef'
}

/** Tried in order against a schema's pattern and length limits when no better value is known. */
const FALLBACK_STRINGS = [SAMPLE_ID, '50', '123456', 'owner', 'example']

function fitsString (schema: Schema, value: string): boolean {
  if (typeof schema.minLength === 'number' && value.length < schema.minLength) return false
  if (typeof schema.maxLength === 'number' && value.length > schema.maxLength) return false
  if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) return false
  return true
}

function stringSample (schema: Schema, name: string | undefined): string {
  if (schema.format === 'date-time') return SAMPLE_TIME
  if (schema.format === 'email') return 'ana@studio.example'
  if (schema.format === 'uri' || schema.format === 'url') return 'https://auth.studiopro.example'
  const candidates: string[] = []
  if (name !== undefined) {
    const known = BY_NAME[name]
    if (typeof known === 'string') candidates.push(known)
    if (name === 'id' || /Id$/.test(name)) candidates.push(SAMPLE_ID)
    if (/At$|Until$|By$/.test(name)) candidates.push(SAMPLE_TIME)
  }
  candidates.push(...FALLBACK_STRINGS)
  const min = typeof schema.minLength === 'number' ? schema.minLength : 0
  return candidates.find((value) => fitsString(schema, value)) ?? 'example'.padEnd(min, 'x')
}

/** A value that satisfies `schema`, for the schema shapes typebox generates; undefined when unsure ($ref). */
export function sampleFor (schema: Schema | undefined, name?: string, depth = 0): unknown {
  if (schema === undefined || depth > 12 || '$ref' in schema) return undefined
  if (Array.isArray(schema.examples) && schema.examples.length > 0) return schema.examples[0]
  if ('example' in schema) return schema.example
  if ('const' in schema) return schema.const
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0]
  if ('default' in schema) return schema.default
  for (const key of ['anyOf', 'oneOf'] as const) {
    const options = schema[key]
    if (Array.isArray(options)) {
      // The first non-null branch: an example that is only `null` shows nothing.
      const option = (options as Schema[]).find((o) => o.type !== 'null') ?? options[0] as Schema
      return sampleFor(option, name, depth + 1)
    }
  }
  if (Array.isArray(schema.allOf)) {
    return Object.assign({}, ...(schema.allOf as Schema[]).map((part) => sampleFor(part, name, depth + 1)))
  }
  const type = Array.isArray(schema.type) ? (schema.type as string[]).find((t) => t !== 'null') : schema.type
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {}
      for (const [key, property] of Object.entries((schema.properties ?? {}) as Record<string, Schema>)) {
        const value = sampleFor(property, key, depth + 1)
        if (value !== undefined) out[key] = value
      }
      return out
    }
    case 'array': {
      // A tuple (typebox writes draft-07's `items: [...]`; 2020-12 says `prefixItems`): one value per position.
      const tuple = Array.isArray(schema.prefixItems) ? schema.prefixItems : Array.isArray(schema.items) ? schema.items : undefined
      if (tuple !== undefined) return (tuple as Schema[]).map((part) => sampleFor(part, name, depth + 1))
      const item = sampleFor(schema.items as Schema | undefined, name, depth + 1)
      const min = typeof schema.minItems === 'number' ? Math.max(1, schema.minItems) : 1
      return item === undefined ? [] : Array.from({ length: min }, () => item)
    }
    case 'string': return stringSample(schema, name)
    case 'integer':
    case 'number': {
      if (typeof BY_NAME[name ?? ''] === 'number') return BY_NAME[name ?? '']
      const min = typeof schema.minimum === 'number' ? schema.minimum : 1
      const max = typeof schema.maximum === 'number' ? schema.maximum : Math.max(min, 5)
      return Math.min(Math.max(min, Math.min(5, max)), max)
    }
    case 'boolean': return true
    case 'null': return null
    default: return undefined
  }
}

/** The codes a problem+json response schema allows (its `code` enum, as problems() builds it). */
function problemCodes (media: MediaType | undefined): ErrorCode[] {
  const code = (media?.schema?.properties as Record<string, Schema> | undefined)?.code
  if (code === undefined) return []
  const branches = Array.isArray(code.anyOf) ? code.anyOf as Schema[] : [code]
  return branches.flatMap((branch) => [
    ...(Array.isArray(branch.enum) ? branch.enum : []),
    ...('const' in branch ? [branch.const] : [])
  ]).filter((value): value is ErrorCode => typeof value === 'string' && value in ERRORS)
}

/** The problem body the error handler sends for `code`, plus any extra member the route's schema requires (/ready's `checks`). */
function problemExample (code: ErrorCode, schema: Schema | undefined): unknown {
  const extensions = code === 'invalid_code' || code === 'invalid_recovery_code'
    ? { attemptsRemaining: 2 }
    : ERRORS[code].status === 429 || ERRORS[code].status === 503 ? { retryAfter: 30 } : {}
  const body: Record<string, unknown> = problemBody(code, ERRORS[code].title, extensions)
  const properties = (schema?.properties ?? {}) as Record<string, Schema>
  for (const key of Array.isArray(schema?.required) ? schema.required as string[] : []) {
    if (!(key in body)) body[key] = sampleFor(properties[key], key)
  }
  return body
}

function fillMedia (media: MediaType): void {
  if (media.example !== undefined || media.examples !== undefined) return
  const value = sampleFor(media.schema)
  if (value !== undefined) media.example = value
}

/**
 * Adds the examples and `x-error-codes` (status → codes) to every operation, in place.
 * Error responses get one named example per code, so Swagger UI shows each answer QA can expect.
 */
export function addExamples<T extends OpenApiDocument> (document: T): T {
  for (const pathItem of Object.values(document.paths ?? {})) {
    for (const [method, operation] of Object.entries(pathItem)) {
      if (!METHODS.has(method)) continue
      for (const parameter of operation.parameters ?? []) {
        if (parameter.example === undefined && parameter.examples === undefined) {
          const value = sampleFor(parameter.schema, parameter.name)
          if (value !== undefined) parameter.example = value
        }
      }
      for (const media of Object.values(operation.requestBody?.content ?? {})) fillMedia(media)
      const errorCodes: Record<string, ErrorCode[]> = {}
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        for (const [type, media] of Object.entries(response.content ?? {})) {
          const codes = type === 'application/problem+json' ? problemCodes(media) : []
          if (codes.length === 0) {
            fillMedia(media)
            continue
          }
          errorCodes[status] = codes
          if (media.example === undefined && media.examples === undefined) {
            media.examples = Object.fromEntries(codes.map((code) => [code, { summary: ERRORS[code].title, value: problemExample(code, media.schema) }]))
          }
        }
      }
      // Present even when empty, so "no documented errors" is a statement, not an omission.
      operation['x-error-codes'] = errorCodes
    }
  }
  return document
}
