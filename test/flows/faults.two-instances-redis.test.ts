// Issue 4: two instances listening on their own ports, sharing PostgreSQL AND Redis, as a
// deployment behind a load balancer runs them. The per-IP limits live in Redis and the SMS
// budgets in PostgreSQL, so an attacker who spreads requests over the instances must meet
// exactly one budget, not one per instance.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { migratedDatabase } from '../helpers/database.js'
import { startFakeTwilio, type FakeTwilio } from '../helpers/fake-twilio.js'
import { enrolledUser, STRONG_PASSWORD, testConfig, TEST_API_KEY, type TestApp } from '../helpers/app.js'

const REDIS_URL = 'redis://127.0.0.1:6379'

interface Instance extends TestApp { url: string }

/** Two listening instances with their own pools and Redis connections; one key prefix per test so parallel runs never share counters. */
async function twoInstances (t: Tap.Test, env: Record<string, string>): Promise<[Instance, Instance]> {
  const { db, url: databaseUrl } = await migratedDatabase(t)
  const twilio: FakeTwilio = await startFakeTwilio(t)
  const prefix = `spa-test-${randomUUID()}:`
  const config = await testConfig(t, { ...twilio.env, DATABASE_URL: databaseUrl, REDIS_URL, REDIS_KEY_PREFIX: prefix, ...env })
  t.teardown(async () => {
    const redis = new Redis(REDIS_URL)
    const keys = await redis.keys(`${prefix}*`)
    if (keys.length > 0) await redis.del(...keys)
    redis.disconnect()
  })
  const make = async (): Promise<Instance> => {
    const app: FastifyInstance = await buildApp({ config })
    t.teardown(async () => { await app.close() })
    const url = await app.listen({ host: '127.0.0.1', port: 0 })
    return {
      app, twilio, db, config, url,
      // Over the network, not inject: each instance is reached on its own port.
      async request (method, path, body, key = TEST_API_KEY) {
        const response = await fetch(`${url}${path}`, {
          method: method as string,
          headers: { ...(key === null ? {} : { authorization: `Bearer ${key}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          ...(body === undefined ? {} : { body: JSON.stringify(body) })
        })
        const text = await response.text()
        return { statusCode: response.status, body: text, headers: Object.fromEntries(response.headers), json: () => JSON.parse(text) } as never
      }
    }
  }
  const one = await make()
  const two = await make()
  t.not(one.url, two.url, 'two ports')
  return [one, two]
}

t.test('the per-IP login limit is one budget across both instances', async (t) => {
  const [one, two] = await twoInstances(t, { RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: '6' })
  const user = await enrolledUser(one, 40)
  const context = { ip: '203.0.113.41' }
  const answers = await Promise.all([one, one, one, one, two, two, two, two].map(async (ctx) =>
    await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD, context })))
  const statuses = answers.map((answer) => answer.statusCode)
  t.equal(statuses.filter((status) => status === 200).length, 6, `exactly 6 pass (${statuses.join(', ')})`)
  const refused = answers.filter((answer) => answer.statusCode === 429)
  t.equal(refused.length, 2, 'the rest are refused')
  for (const answer of refused) {
    t.equal(answer.json().code, 'too_many_requests')
    t.ok(Number(answer.headers['retry-after']) > 0, 'with retry-after')
  }

  // Both instances now refuse that IP; another IP still has its own budget on either.
  t.equal((await two.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD, context })).statusCode, 429)
  t.equal((await one.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD, context })).statusCode, 429)
  t.equal((await two.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD, context: { ip: '203.0.113.42' } })).statusCode, 200)
  // Only the logins that passed texted a code: 6 plus the one of the other IP, plus the enrolment.
  t.equal(one.twilio.requests.filter((r) => r.to === user.number).length, 1 + 6 + 1)
})

t.test('the per-IP send limit is one budget across both instances', async (t) => {
  const [one, two] = await twoInstances(t, { RATE_LIMIT_SEND_PER_IP_PER_MINUTE: '3', RESEND_COOLDOWN_SECONDS: '0' })
  const user = await enrolledUser(one, 41)
  const context = { ip: '198.51.100.7' }
  const login = (await one.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD, context })).json() as { challengeId: string }
  const statuses: number[] = []
  for (let i = 0; i < 6; i++) {
    const answer = await (i % 2 === 0 ? two : one).request('POST', `/v1/logins/${login.challengeId}/send`, { channel: 'sms', context })
    statuses.push(answer.statusCode)
  }
  t.same(statuses, [202, 202, 202, 429, 429, 429], 'the fourth resend is refused, whichever instance gets it')
})

t.test('the per-number SMS budget holds across both instances, even when they race', async (t) => {
  const [one, two] = await twoInstances(t, { SMS_PER_NUMBER_PER_HOUR: '4' })
  const user = await enrolledUser(one, 42)
  t.equal(one.twilio.requests.filter((r) => r.to === user.number).length, 1, 'the enrolment took one of the 4')
  const answers = await Promise.all(Array.from({ length: 8 }, async (_, i) =>
    await (i % 2 === 0 ? one : two).request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD, context: { ip: `192.0.2.${i + 1}` } })))
  t.ok(answers.every((answer) => answer.statusCode === 200), `every login goes on (${answers.map((a) => a.statusCode).join(', ')})`)
  const delivered = answers.filter((answer) => answer.json().delivery !== null)
  t.equal(delivered.length, 3, 'exactly the 3 left in the budget got a code')
  t.equal(one.twilio.requests.filter((r) => r.to === user.number).length, 4, 'and exactly 4 texts reached Twilio')
  const rows = await one.db.prisma.sendCounter.findMany({ where: { scope: 'number-hour' } })
  t.same(rows.map((row) => row.count), [4], 'the shared counter stopped at the limit')
})
