// Issue 4 item 7: bad input, systematically. Every route of openapi.yaml gets generated
// bodies, path parameters and headers; whatever arrives, the service answers without a 5xx,
// every error is problem+json, and no secret it was given comes back in the answer.
import t from 'tap'
import fc from 'fast-check'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { buildTestApp, enrolledUser, startLogin, TEST_API_KEY, STRONG_PASSWORD } from '../helpers/app.js'

const SPEC = fileURLToPath(new URL('../../openapi.yaml', import.meta.url))
/** Enough runs to hit every route with many shapes, few enough to stay well under tap's timeout. */
const RUNS = Number(process.env.FUZZ_RUNS ?? 3000)

interface Schema { type?: string | string[], enum?: unknown[], minLength?: number, maxLength?: number, minimum?: number, maximum?: number, properties?: Record<string, Schema>, required?: string[], anyOf?: Schema[] }
interface Operation { method: string, path: string, bodyFields: string[], schema?: Schema | undefined }

async function operations (): Promise<Operation[]> {
  const spec = parse(await readFile(SPEC, 'utf8')) as { paths: Record<string, Record<string, { requestBody?: { content?: Record<string, { schema?: Schema }> } }>> }
  const found: Operation[] = []
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const content = op.requestBody?.content ?? {}
      const schema = Object.values(content)[0]?.schema
      found.push({ method: method.toUpperCase(), path, bodyFields: Object.keys(schema?.properties ?? {}), schema })
    }
  }
  return found
}

const hugeString = fc.integer({ min: 10_000, max: 40_000 }).map((n) => 'x'.repeat(n))
const oddString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', ' ', '\u0000', '\uD800', '💃🏽', '../../etc/passwd', '%00', "' OR 1=1 --", '+14155550100', '000000', '__proto__', 'constructor', 'NaN', '-1', '1e309'),
  hugeString
)
const oddValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    oddString,
    fc.integer(), fc.double(), fc.boolean(), fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(oddString, tie('value'), { maxKeys: 4 })
  )
})).value

/** Values that satisfy the schema's type and bounds, so the request gets past validation into the handler. */
function fitting (schema: Schema, depth = 0): fc.Arbitrary<unknown> {
  if (schema.enum !== undefined && schema.enum.length > 0) return fc.constantFrom(...schema.enum)
  if (schema.anyOf !== undefined && schema.anyOf.length > 0) return fc.oneof(...schema.anyOf.map((option) => fitting(option, depth + 1)))
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type
  switch (type) {
    case 'string': {
      const minLength = schema.minLength ?? 0
      const maxLength = Math.min(schema.maxLength ?? 64, 300)
      return fc.oneof(
        fc.string({ minLength, maxLength }),
        fc.string({ unit: 'grapheme', minLength, maxLength }),
        fc.stringMatching(/^\d{6}$/),
        fc.constantFrom('+14155550123', '+442071838750', '+8613800138000', 'ana@studio.example', 'AAAA-BBBB-CCCC-DDDD-EEEE', 'x'.repeat(Math.max(minLength, 1)))
          .filter((v) => v.length >= minLength && v.length <= maxLength)
      )
    }
    case 'integer': return fc.integer({ min: schema.minimum ?? -1000, max: schema.maximum ?? 1000 })
    case 'number': return fc.double({ noNaN: true, min: schema.minimum ?? -1e6, max: schema.maximum ?? 1e6 })
    case 'boolean': return fc.boolean()
    case 'null': return fc.constant(null)
    case 'array': return fc.array(oddValue, { maxLength: 3 })
    case 'object': {
      if (depth > 3 || schema.properties === undefined) return fc.constant({})
      const required = schema.required ?? []
      return fc.record(Object.fromEntries(Object.entries(schema.properties).map(([name, property]) => [name, fitting(property, depth + 1)])), { requiredKeys: required.filter((name) => name in (schema.properties ?? {})) })
    }
    default: return oddValue
  }
}

function bodyFor (op: Operation): fc.Arbitrary<unknown> {
  const shaped = op.bodyFields.length === 0
    ? fc.constant({})
    : fc.record(Object.fromEntries(op.bodyFields.map((field) => [field, oddValue])), { requiredKeys: [] })
  return fc.oneof(
    ...(op.schema === undefined ? [] : [fitting(op.schema), fitting(op.schema)]),
    shaped,
    fc.jsonValue(),
    oddValue,
    fc.constant(undefined),
    fc.constantFrom('{', '{"a":', '[]', 'null', '"str"', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{}}}', '\u0000')
  )
}

/** Percent-encodes a segment; the RAW: prefix sends bytes as they are (broken escapes, encoded NUL, invalid UTF-8). */
function pathSegment (value: string): string {
  if (value.startsWith('RAW:')) return value.slice(4)
  return encodeURIComponent(value.toWellFormed())
}

const contentTypes = fc.oneof({ arbitrary: fc.constant('application/json'), weight: 6 }, { arbitrary: fc.constantFrom(
  undefined, 'application/json', 'application/json; charset=utf-8', 'application/json; charset=latin1', 'text/plain',
  'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/problem+json', 'application/jsonx',
  '', ';;;', 'application/json; charset=', '*/*'
), weight: 3 })

t.test('every route, any input: never 5xx, problem+json on error, no secret echoed', async (t) => {
  const ctx = await buildTestApp(t)
  const ops = await operations()
  t.ok(ops.length >= 15, `openapi.yaml lists the routes (${ops.length})`)
  const user = await enrolledUser(ctx, 7)
  const login = await startLogin(ctx, user)
  const realIds = { userId: user.id, phoneId: user.phoneId, challengeId: login.challengeId }

  // Mostly the valid key, so most requests reach validation and the handlers behind it.
  const authorization = fc.oneof({ arbitrary: fc.constant(`Bearer ${TEST_API_KEY}`), weight: 8 }, { arbitrary: fc.constantFrom(
    undefined, 'Bearer', 'Bearer ', `bearer ${TEST_API_KEY}`, `Basic ${Buffer.from(`x:${TEST_API_KEY}`).toString('base64')}`,
    `Bearer ${TEST_API_KEY}x`, `Bearer ${'a'.repeat(5000)}`, 'Bearer \u00e9\u00e9', `Bearer ${TEST_API_KEY} ${TEST_API_KEY}`
  ), weight: 2 })
  const param = (name: string) => fc.oneof(
    fc.constant((realIds as Record<string, string>)[name] ?? 'x'),
    oddString.filter((s) => s.length < 200),
    fc.uuid(),
    fc.constantFrom('RAW:%', 'RAW:%zz', 'RAW:%00', 'RAW:%ED%A0%80', 'RAW:%FF%FE', 'RAW:..', 'RAW:' + 'a'.repeat(2000))
  )

  const seen = new Map<string, number>()
  const statuses = new Map<number, number>()
  await fc.assert(fc.asyncProperty(
    fc.constantFrom(...ops).chain((op) => fc.record({
      op: fc.constant(op),
      params: fc.record(Object.fromEntries([...op.path.matchAll(/\{(\w+)\}/g)].map((m) => [m[1] as string, param(m[1] as string)]))),
      body: bodyFor(op),
      rawBody: fc.boolean(),
      contentType: contentTypes,
      auth: authorization,
      query: fc.option(fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 20 }), { maxKeys: 3 }), { nil: undefined })
    })),
    async ({ op, params, body, rawBody, contentType, auth, query }) => {
      const url = op.path.replace(/\{(\w+)\}/g, (_m, name: string) => pathSegment((params as Record<string, string>)[name] ?? ''))
      const headers: Record<string, string> = {}
      if (auth !== undefined) headers.authorization = auth
      if (contentType !== undefined) headers['content-type'] = contentType
      let payload: string | undefined
      if (body !== undefined) payload = rawBody && typeof body === 'string' ? body : JSON.stringify(body)
      const response = await ctx.app.inject({ method: op.method as 'GET', url, headers, query: query as Record<string, string> | undefined, ...(payload === undefined ? {} : { payload }) })
      statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1)
      seen.set(`${op.method} ${op.path}`, (seen.get(`${op.method} ${op.path}`) ?? 0) + 1)
      const what = `${op.method} ${url} ${contentType ?? '-'} ${(payload ?? '').slice(0, 200)} -> ${response.statusCode} ${response.body.slice(0, 300)}`
      if (response.statusCode >= 500) throw new Error(`5xx: ${what}`)
      if (response.statusCode >= 400 && !/^application\/problem\+json/.test(String(response.headers['content-type']))) {
        throw new Error(`error without problem+json: ${what}`)
      }
      const echoed = response.body + JSON.stringify(response.headers)
      if (echoed.includes(TEST_API_KEY)) throw new Error(`API key echoed: ${what}`)
      if (echoed.includes(STRONG_PASSWORD)) throw new Error(`password echoed: ${what}`)
      const password = (body as { password?: unknown } | null)?.password
      if (typeof password === 'string' && password.length >= 8 && echoed.includes(password)) throw new Error(`password echoed: ${what}`)
      const code = (body as { code?: unknown } | null)?.code
      if (typeof code === 'string' && /^\d{6}$/.test(code) && response.body.includes(code)) throw new Error(`code echoed: ${what}`)
      if (response.body.includes(user.recoveryCode)) throw new Error(`recovery code echoed: ${what}`)
    }
  ), { numRuns: RUNS, interruptAfterTimeLimit: 60_000 })
  const passed = [...statuses].filter(([status]) => status < 300).reduce((sum, [, n]) => sum + n, 0)
  t.ok(passed > 0, `some generated requests got past validation into the handlers (${[...statuses].sort().map(([k, v]) => `${k}: ${v}`).join(', ')})`)
  t.equal(seen.size, ops.length, `every route was tried (${[...seen].map(([k, v]) => `${k}: ${v}`).join(', ')})`)
})
