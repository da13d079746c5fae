// Issue 4 item 6: two instances, each with its own connection pool, on one database.
// Single-use codes, the recovery-code lock and lockouts are enforced by the database, so
// they must hold when the racing requests land on different instances.
import t from 'tap'
import type { InjectOptions } from 'fastify'
import { buildApp } from '../../src/app.js'
import { MAX_RECOVERY_FAILURES } from '../../src/lib/limits.js'
import { migratedDatabase } from '../helpers/database.js'
import { startFakeTwilio, type FakeTwilio } from '../helpers/fake-twilio.js'
import { enrolledUser, startLogin, testConfig, TEST_API_KEY, type TestApp } from '../helpers/app.js'
import { assertProblem } from '../helpers/problem.js'

const WRONG = 'AAAA-BBBB-CCCC-DDDD-EEEE'

async function twoInstances (t: Tap.Test): Promise<[TestApp, TestApp]> {
  const { db, url } = await migratedDatabase(t)
  const twilio: FakeTwilio = await startFakeTwilio(t)
  const config = await testConfig(t, { ...twilio.env, DATABASE_URL: url })
  const make = async (): Promise<TestApp> => {
    // No `database` option: each instance opens its own pool, as two processes would.
    const app = await buildApp({ config })
    t.teardown(async () => { await app.close() })
    await app.ready()
    return {
      app, twilio, db, config,
      async request (method, path, body, key = TEST_API_KEY) {
        return await app.inject({ method, url: path, headers: key === null ? {} : { authorization: `Bearer ${key}` }, ...(body === undefined ? {} : { payload: body as InjectOptions['payload'] }) })
      }
    }
  }
  return [await make(), await make()]
}

t.test('the same code sent to both instances at once succeeds once', async (t) => {
  const [one, two] = await twoInstances(t)
  for (let round = 0; round < 5; round++) {
    const user = await enrolledUser(one, 10 + round)
    const login = await startLogin(round % 2 === 0 ? one : two, user)
    const code = one.twilio.lastCodeFor(user.number)
    const answers = await Promise.all([one, two, one, two].map(async (ctx) => await ctx.request('POST', `/v1/logins/${login.challengeId}/verify`, { code })))
    const statuses = answers.map((answer) => answer.statusCode)
    t.equal(statuses.filter((status) => status === 200).length, 1, `round ${round}: exactly one success (${statuses.join(', ')})`)
    t.ok(statuses.every((status) => status === 200 || (status >= 400 && status < 500)), 'the others are refused, never a 5xx')
    const recorded = await one.db.prisma.securityEvent.count({ where: { userId: user.id, type: 'login.succeeded' } })
    t.equal(recorded, 1, `round ${round}: one login.succeeded event, written with the one completion`)
  }
})

t.test('wrong recovery codes spread over both instances lock the account at exactly 3, and the lock holds on both', async (t) => {
  const [one, two] = await twoInstances(t)
  const user = await enrolledUser(one, 20)
  const login = await startLogin(one, user)
  const answers = await Promise.all(Array.from({ length: 8 }, async (_, i) =>
    await (i % 2 === 0 ? one : two).request('POST', `/v1/logins/${login.challengeId}/recovery`, { recoveryCode: WRONG })))
  const wrong = answers.filter((answer) => answer.statusCode === 422)
  const locked = answers.filter((answer) => answer.statusCode === 423)
  // Checks beyond the limit that arrive while the last allowed ones are still running are told to wait.
  const waiting = answers.filter((answer) => answer.statusCode === 429 && answer.json().code === 'too_many_attempts')
  t.equal(wrong.length, MAX_RECOVERY_FAILURES - 1, `${MAX_RECOVERY_FAILURES - 1} wrong answers before the lock (${answers.map((a) => a.statusCode).join(', ')})`)
  t.same(wrong.map((answer) => answer.json().attemptsRemaining).sort(), [1, 2], 'each counted once, in order')
  t.ok(locked.length >= 1, 'the attempt that reached the limit locked the account')
  t.equal(locked.length + waiting.length, 8 - wrong.length, 'every other attempt meets the lock or is told to wait')
  const stored = await one.db.prisma.user.findUniqueOrThrow({ where: { id: user.id } })
  t.equal(stored.recoveryFailures, MAX_RECOVERY_FAILURES, 'the counter stopped at the limit')
  t.not(stored.lockedAt, null, 'the account is locked')

  // The lock holds on the other instance, for every way in.
  const right = await two.request('POST', `/v1/logins/${login.challengeId}/recovery`, { recoveryCode: user.recoveryCode })
  assertProblem(t, right, 'account_locked')
  const again = await two.request('POST', '/v1/logins', { email: user.email, password: 'Pirouette-Jete-1987!' })
  t.ok(again.statusCode === 423 || (again.statusCode === 200 && again.json().status !== 'authenticated'), `a new login on the other instance does not get in (${again.statusCode} ${again.body})`)
  if (again.statusCode === 200 && typeof again.json().challengeId === 'string') {
    const code = one.twilio.lastCodeFor(user.number)
    assertProblem(t, await one.request('POST', `/v1/logins/${again.json().challengeId as string}/verify`, { code }), 'account_locked')
  }
})

t.test('two right recovery codes at once: one wins, the loser gets a 4xx and is not a wrong attempt', async (t) => {
  const [one, two] = await twoInstances(t)
  for (let round = 0; round < 3; round++) {
    const user = await enrolledUser(one, 30 + round)
    const login = await startLogin(one, user)
    const answers = await Promise.all([one, two].map(async (ctx) =>
      await ctx.request('POST', `/v1/logins/${login.challengeId}/recovery`, { recoveryCode: user.recoveryCode })))
    const statuses = answers.map((answer) => answer.statusCode)
    t.equal(statuses.filter((status) => status === 200).length, 1, `round ${round}: one success (${answers.map((a) => `${a.statusCode} ${a.json().code ?? ''}`).join(', ')})`)
    const loser = answers.find((answer) => answer.statusCode !== 200)
    if (loser !== undefined) {
      t.ok([410, 422].includes(loser.statusCode), `the loser gets 410 or 422: ${loser.statusCode} ${loser.body}`)
      t.match(loser.headers['content-type'], /^application\/problem\+json/)
    }
    const stored = await one.db.prisma.user.findUniqueOrThrow({ where: { id: user.id } })
    t.equal(stored.recoveryFailures, 0, 'losing the race is not a wrong attempt')
    t.equal(stored.lockedAt, null)
  }
})
