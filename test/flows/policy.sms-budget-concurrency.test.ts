// Contract section 6: smsDailyLimit caps the texts and calls of an organization per day,
// enrolment codes included, security notices not; concurrent sends cannot overshoot it.
import t from 'tap'
import { assertProblem } from '../helpers/problem.js'
import { buildTestApp, createUser, email, enrolPhone, phoneNumber, STRONG_PASSWORD, type TestApp } from '../helpers/app.js'

const POLICY = { requiredRoles: ['*'], allowedMethods: ['sms', 'voice', 'totp'], rememberDeviceDays: 30, enrollmentGraceDays: 0, smsDailyLimit: 1000 }

async function orgUsers (ctx: TestApp, organizationId: string, count: number, first: number) {
  const users = []
  for (let i = 0; i < count; i++) {
    const created = (await ctx.request('POST', '/v1/users', { email: email(), password: STRONG_PASSWORD, organizationId })).json() as { id: string, email: string }
    const number = phoneNumber(first + i)
    const enrolled = await enrolPhone(ctx, created.id, number)
    users.push({ ...created, number, phoneId: enrolled.phone.id })
  }
  return users
}

async function spent (ctx: TestApp, organizationId: string): Promise<number> {
  const rows = await ctx.db.prisma.orgSmsBudget.findMany({ where: { organizationId } })
  return rows.reduce((sum, row) => sum + row.count, 0)
}

t.test('limit 3, 10 parallel logins then 10 parallel sends: exactly 3 of each reach Twilio', async (t) => {
  const ctx = await buildTestApp(t)
  const users = await orgUsers(ctx, 'studio-busy', 10, 1)
  t.equal(await spent(ctx, 'studio-busy'), 10, 'the 10 enrolment codes were counted')
  await ctx.request('PUT', '/v1/organizations/studio-busy/policy', { ...POLICY, smsDailyLimit: 3 })
  await ctx.db.prisma.orgSmsBudget.deleteMany({ where: { organizationId: 'studio-busy' } })
  ctx.twilio.reset()

  const logins = await Promise.all(users.map(async (user) => await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD })))
  t.ok(logins.every((r) => r.statusCode === 200 && r.json().status === 'challenge_required'), 'every login still gets its challenge')
  const delivered = logins.filter((r) => r.json().delivery !== null)
  t.equal(delivered.length, 3, 'three logins had their code sent')
  t.equal(logins.filter((r) => r.json().delivery === null && r.json().deliveryError === undefined).length, 7, 'seven answered delivery: null')
  t.equal(ctx.twilio.requests.length, 3, 'the fake Twilio saw exactly 3 messages')
  t.equal(await spent(ctx, 'studio-busy'), 3)

  // A new day (the counter row gone): ten sends at once, on every challenge.
  await ctx.db.prisma.orgSmsBudget.deleteMany({ where: { organizationId: 'studio-busy' } })
  await ctx.db.prisma.otpChallenge.updateMany({ where: { id: { in: logins.map((r) => r.json().challengeId) } }, data: { lastSentAt: null } })
  ctx.twilio.reset()
  const sends = await Promise.all(logins.map(async (r) => await ctx.request('POST', `/v1/logins/${r.json().challengeId}/send`, { channel: 'sms' })))
  t.equal(sends.filter((r) => r.statusCode === 202).length, 3, 'three sends accepted')
  const refused = sends.filter((r) => r.statusCode !== 202)
  t.equal(refused.length, 7)
  for (const response of refused) {
    const body = assertProblem(t, response, 'send_limit_reached')
    t.ok(Number(response.headers['retry-after']) > 0 && Number(response.headers['retry-after']) <= 86_400, 'Retry-After: until the next UTC day')
    t.equal(body.retryAfter, Number(response.headers['retry-after']))
  }
  t.equal(ctx.twilio.requests.length, 3, 'the fake Twilio saw exactly 3 more')
  t.equal(await spent(ctx, 'studio-busy'), 3)
})

t.test('over budget: enrolment is refused, other studios are untouched, security notices still go out', async (t) => {
  const ctx = await buildTestApp(t)
  const [owner] = await orgUsers(ctx, 'studio-full', 1, 20)
  const backup = await enrolPhone(ctx, owner!.id, phoneNumber(21))
  await ctx.request('PUT', '/v1/organizations/studio-full/policy', { ...POLICY, smsDailyLimit: 2 })
  t.equal(await spent(ctx, 'studio-full'), 2, 'both enrolment codes counted: the budget is used up')
  const [neighbour] = await orgUsers(ctx, 'studio-next-door', 1, 22)
  ctx.twilio.reset()

  const login = (await ctx.request('POST', '/v1/logins', { email: owner!.email, password: STRONG_PASSWORD })).json()
  t.equal(login.status, 'challenge_required')
  t.equal(login.delivery, null, 'nothing sent: the recovery code (or an app) still works')
  t.same(login.methods, ['sms', 'voice', 'recovery'])
  assertProblem(t, await ctx.request('POST', `/v1/logins/${login.challengeId}/send`, { channel: 'voice' }), 'send_limit_reached')
  assertProblem(t, await ctx.request('POST', `/v1/users/${owner!.id}/phones`, { phoneNumber: phoneNumber(23) }), 'send_limit_reached')
  t.equal(ctx.twilio.requests.length, 0, 'Twilio saw nothing')

  const other = (await ctx.request('POST', '/v1/logins', { email: neighbour!.email, password: STRONG_PASSWORD })).json()
  t.ok(other.delivery !== null, "another studio's budget is its own")

  ctx.twilio.reset()
  t.equal((await ctx.request('DELETE', `/v1/users/${owner!.id}/phones/${backup.phone.id}`)).statusCode, 204)
  t.equal(ctx.twilio.messagesTo(owner!.number).length, 1, 'the security notice went out anyway')
  t.equal(await spent(ctx, 'studio-full'), 2, 'and was not counted')
})

t.test('a send the provider fails is given back to the budget', async (t) => {
  const ctx = await buildTestApp(t)
  const [user] = await orgUsers(ctx, 'studio-flaky', 1, 30)
  const before = await spent(ctx, 'studio-flaky')
  ctx.twilio.failNext(1, { status: 500 })
  const login = (await ctx.request('POST', '/v1/logins', { email: user!.email, password: STRONG_PASSWORD })).json()
  t.equal(login.deliveryError, 'delivery_failed')
  t.equal(await spent(ctx, 'studio-flaky'), before, 'the failed send was refunded')
  const sent = await ctx.request('POST', `/v1/logins/${login.challengeId}/send`, { channel: 'sms' })
  t.equal(sent.statusCode, 202)
  t.equal(await spent(ctx, 'studio-flaky'), before + 1)
})

t.test('users without an organization share one budget with the default limit', async (t) => {
  const ctx = await buildTestApp(t, { env: { DEFAULT_SMS_DAILY_LIMIT: '2' } })
  const user = await createUser(ctx)
  await enrolPhone(ctx, user.id, phoneNumber(40))
  const first = (await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD })).json()
  t.ok(first.delivery !== null, 'enrolment and this login: two sends')
  const second = (await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD })).json()
  t.equal(second.delivery, null, 'the third is over the shared budget')
  t.equal(await spent(ctx, ''), 2)
})
