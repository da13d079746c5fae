// Contract section 0: every /v1 route needs a Bearer API key (webhooks excepted);
// missing or unknown key 401 unauthorized, a key without the route's scope 403 forbidden.
import t from 'tap'
import { buildTestApp, createUser, TEST_API_KEY } from '../helpers/app.js'
import { assertProblem } from '../helpers/problem.js'

const ctx = await buildTestApp(t)
const user = await createUser(ctx)
const keys = {
  login: (await ctx.app.apiKeys.create('backend-login', ['login'])).key,
  users: (await ctx.app.apiKeys.create('backend-users', ['users'])).key,
  admin: (await ctx.app.apiKeys.create('support-desk', ['admin'])).key,
  loginUsers: (await ctx.app.apiKeys.create('backend', ['login', 'users'])).key,
  all: (await ctx.app.apiKeys.create('ops', ['*'])).key
}

// One representative route per scope; the spec-wide sweep is further down.
const routes = {
  login: () => ['POST', '/v1/logins', { email: user.email, password: 'wrong password 1' }] as const,
  users: () => ['GET', `/v1/users/${user.id}`, undefined] as const,
  admin: () => ['GET', `/v1/users/${user.id}/events`, undefined] as const
}

async function call (scope: keyof typeof routes, headers: Record<string, string>) {
  const [method, url, payload] = routes[scope]()
  return await ctx.app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload }) })
}

t.test('no Authorization header is 401 unauthorized with a Bearer challenge', async (t) => {
  for (const scope of Object.keys(routes) as Array<keyof typeof routes>) {
    const response = await call(scope, {})
    assertProblem(t, response, 'unauthorized')
    t.match(response.headers['www-authenticate'], /^Bearer\b/, 'RFC 7235: a 401 says which scheme to use')
  }
})

t.test('malformed Authorization headers are 401, never 400 or 500', async (t) => {
  for (const authorization of ['', 'Bearer', 'Bearer ', `Basic ${Buffer.from(`x:${TEST_API_KEY}`).toString('base64')}`, TEST_API_KEY,
    `Bearer ${TEST_API_KEY} extra`, `Bearer  ${TEST_API_KEY}`, `Bearer ${'k'.repeat(5000)}`, 'Bearer ünïcödé', 'Bearer "quoted"', 'Bearer \t']) {
    const response = await call('users', { authorization })
    assertProblem(t, response, 'unauthorized')
  }
})

t.test('an unknown key is 401 and the answer never echoes it', async (t) => {
  const unknown = 'spa_this-key-was-never-issued-0123456789'
  for (const scope of Object.keys(routes) as Array<keyof typeof routes>) {
    const response = await call(scope, { authorization: `Bearer ${unknown}` })
    assertProblem(t, response, 'unauthorized')
    t.notMatch(response.body, unknown)
  }
})

t.test('a revoked key is 401 at once; its name can be revoked only once', async (t) => {
  const { key } = await ctx.app.apiKeys.create('short-lived', ['*'])
  t.equal((await call('users', { authorization: `Bearer ${key}` })).statusCode, 200, 'works before')
  t.equal(await ctx.app.apiKeys.revoke('short-lived'), true)
  for (const scope of Object.keys(routes) as Array<keyof typeof routes>) {
    assertProblem(t, await call(scope, { authorization: `Bearer ${key}` }), 'unauthorized')
  }
  t.equal(await ctx.app.apiKeys.revoke('short-lived'), false, 'already revoked')
})

t.test('the scheme name is case-insensitive (RFC 7235)', async (t) => {
  for (const scheme of ['bearer', 'BEARER', 'Bearer']) {
    t.equal((await call('users', { authorization: `${scheme} ${keys.users}` })).statusCode, 200, scheme)
  }
})

t.test('a key without the route scope is 403 forbidden naming the scope', async (t) => {
  const cases: Array<[keyof typeof keys, keyof typeof routes]> = [
    ['login', 'users'], ['login', 'admin'],
    ['users', 'login'], ['users', 'admin'],
    ['admin', 'login'], ['admin', 'users'],
    ['loginUsers', 'admin']
  ]
  for (const [key, scope] of cases) {
    const response = await call(scope, { authorization: `Bearer ${keys[key]}` })
    assertProblem(t, response, 'forbidden', new RegExp(`\\b${scope}\\b`))
  }
})

t.test('a key with the scope passes; * and the bootstrap key pass everywhere', async (t) => {
  t.equal((await call('login', { authorization: `Bearer ${keys.login}` })).statusCode, 401, 'login scope reaches the login (wrong password: invalid_credentials)')
  t.equal((await call('login', { authorization: `Bearer ${keys.login}` })).json().code, 'invalid_credentials')
  t.equal((await call('users', { authorization: `Bearer ${keys.users}` })).statusCode, 200)
  t.equal((await call('admin', { authorization: `Bearer ${keys.admin}` })).statusCode, 200)
  t.equal((await call('users', { authorization: `Bearer ${keys.loginUsers}` })).statusCode, 200)
  for (const key of [keys.all, TEST_API_KEY]) {
    t.equal((await call('users', { authorization: `Bearer ${key}` })).statusCode, 200)
    t.equal((await call('admin', { authorization: `Bearer ${key}` })).statusCode, 200)
    t.equal((await call('login', { authorization: `Bearer ${key}` })).json().code, 'invalid_credentials')
  }
})

t.test('keys are stored hashed: the table never holds a key', async (t) => {
  const rows = await ctx.db.prisma.apiClient.findMany()
  t.ok(rows.length >= 5)
  const dump = JSON.stringify(rows)
  for (const key of Object.values(keys)) t.notMatch(dump, key)
  for (const row of rows) t.match(row.keyHash, /^[0-9a-f]{64}$/)
})

t.test('the authentication check runs before the body is read', async (t) => {
  const malformed = await ctx.app.inject({ method: 'POST', url: '/v1/users', headers: { 'content-type': 'application/json' }, payload: '{"email":' })
  assertProblem(t, malformed, 'unauthorized')
  const wrongType = await ctx.app.inject({ method: 'POST', url: '/v1/users', headers: { 'content-type': 'text/plain' }, payload: 'hello' })
  assertProblem(t, wrongType, 'unauthorized')
})

t.test('operations routes and the Twilio webhook need no key', async (t) => {
  t.equal((await ctx.app.inject({ method: 'GET', url: '/health' })).statusCode, 200)
  t.equal((await ctx.app.inject({ method: 'GET', url: '/ready' })).statusCode, 200)
  t.equal((await ctx.app.inject({ method: 'GET', url: '/openapi.json' })).statusCode, 200)
  const webhook = await ctx.app.inject({ method: 'POST', url: '/v1/webhooks/twilio/status', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'MessageSid=SM1&MessageStatus=delivered' })
  assertProblem(t, webhook, 'invalid_signature')
})

t.test('every /v1 route in the spec demands its scope: 401 without a key, 403 with each other scope', async (t) => {
  const spec = ctx.app.swagger() as { paths: Record<string, Record<string, { tags?: string[] }>> }
  const scopeOfTag: Record<string, keyof typeof routes | null> = { users: 'users', phones: 'users', devices: 'users', policy: 'users', login: 'login', support: 'admin', webhooks: null, operations: null }
  let checked = 0
  for (const [path, operations] of Object.entries(spec.paths)) {
    const url = path.replace(/\{[^}]+\}/g, 'abc123')
    for (const [method, operation] of Object.entries(operations)) {
      const tag = operation.tags?.[0] ?? ''
      t.ok(tag in scopeOfTag, `${method} ${path} has a known tag (${tag})`)
      const scope = scopeOfTag[tag]
      if (scope === null || scope === undefined) continue
      checked++
      const inject = (authorization?: string) => ctx.app.inject({ method: method.toUpperCase() as 'GET', url, headers: authorization === undefined ? {} : { authorization } })
      assertProblem(t, await inject(), 'unauthorized')
      for (const other of ['login', 'users', 'admin'] as const) {
        const response = await inject(`Bearer ${keys[other]}`)
        if (other === scope) t.not(response.statusCode, 403, `${method} ${path} with its own scope ${scope}`)
        else assertProblem(t, response, 'forbidden')
      }
    }
  }
  t.ok(checked >= 15, `${checked} authenticated routes checked`)
})
