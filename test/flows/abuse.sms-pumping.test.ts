// SMS pumping: an attacker makes the service text numbers it profits from. Every
// budget below is attacked; a refused send must never reach (fake) Twilio.
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { buildTestApp, createUser, enrolledUser, phoneNumber, startLogin, TEST_API_KEY, type TestApp } from '../helpers/app.js'
import { assertProblem } from '../helpers/problem.js'

const GB_MOBILE = '+447400123456'

async function startEnrol (ctx: TestApp, number: string, userId?: string) {
  const id = userId ?? (await createUser(ctx)).id
  return await ctx.request('POST', `/v1/users/${id}/phones`, { phoneNumber: number })
}

async function counters (ctx: TestApp) {
  return await ctx.db.prisma.sendCounter.findMany({ orderBy: [{ scope: 'asc' }, { key: 'asc' }] })
}

t.test('per number per hour: other accounts cannot pump one number, and the login goes on with nothing sent', async (t) => {
  const ctx = await buildTestApp(t, { env: { SMS_PER_NUMBER_PER_HOUR: '2' } })
  const victim = await enrolledUser(ctx, 1)
  t.equal((await startEnrol(ctx, phoneNumber(1))).statusCode, 202, 'a second account may start verifying the same number')
  const sent = ctx.twilio.requests.length
  t.equal(sent, 2)

  const third = await startEnrol(ctx, phoneNumber(1))
  const body = assertProblem(t, third, 'send_limit_reached', /this number this hour/)
  t.ok(Number(body.retryAfter) > 0 && Number(body.retryAfter) <= 3600, 'retryAfter until the window ends')
  t.equal(ctx.twilio.requests.length, sent, 'the refused enrolment reached nobody')

  const login = await startLogin(ctx, victim)
  t.equal(login.status, 'challenge_required')
  t.equal(login.delivery, null, 'over the budget the login answers delivery: null')
  const resend = await ctx.request('POST', `/v1/logins/${login.challengeId}/send`, { channel: 'voice' })
  assertProblem(t, resend, 'send_limit_reached')
  t.equal(ctx.twilio.requests.length, sent, 'neither the login nor the resend reached Twilio, voice included')

  t.equal((await startEnrol(ctx, phoneNumber(2))).statusCode, 202, 'another number has its own budget')
  const refusals = await ctx.app.metrics.registry.getSingleMetric('spa_sends_refused_total')?.get()
  t.equal(refusals?.values.find((v) => v.labels.reason === 'number-hour')?.value, 3, 'each refusal is counted by reason')
})

t.test('per number per day holds when the hourly budget is off', async (t) => {
  const ctx = await buildTestApp(t, { env: { SMS_PER_NUMBER_PER_HOUR: '0', SMS_PER_NUMBER_PER_DAY: '1' } })
  t.equal((await startEnrol(ctx, phoneNumber(3))).statusCode, 202)
  assertProblem(t, await startEnrol(ctx, phoneNumber(3)), 'send_limit_reached', /this number today/)
  t.equal(ctx.twilio.requests.length, 1)
})

t.test('concurrent sends to one number cannot overshoot its budget', async (t) => {
  const ctx = await buildTestApp(t, { env: { SMS_PER_NUMBER_PER_HOUR: '3' } })
  const users = await Promise.all(Array.from({ length: 12 }, async () => await createUser(ctx)))
  const answers = await Promise.all(users.map(async (user) => await startEnrol(ctx, phoneNumber(4), user.id)))
  const statuses = answers.map((a) => a.statusCode).sort()
  t.same(statuses, [...Array(3).fill(202), ...Array(9).fill(429)], 'exactly the budget got through')
  t.equal(ctx.twilio.requests.length, 3, 'and exactly that many reached Twilio')
  const rows = await counters(ctx)
  t.same(rows.filter((r) => r.scope === 'number-hour').map((r) => r.count), [3])
})

t.test('per client IP per hour: one attacker cannot pump many numbers', async (t) => {
  const ctx = await buildTestApp(t, { env: { SMS_PER_IP_PER_HOUR: '2' } })
  const user = await createUser(ctx)
  const other = await createUser(ctx)
  // Enrolment has no context.ip: the caller's address (127.0.0.1 under inject) is the key.
  t.equal((await startEnrol(ctx, phoneNumber(5), user.id)).statusCode, 202)
  t.equal((await startEnrol(ctx, phoneNumber(6), other.id)).statusCode, 202)
  assertProblem(t, await startEnrol(ctx, phoneNumber(7)), 'send_limit_reached', /this network/)
  t.equal(ctx.twilio.requests.length, 2)
  t.equal(await ctx.db.prisma.sendCounter.count({ where: { scope: 'ip-hour', key: '127.0.0.1' } }), 1)
  const totals = new Map<string, number>()
  for (const row of await counters(ctx)) totals.set(row.scope, (totals.get(row.scope) ?? 0) + row.count)
  t.same(Object.fromEntries(totals), { 'ip-hour': 2, 'number-day': 2, 'number-hour': 2, 'prefix-day': 2 }, 'the refused send gave back what it took from the budgets that had room')
})

t.test('per country calling code per day: a burst to one region stops, others go on', async (t) => {
  const ctx = await buildTestApp(t, { env: { SMS_PER_PREFIX_PER_DAY: '2', ALLOWED_PHONE_COUNTRIES: 'US,CA,GB' } })
  t.equal((await startEnrol(ctx, phoneNumber(8))).statusCode, 202)
  t.equal((await startEnrol(ctx, '+16135550123')).statusCode, 202, 'CA shares +1 with US')
  assertProblem(t, await startEnrol(ctx, phoneNumber(9)), 'send_limit_reached', /this country/)
  t.equal((await startEnrol(ctx, GB_MOBILE)).statusCode, 202, '+44 has its own budget')
  t.same(ctx.twilio.requests.map((r) => r.to), [phoneNumber(8), '+16135550123', GB_MOBILE])
})

t.test('premium-rate numbers and disallowed countries never reach Twilio', async (t) => {
  const ctx = await buildTestApp(t, { env: { ALLOWED_PHONE_COUNTRIES: 'US,GB' } })
  assertProblem(t, await startEnrol(ctx, '+19005550123'), 'invalid_phone_number')
  assertProblem(t, await startEnrol(ctx, '+33612345678'), 'phone_country_not_allowed')
  const user = await createUser(ctx)
  const gb = await ctx.request('POST', `/v1/users/${user.id}/phones`, { phoneNumber: GB_MOBILE })
  t.equal(gb.statusCode, 202)
  const code = ctx.twilio.lastCodeFor(GB_MOBILE)
  t.equal((await ctx.request('POST', `/v1/users/${user.id}/phones/verify`, { verificationId: gb.json().verificationId, code })).statusCode, 200)
  t.equal(ctx.twilio.requests.length, 1)

  // GB is then dropped from the allowed countries: the stored number is checked again at every send.
  const narrowed = await buildApp({ config: { ...ctx.config, ALLOWED_PHONE_COUNTRIES: ['US'], DEFAULT_PHONE_COUNTRY: 'US' }, database: ctx.db })
  t.teardown(async () => { await narrowed.close() })
  const loginAnswer = await narrowed.inject({ method: 'POST', url: '/v1/logins', headers: { authorization: `Bearer ${TEST_API_KEY}` }, payload: { email: (await ctx.db.prisma.user.findUniqueOrThrow({ where: { id: user.id } })).email, password: 'Pirouette-Jete-1987!' } })
  t.equal(loginAnswer.json().status, 'challenge_required')
  t.equal(loginAnswer.json().delivery, null, 'nothing sent')
  const send = await narrowed.inject({ method: 'POST', url: `/v1/logins/${loginAnswer.json().challengeId}/send`, headers: { authorization: `Bearer ${TEST_API_KEY}` }, payload: { channel: 'sms' } })
  assertProblem(t, send, 'phone_country_not_allowed')
  t.equal(ctx.twilio.requests.length, 1, 'Twilio saw nothing after the first enrolment')
})

t.test('a failed delivery gives its send back to every budget', async (t) => {
  const ctx = await buildTestApp(t, { env: { SMS_PER_NUMBER_PER_HOUR: '2', SMS_PER_IP_PER_HOUR: '5' } })
  const user = await enrolledUser(ctx, 10)
  ctx.twilio.failNext(3, { status: 500 })
  const login = await startLogin(ctx, user)
  t.equal(login.delivery, null)
  for (const channel of ['sms', 'voice']) {
    assertProblem(t, await ctx.request('POST', `/v1/logins/${login.challengeId}/send`, { channel }), 'delivery_failed')
  }
  const rows = await counters(ctx)
  t.same(rows.filter((r) => r.scope.startsWith('number')).map((r) => r.count), [1, 1], 'three failed sends spent nothing: only the enrolment counts')
  const ok = await ctx.request('POST', `/v1/logins/${login.challengeId}/send`, { channel: 'sms' })
  t.equal(ok.statusCode, 202, 'the budget still has room for the retry')
})

t.test('the conversion signal: codes sent and verified per country calling code', async (t) => {
  const ctx = await buildTestApp(t, { env: { ALLOWED_PHONE_COUNTRIES: 'US,GB' } })
  await enrolledUser(ctx, 11)
  await startEnrol(ctx, GB_MOBILE)
  await startEnrol(ctx, GB_MOBILE)
  const sent = await ctx.app.metrics.registry.getSingleMetric('spa_codes_sent_by_prefix_total')?.get()
  const verified = await ctx.app.metrics.registry.getSingleMetric('spa_codes_verified_by_prefix_total')?.get()
  const value = (m: typeof sent, prefix: string) => m?.values.find((v) => v.labels.prefix === prefix)?.value ?? 0
  t.equal(value(sent, '+1'), 1)
  t.equal(value(verified, '+1'), 1)
  t.equal(value(sent, '+44'), 2, 'two codes to +44...')
  t.equal(value(verified, '+44'), 0, '...and none entered: the pumping signature')
})
