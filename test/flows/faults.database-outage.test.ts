// Issue 4 item 6: the database goes away while requests run. A TCP proxy in front of the
// shared PostgreSQL is the service's DATABASE_URL; cutting it touches only this test's
// connections. Requests must fail fast as 503 `unavailable`, /ready must say so, the
// service must come back on its own, and nothing recorded before the outage may be lost.
import t from 'tap'
import type { InjectOptions } from 'fastify'
import { buildApp } from '../../src/app.js'
import { DB_CONNECT_TIMEOUT_MS, DB_QUERY_TIMEOUT_MS } from '../../src/lib/limits.js'
import { migratedDatabase } from '../helpers/database.js'
import { startFakeTwilio } from '../helpers/fake-twilio.js'
import { enrolledUser, startLogin, testConfig, TEST_API_KEY, type TestApp } from '../helpers/app.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { assertProblem } from '../helpers/problem.js'

/** A request may wait for one connection attempt and one query timeout, plus slack for a busy machine. */
const ANSWER_BOUND_MS = DB_CONNECT_TIMEOUT_MS + DB_QUERY_TIMEOUT_MS + 3_000

t.test('a database outage gives fast 503s, /ready 503, self-recovery and no lost state', async (t) => {
  const { db: direct, url } = await migratedDatabase(t)
  const target = new URL(url)
  const proxy = await startTcpProxy(t, { host: target.hostname, port: Number(target.port || 5432) })
  const proxied = new URL(url)
  proxied.port = String(proxy.port)
  const twilio = await startFakeTwilio(t)
  const config = await testConfig(t, { ...twilio.env, DATABASE_URL: proxied.toString() })
  // No `database` option: the app opens and owns its pool, through the proxy.
  const app = await buildApp({ config })
  t.teardown(async () => { proxy.restore(); await app.close() })
  await app.ready()
  const ctx: TestApp = {
    app, twilio, db: direct, config,
    async request (method, path, body, key = TEST_API_KEY) {
      return await app.inject({ method, url: path, headers: key === null ? {} : { authorization: `Bearer ${key}` }, ...(body === undefined ? {} : { payload: body as InjectOptions['payload'] }) })
    }
  }

  const user = await enrolledUser(ctx, 1)
  // A: verified (its code consumed). B: two wrong codes recorded.
  const a = await startLogin(ctx, user)
  const aCode = twilio.lastCodeFor(user.number) ?? ''
  t.equal((await ctx.request('POST', `/v1/logins/${a.challengeId}/verify`, { code: aCode })).statusCode, 200)
  const b = await startLogin(ctx, user)
  const bCode = twilio.lastCodeFor(user.number) ?? ''
  const wrong = bCode === '000000' ? '111111' : '000000'
  for (let i = 0; i < 2; i++) t.equal((await ctx.request('POST', `/v1/logins/${b.challengeId}/verify`, { code: wrong })).statusCode, 422)
  const snapshot = async () => ({
    challenges: await direct.prisma.otpChallenge.findMany({ where: { userId: user.id }, orderBy: { id: 'asc' }, select: { id: true, failedAttempts: true, completedAt: true, closedAt: true, codeHash: true, sendCount: true } }),
    user: await direct.prisma.user.findUniqueOrThrow({ where: { id: user.id }, select: { codeFailures: true, recoveryFailures: true, lockedAt: true, codeLockedUntil: true } })
  })
  const before = await snapshot()

  // Every request that needs the database, all at once during the outage.
  const burst = async (label: string) => {
    const requests: Array<[string, () => Promise<Awaited<ReturnType<TestApp['request']>>>]> = [
      ['login', async () => await ctx.request('POST', '/v1/logins', { email: user.email, password: 'Pirouette-Jete-1987!' })],
      ['wrong code', async () => await ctx.request('POST', `/v1/logins/${b.challengeId}/verify`, { code: wrong })],
      ['consumed code', async () => await ctx.request('POST', `/v1/logins/${a.challengeId}/verify`, { code: aCode })],
      ['get user', async () => await ctx.request('GET', `/v1/users/${user.id}`)],
      ['ready', async () => await app.inject({ method: 'GET', url: '/ready' })]
    ]
    await Promise.all(requests.map(async ([name, send]) => {
      const started = Date.now()
      const response = await send()
      const took = Date.now() - started
      t.ok(took < ANSWER_BOUND_MS, `${label}: ${name} answered in ${took} ms`)
      assertProblem(t, response, 'unavailable')
      t.equal(response.headers['retry-after'], '5', `${label}: ${name} says when to retry`)
    }))
  }

  proxy.cut()
  await burst('refused')
  t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200, 'liveness does not depend on the database')

  proxy.restore()
  // Warm the pool again so the black hole catches connections that are already open.
  t.equal((await ctx.request('GET', `/v1/users/${user.id}`)).statusCode, 200)
  proxy.hang()
  await burst('black hole')

  proxy.restore()
  const deadline = Date.now() + 20_000
  let ready = 0
  while (Date.now() < deadline) {
    ready = (await app.inject({ method: 'GET', url: '/ready' })).statusCode
    if (ready === 200) break
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  t.equal(ready, 200, 'the service recovers by itself')

  t.same(await snapshot(), before, 'no counter, consumed code or lock changed during the outage')
  const replay = await ctx.request('POST', `/v1/logins/${a.challengeId}/verify`, { code: aCode })
  assertProblem(t, replay, 'challenge_closed', undefined)
  const third = await ctx.request('POST', `/v1/logins/${b.challengeId}/verify`, { code: wrong })
  assertProblem(t, third, 'invalid_code')
  t.equal(third.json().attemptsRemaining, 2, 'the wrong-code count is exactly 3 of 5')
  const right = await ctx.request('POST', `/v1/logins/${b.challengeId}/verify`, { code: bCode })
  t.equal(right.statusCode, 200, 'and the right code still works after recovery')
})
