// Contract section 0: JSON in, unknown properties refused, a malformed body, wrong types
// or a missing field is 400 invalid_request naming the field; no input ever gives a 5xx.
import t from 'tap'
import { buildTestApp, createUser, enrolledUser, TEST_API_KEY } from '../helpers/app.js'
import { assertProblem } from '../helpers/problem.js'

const ctx = await buildTestApp(t)
const auth = { authorization: `Bearer ${TEST_API_KEY}` }

async function post (url: string, payload: string | object, contentType = 'application/json') {
  return await ctx.app.inject({ method: 'POST', url, headers: { ...auth, 'content-type': contentType }, payload: typeof payload === 'string' ? payload : JSON.stringify(payload) })
}

t.test('an unknown body property is 400 naming it', async (t) => {
  const response = await post('/v1/users', { email: 'ana@studio.example', password: 'Arabesque-42-Plie', isAdmin: true })
  assertProblem(t, response, 'invalid_request', /isAdmin/)
  t.equal(await ctx.db.prisma.user.count({ where: { email: 'ana@studio.example' } }), 0, 'nothing was created')
  const nested = await post('/v1/logins', { email: 'ana@studio.example', password: 'x', context: { ip: '10.0.0.1', country: 'US' } })
  assertProblem(t, nested, 'invalid_request', /context\.country/)
})

t.test('wrong types are 400 naming the field, and never coerced', async (t) => {
  const cases: Array<[object, RegExp]> = [
    [{ email: 12345, password: 'Arabesque-42-Plie' }, /email/],
    [{ email: ['a@b.example'], password: 'Arabesque-42-Plie' }, /email/],
    [{ email: 'a@b.example', password: 123456789 }, /password/],
    [{ email: 'a@b.example', password: null }, /password/],
    [{ email: 'a@b.example', password: { value: 'x' } }, /password/],
    [{ email: 'a@b.example', password: 'Arabesque-42-Plie', role: 7 }, /role/],
    [{ email: 'a@b.example', password: 'Arabesque-42-Plie', role: true }, /role/],
    [{ email: 'a@b.example', password: 'Arabesque-42-Plie', organizationId: 42 }, /organizationId/],
    [{ email: 'not-an-email', password: 'Arabesque-42-Plie' }, /email/]
  ]
  for (const [body, field] of cases) assertProblem(t, await post('/v1/users', body), 'invalid_request', field)
  const user = await createUser(ctx)
  assertProblem(t, await post(`/v1/users/${user.id}/phones`, { phoneNumber: 4155550167 }), 'invalid_request', /phoneNumber/)
  assertProblem(t, await post(`/v1/users/${user.id}/phones`, { phoneNumber: '+14155550167', channel: 'fax' }), 'invalid_request', /channel/)
  assertProblem(t, await post(`/v1/users/${user.id}/phones/verify`, { verificationId: 'abc', code: 123456 }), 'invalid_request', /code/)
  assertProblem(t, await post(`/v1/users/${user.id}/phones/verify`, { verificationId: 'abc', code: '12345' }), 'invalid_request', /code/)
  assertProblem(t, await post('/v1/logins', { email: user.email, password: 'x', context: 'browser' }), 'invalid_request', /context/)
})

t.test('a missing field is 400 naming it', async (t) => {
  assertProblem(t, await post('/v1/users', { email: 'a@b.example' }), 'invalid_request', /password is required/)
  assertProblem(t, await post('/v1/users', { password: 'Arabesque-42-Plie' }), 'invalid_request', /email is required/)
  assertProblem(t, await post('/v1/users', {}), 'invalid_request', /is required/)
  const user = await createUser(ctx)
  assertProblem(t, await post(`/v1/users/${user.id}/phones`, { label: 'Work' }), 'invalid_request', /phoneNumber is required/)
  assertProblem(t, await post(`/v1/users/${user.id}/lock`, {}), 'invalid_request', /reason is required/)
})

t.test('malformed JSON is 400 and the answer never echoes the body', async (t) => {
  const secret = 'Sup3r-Secret-Grand-Jete!'
  for (const payload of [
    `{"email":"ana@studio.example","password":"${secret}"`,
    `{"email":"ana@studio.example","password":'${secret}'}`,
    `{"email":"ana@studio.example","password":"${secret}",}`,
    `{"password":"${secret}" "email":"x"}`,
    `${secret}`
  ]) {
    const response = await post('/v1/users', payload)
    const body = assertProblem(t, response, 'invalid_request', /not valid JSON/)
    t.notMatch(response.body, secret, 'the password is not echoed')
    t.notMatch(response.body, 'Sup3r', 'no part of it either')
    t.notMatch(String(body.detail), /position|token|Unexpected/i, 'no parser message that could quote the body')
  }
})

t.test('an empty body, or JSON that is not an object, is 400', async (t) => {
  assertProblem(t, await post('/v1/users', ''), 'invalid_request')
  for (const payload of ['null', '[]', '"text"', '42', 'true', '[{"email":"a@b.example","password":"Arabesque-42-Plie"}]']) {
    assertProblem(t, await post('/v1/users', payload), 'invalid_request')
  }
})

t.test('prototype-poisoning keys are refused, not merged', async (t) => {
  for (const payload of [
    '{"email":"proto@studio.example","password":"Arabesque-42-Plie","__proto__":{"role":"admin"}}',
    '{"email":"proto@studio.example","password":"Arabesque-42-Plie","constructor":{"prototype":{"role":"admin"}}}'
  ]) {
    const response = await post('/v1/users', payload)
    t.equal(response.statusCode, 400, response.body)
    t.match(response.headers['content-type'], /^application\/problem\+json/)
  }
  t.equal(await ctx.db.prisma.user.count({ where: { email: 'proto@studio.example' } }), 0)
})

t.test('a body over the limit is 413 payload_too_large', async (t) => {
  const response = await post('/v1/users', { email: 'big@studio.example', password: 'x'.repeat(64 * 1024) })
  assertProblem(t, response, 'payload_too_large')
  const huge = await post('/v1/users', '{"email":"' + 'a'.repeat(2 * 1024 * 1024) + '"}')
  assertProblem(t, huge, 'payload_too_large')
})

t.test('a body that is not JSON is 415 unsupported_media_type', async (t) => {
  const body = 'email=ana%40studio.example&password=Arabesque-42-Plie'
  assertProblem(t, await post('/v1/users', body, 'application/x-www-form-urlencoded'), 'unsupported_media_type')
  assertProblem(t, await post('/v1/users', body, 'text/plain'), 'unsupported_media_type')
  assertProblem(t, await post('/v1/users', '<user/>', 'application/xml'), 'unsupported_media_type')
  assertProblem(t, await post('/v1/users', '--x\r\n\r\n--x--', 'multipart/form-data; boundary=x'), 'unsupported_media_type')
  const noType = await ctx.app.inject({ method: 'POST', url: '/v1/users', headers: auth, payload: Buffer.from('{"email":"a@b.example"}') })
  t.ok([400, 415].includes(noType.statusCode), `no content type: ${noType.statusCode}`)
  t.match(noType.headers['content-type'], /^application\/problem\+json/)
})

t.test('JSON with a charset parameter is still JSON', async (t) => {
  const response = await post('/v1/users', { email: 'charset@studio.example', password: 'Arabesque-42-Plie' }, 'application/json; charset=utf-8')
  t.equal(response.statusCode, 201, response.body)
})

t.test('a route that takes no body refuses one with properties, naming the first', async (t) => {
  const user = await createUser(ctx)
  assertProblem(t, await ctx.request('DELETE', `/v1/users/${user.id}`, { force: true }), 'invalid_request', /body\.force/)
  assertProblem(t, await ctx.request('POST', `/v1/users/${user.id}/recovery-code`, { length: 10 }), 'invalid_request', /length/)
  t.equal((await ctx.request('GET', `/v1/users/${user.id}`)).statusCode, 200, 'the user is still there')
  t.equal((await ctx.request('DELETE', `/v1/users/${user.id}`, {})).statusCode, 204, 'an empty object is no body')
})

t.test('a URL that is not valid percent-encoding, or a path parameter over the router limit, is 400 problem+json', async (t) => {
  assertProblem(t, await ctx.request('GET', '/v1/users/%ff'), 'invalid_request', /URL/)
  assertProblem(t, await ctx.request('GET', `/v1/users/${'a'.repeat(2000)}`), 'invalid_request', /too long/)
  assertProblem(t, await ctx.request('GET', `/v1/users/${'a'.repeat(65)}`), 'invalid_request', /userId/)
})

t.test('strings Postgres cannot store (NUL) are 400, not 500', async (t) => {
  const user = await enrolledUser(ctx, 50)
  const cases: Array<[string, string, object]> = [
    ['POST', '/v1/users', { email: 'nul@studio.example', password: 'Arabesque-42-Plie', organizationId: 'studio\u0000one' }],
    ['POST', '/v1/users', { email: 'nul2@studio.example', password: 'Arabesque\u0000-42-Plie' }],
    ['PATCH', `/v1/users/${user.id}`, { organizationId: '\u0000' }],
    ['POST', `/v1/users/${user.id}/phones`, { phoneNumber: '+14155550177', label: 'Work\u0000' }],
    ['PATCH', `/v1/users/${user.id}/phones/${user.phoneId}`, { label: '\u0000' }],
    ['POST', `/v1/users/${user.id}/lock`, { reason: 'fraud\u0000' }],
    ['POST', `/v1/users/${user.id}/unlock`, { reason: '\u0000' }],
    ['DELETE', `/v1/users/${user.id}/two-factor`, { reason: '\u0000' }],
    ['POST', '/v1/logins', { email: user.email, password: 'Pirouette-Jete-1987!', context: { userAgent: 'Mozilla\u0000', ip: '\u0000' } }]
  ]
  for (const [method, url, body] of cases) {
    const response = await ctx.request(method as 'POST', url, body)
    assertProblem(t, response, 'invalid_request', /NUL/)
  }
  t.equal(await ctx.db.prisma.user.count({ where: { email: { startsWith: 'nul' } } }), 0, 'nothing was stored')
  t.equal((await ctx.request('GET', `/v1/users/${user.id}`)).json().locked, false, 'the lock did not happen')
})

// --- the sweep: every route of the generated spec, fed garbage --------------------------------

const HUGE = 'x'.repeat(15_000)
const GARBAGE_VALUES: unknown[] = [
  null, true, 0, -1, 1e308, 3.14, '', ' ', 'null', '123', '-1', '1e9', 'true', '[]', '{}',
  HUGE, 'ünïcödé ☎️ 𝄞 \u202e', '\u0000', '\ud800', '<script>alert(1)</script>', "' OR 1=1 --", '../../etc/passwd', '%00',
  [], ['a'], [null], {}, { $gt: '' }, { __proto__: { polluted: true } }
]
const GARBAGE_BODIES: Array<string | undefined> = [
  undefined, '', '{}', '[]', 'null', '"string"', '0', '{"a":', '{"a":1}', JSON.stringify({ x: HUGE }),
  JSON.stringify(Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, i]))),
  JSON.stringify(JSON.parse('['.repeat(500) + ']'.repeat(500)))
]
const GARBAGE_SEGMENTS = ['0', '-1', 'null', 'undefined', '%00', '%E2%98%8E', 'a'.repeat(65), 'a'.repeat(2000), '..', '%2e%2e', 'x%20y', '00000000-0000-0000-0000-000000000000', "'1'", '%ff']

function fieldsOf (schema: unknown): string[] {
  const s = schema as { properties?: Record<string, unknown> } | undefined
  return Object.keys(s?.properties ?? {})
}

interface Operation { requestBody?: { content?: Record<string, { schema?: unknown }> }, parameters?: Array<{ in: string, name: string }> }

t.test('every route of the spec, fed garbage params, queries and bodies, never answers 5xx and always errs in problem+json', async (t) => {
  const spec = ctx.app.swagger() as { paths: Record<string, Record<string, Operation>> }
  const victim = await enrolledUser(ctx, 60)
  const started = await ctx.request('POST', `/v1/users/${victim.id}/phones`, { phoneNumber: '+14155550199' })
  const verificationId = started.json().verificationId as string
  const login = await ctx.request('POST', '/v1/logins', { email: victim.email, password: 'Pirouette-Jete-1987!' })
  const real: Record<string, string> = { userId: victim.id, phoneId: victim.phoneId, challengeId: login.json().challengeId }
  let requests = 0
  const failures: string[] = []

  async function probe (method: string, url: string, payload: string | undefined, contentType = 'application/json') {
    requests++
    const response = await ctx.app.inject({
      method: method as 'POST',
      url,
      headers: { ...auth, ...(payload === undefined ? {} : { 'content-type': contentType }) },
      ...(payload === undefined ? {} : { payload })
    })
    const label = `${method} ${url.slice(0, 120)} ${payload === undefined ? '' : payload.slice(0, 80)}`
    if (response.statusCode >= 500 && response.statusCode !== 502) failures.push(`${label} -> ${response.statusCode} ${response.body}`)
    if (response.statusCode >= 400 && !/^application\/problem\+json/.test(String(response.headers['content-type']))) {
      failures.push(`${label} -> ${response.statusCode} not problem+json: ${response.headers['content-type']}`)
    }
    return response
  }

  for (const [path, operations] of Object.entries(spec.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      const verb = method.toUpperCase()
      const withReal = path.replace(/\{([^}]+)\}/g, (_, name: string) => real[name] ?? 'abc')
      const jsonSchema = operation.requestBody?.content?.['application/json']?.schema
      const contentType = operation.requestBody?.content?.['application/json'] === undefined && operation.requestBody !== undefined ? 'application/x-www-form-urlencoded' : 'application/json'
      const fields = fieldsOf(jsonSchema)

      // garbage path segments
      for (const segment of GARBAGE_SEGMENTS) {
        await probe(verb, path.replace(/\{[^}]+\}/g, segment), verb === 'GET' || verb === 'DELETE' ? undefined : '{}')
      }
      // garbage whole bodies
      for (const body of GARBAGE_BODIES) await probe(verb, withReal, body, contentType)
      // each known field set to each garbage value, alone and among otherwise sensible fields
      for (const field of fields) {
        for (const value of GARBAGE_VALUES) {
          await probe(verb, withReal, JSON.stringify({ [field]: value }), contentType)
        }
      }
      // garbage query strings
      for (const query of ['?limit=0', '?limit=abc', '?limit=-5', '?limit=99999', '?limit=1&limit=2', '?before=%00', '?email=', '?email[]=a', '?email=%E2%98%8E@x.example', `?x=${HUGE.slice(0, 3000)}`, '?__proto__[x]=1', '?constructor[prototype][x]=1']) {
        await probe(verb, withReal + query, verb === 'GET' || verb === 'DELETE' ? undefined : '{}')
      }
    }
  }
  // the verification that was started above must still be the only one of its kind: nothing garbage created state
  t.ok(verificationId.length > 0)
  t.same(failures, [], `${requests} garbage requests, none answered 5xx or outside problem+json`)
  t.ok(requests > 1000, `${requests} requests sent`)
})
