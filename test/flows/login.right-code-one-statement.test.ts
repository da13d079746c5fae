import pg from 'pg'
import t from 'tap'
import { buildTestApp, enrolledUser, startLogin, type TestApp } from '../helpers/app.js'

/*
 * A right SMS or voice code is accepted by one statement that holds every login rule in its
 * WHERE (src/second-factor/phone-code.ts, completeLogin). Each test here breaks one rule, sends
 * the right code, and proves the code is refused with the full path's answer and that nothing
 * was written: no completion, no login event.
 */

async function loginWithCode (ctx: TestApp, n: number, channel: 'sms' | 'voice' = 'sms') {
  const user = await enrolledUser(ctx, n, channel)
  const login = await startLogin(ctx, user)
  const code = ctx.twilio.lastCodeFor(user.number) as string
  return { user, challengeId: login.challengeId, code }
}

async function assertNothingWritten (t: Tap.Test, ctx: TestApp, userId: string, challengeId: string) {
  const challenge = await ctx.db.prisma.otpChallenge.findUniqueOrThrow({ where: { id: challengeId } })
  t.equal(challenge.completedAt, null, 'the challenge is not completed')
  t.equal(await ctx.db.prisma.securityEvent.count({ where: { userId, type: 'login.succeeded' } }), 0, 'no login event')
}

t.test('a right code on a locked account answers account_locked', async (t) => {
  const ctx = await buildTestApp(t)
  const { user, challengeId, code } = await loginWithCode(ctx, 1)
  await ctx.db.prisma.user.update({ where: { id: user.id }, data: { lockedAt: new Date(), lockedReason: 'support' } })
  const response = await ctx.request('POST', `/v1/logins/${challengeId}/verify`, { code })
  t.equal(response.json().code, 'account_locked')
  await assertNothingWritten(t, ctx, user.id, challengeId)
})

t.test('a right code while the account is paused for wrong codes answers too_many_attempts', async (t) => {
  const ctx = await buildTestApp(t)
  const { user, challengeId, code } = await loginWithCode(ctx, 2)
  await ctx.db.prisma.user.update({ where: { id: user.id }, data: { codeLockedUntil: new Date(Date.now() + 60_000) } })
  const response = await ctx.request('POST', `/v1/logins/${challengeId}/verify`, { code })
  t.equal(response.json().code, 'too_many_attempts')
  await assertNothingWritten(t, ctx, user.id, challengeId)
})

t.test('a right code by a method the studio does not allow answers invalid_request', async (t) => {
  const ctx = await buildTestApp(t)
  const { user, challengeId, code } = await loginWithCode(ctx, 3)
  const organizationId = `studio-${user.id}`
  await ctx.db.prisma.organizationPolicy.create({
    data: { organizationId, requiredRoles: ['*'], allowedMethods: ['voice', 'totp'], rememberDeviceDays: 30, enrollmentGraceDays: 0, smsDailyLimit: 1000 }
  })
  await ctx.db.prisma.user.update({ where: { id: user.id }, data: { organizationId } })
  const byChannel = await ctx.request('POST', `/v1/logins/${challengeId}/verify`, { code })
  t.equal(byChannel.json().code, 'invalid_request', 'the channel the code went by is not allowed')
  const named = await ctx.request('POST', `/v1/logins/${challengeId}/verify`, { code, method: 'sms' })
  t.equal(named.json().code, 'invalid_request', 'nor is the method named')
  await assertNothingWritten(t, ctx, user.id, challengeId)
})

t.test('a right code on an expired login answers challenge_expired', async (t) => {
  const ctx = await buildTestApp(t)
  const { user, challengeId, code } = await loginWithCode(ctx, 4)
  await ctx.db.prisma.otpChallenge.update({ where: { id: challengeId }, data: { expiresAt: new Date(Date.now() - 1000) } })
  const response = await ctx.request('POST', `/v1/logins/${challengeId}/verify`, { code })
  t.equal(response.json().code, 'challenge_expired')
  await assertNothingWritten(t, ctx, user.id, challengeId)
})

t.test('a right code past its own ten minutes is wrong', async (t) => {
  const ctx = await buildTestApp(t)
  const { user, challengeId, code } = await loginWithCode(ctx, 5)
  await ctx.db.prisma.otpChallenge.update({ where: { id: challengeId }, data: { codeExpiresAt: new Date(Date.now() - 1000) } })
  const response = await ctx.request('POST', `/v1/logins/${challengeId}/verify`, { code })
  t.equal(response.json().code, 'invalid_code')
  await assertNothingWritten(t, ctx, user.id, challengeId)
})

t.test('a right code after the attempt cap is spent answers challenge_closed', async (t) => {
  const ctx = await buildTestApp(t)
  const { user, challengeId, code } = await loginWithCode(ctx, 6)
  // The cap itself, not only the closed_at it normally sets: the statement checks both.
  await ctx.db.prisma.otpChallenge.update({ where: { id: challengeId }, data: { failedAttempts: 5 } })
  const response = await ctx.request('POST', `/v1/logins/${challengeId}/verify`, { code })
  t.equal(response.json().code, 'challenge_closed')
  await assertNothingWritten(t, ctx, user.id, challengeId)
})

t.test('the id of a phone verification is not a login', async (t) => {
  const ctx = await buildTestApp(t)
  const { user, challengeId, code } = await loginWithCode(ctx, 7)
  await ctx.db.prisma.otpChallenge.update({ where: { id: challengeId }, data: { purpose: 'phone' } })
  const response = await ctx.request('POST', `/v1/logins/${challengeId}/verify`, { code })
  t.equal(response.json().code, 'not_found')
  await assertNothingWritten(t, ctx, user.id, challengeId)
})

t.test('a right code is accepted once: the replay is refused and one event is written', async (t) => {
  const ctx = await buildTestApp(t)
  const { user, challengeId, code } = await loginWithCode(ctx, 8, 'voice')
  const first = await ctx.request('POST', `/v1/logins/${challengeId}/verify`, { code })
  t.same(first.json(), { status: 'authenticated', userId: user.id, amr: ['pwd', 'tel'] })
  const replay = await ctx.request('POST', `/v1/logins/${challengeId}/verify`, { code })
  t.equal(replay.json().code, 'challenge_closed')
  const events = await ctx.db.prisma.securityEvent.findMany({ where: { userId: user.id, type: 'login.succeeded' } })
  t.equal(events.length, 1)
  t.same(events[0]?.details, { method: 'voice' }, 'the event names the channel the code went by')
})

t.test('the right code forgets earlier wrong codes and remembers the device for the studio policy\'s days', async (t) => {
  const ctx = await buildTestApp(t)
  const { user, challengeId, code } = await loginWithCode(ctx, 9)
  const organizationId = `studio-${user.id}`
  await ctx.db.prisma.organizationPolicy.create({
    data: { organizationId, requiredRoles: ['*'], allowedMethods: ['sms'], rememberDeviceDays: 7, enrollmentGraceDays: 0, smsDailyLimit: 1000 }
  })
  await ctx.db.prisma.user.update({ where: { id: user.id }, data: { organizationId } })
  const wrong = await ctx.request('POST', `/v1/logins/${challengeId}/verify`, { code: code === '000000' ? '111111' : '000000' })
  t.equal(wrong.json().code, 'invalid_code')
  t.equal((await ctx.db.prisma.user.findUniqueOrThrow({ where: { id: user.id } })).codeFailures, 1)

  const right = await ctx.request('POST', `/v1/logins/${challengeId}/verify`, { code, rememberDevice: true })
  t.equal(right.statusCode, 200, right.body)
  const days = (Date.parse(right.json().deviceTokenExpiresAt) - Date.now()) / 86_400_000
  t.ok(days > 6.9 && days <= 7, `remembered for the policy's 7 days (${days.toFixed(3)})`)
  t.equal((await ctx.db.prisma.user.findUniqueOrThrow({ where: { id: user.id } })).codeFailures, 0, 'the wrong code is forgotten')
})

t.test('a right code costs the database one statement, on the pool directly', async (t) => {
  const ctx = await buildTestApp(t)
  const { user, challengeId, code } = await loginWithCode(ctx, 10)
  const statements: string[] = []
  const query = pg.Client.prototype.query as (...args: unknown[]) => unknown
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const first = args[0] as string | { text?: string }
    statements.push(typeof first === 'string' ? first : first?.text ?? '?')
    return query.apply(this, args)
  } as typeof pg.Client.prototype.query
  t.teardown(() => { pg.Client.prototype.query = query as typeof pg.Client.prototype.query })
  const response = await ctx.request('POST', `/v1/logins/${challengeId}/verify`, { code })
  pg.Client.prototype.query = query as typeof pg.Client.prototype.query
  t.equal(response.statusCode, 200)
  t.equal(statements.length, 1, statements.join('\n'))
  t.match(statements[0], /^\s*WITH completed AS \(/)
  t.equal(await ctx.db.prisma.securityEvent.count({ where: { userId: user.id, type: 'login.succeeded' } }), 1)
})
