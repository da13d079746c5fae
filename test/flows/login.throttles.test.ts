import t from 'tap'
import { MAX_ACCOUNT_CODE_FAILURES, PASSWORD_FAILURES_BEFORE_THROTTLE } from '../../src/lib/limits.js'
import { buildTestApp, enrolledUser, startLogin, STRONG_PASSWORD, email } from '../helpers/app.js'

t.test('an unknown email and a wrong password get the same answer', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 1)
  const wrong = await ctx.request('POST', '/v1/logins', { email: user.email, password: 'not-the-password-1' })
  const unknown = await ctx.request('POST', '/v1/logins', { email: email('ghost'), password: 'not-the-password-1' })
  t.equal(wrong.statusCode, 401)
  t.equal(unknown.statusCode, 401)
  const strip = (body: Record<string, unknown>) => ({ ...body })
  t.same(strip(wrong.json()), strip(unknown.json()), 'byte-for-byte the same problem')
  t.equal(wrong.json().code, 'invalid_credentials')
})

t.test('wrong passwords slow the account down, for known and unknown emails alike, and never lock it', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 2)
  const ghost = email('ghost')
  for (const target of [user.email, ghost]) {
    const answers = []
    for (let i = 0; i < PASSWORD_FAILURES_BEFORE_THROTTLE + 1; i++) {
      answers.push(await ctx.request('POST', '/v1/logins', { email: target, password: `wrong-password-${i}` }))
    }
    t.same(answers.slice(0, PASSWORD_FAILURES_BEFORE_THROTTLE).map((a) => a.statusCode), Array(PASSWORD_FAILURES_BEFORE_THROTTLE).fill(401))
    const throttled = answers.at(-1)
    t.equal(throttled?.statusCode, 429, `throttled after ${PASSWORD_FAILURES_BEFORE_THROTTLE} wrong passwords`)
    t.equal(throttled?.json().code, 'too_many_attempts')
    t.ok(Number(throttled?.headers['retry-after']) >= 25 && Number(throttled?.headers['retry-after']) <= 31)
  }
  const right = await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD })
  t.equal(right.statusCode, 429, 'during the wait even the right password is not checked')
  const row = await ctx.db.prisma.user.findUniqueOrThrow({ where: { id: user.id } })
  t.equal(row.lockedAt, null, 'wrong passwords never lock the account')

  // The wait passes: the right password works and clears the count.
  await ctx.db.prisma.loginThrottle.updateMany({ data: { blockedUntil: new Date(Date.now() - 1000) } })
  const later = await ctx.request('POST', '/v1/logins', { email: user.email.toUpperCase(), password: STRONG_PASSWORD })
  t.equal(later.statusCode, 200)
  t.equal(later.json().status, 'challenge_required')
  t.equal(await ctx.db.prisma.loginThrottle.count({ where: {} }), 1, 'only the unknown email\'s count remains')
})

t.test('the throttle wait grows and is capped at 15 minutes', async (t) => {
  const ctx = await buildTestApp(t)
  const target = email('typo')
  const waits: number[] = []
  for (let i = 0; i < 12; i++) {
    await ctx.db.prisma.loginThrottle.updateMany({ data: { blockedUntil: null } })
    const answer = await ctx.request('POST', '/v1/logins', { email: target, password: `wrong-password-${i}` })
    t.equal(answer.statusCode, 401)
    const row = await ctx.db.prisma.loginThrottle.findFirst()
    waits.push(row?.blockedUntil == null ? 0 : Math.round((row.blockedUntil.getTime() - Date.now()) / 1000))
  }
  t.same(waits.slice(0, 4), [0, 0, 0, 0])
  t.ok(waits[4]! >= 28 && waits[4]! <= 30, `first wait about 30 s, was ${waits[4]}`)
  t.ok(waits[5]! >= 58 && waits[5]! <= 60, 'then doubled')
  t.ok(waits.every((w) => w <= 900), `never over 15 minutes: ${waits.join(',')}`)
  t.ok(waits[11]! >= 898, 'capped at 15 minutes')
})

t.test('wrong codes are capped per account across challenges; a new challenge does not reset the count', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 3)
  let failures = 0
  let last
  while (failures < MAX_ACCOUNT_CODE_FAILURES) {
    const login = await startLogin(ctx, user)
    const right = ctx.twilio.lastCodeFor(user.number)
    const wrong = right === '123123' ? '321321' : '123123'
    for (let i = 0; i < 4 && failures < MAX_ACCOUNT_CODE_FAILURES; i++, failures++) {
      last = await ctx.request('POST', `/v1/logins/${login.challengeId}/verify`, { code: wrong })
    }
  }
  t.equal(last?.statusCode, 429, `the ${MAX_ACCOUNT_CODE_FAILURES}th wrong code starts a lock-out period`)
  t.equal(last?.json().code, 'too_many_attempts')
  t.ok(Number(last?.headers['retry-after']) > 14 * 60)

  const login = await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD })
  t.equal(login.statusCode, 429, 'no new challenge (and no SMS) during the lock-out period')
  const row = await ctx.db.prisma.user.findUniqueOrThrow({ where: { id: user.id } })
  t.equal(row.lockedAt, null, 'a lock-out period, not a lock')

  await ctx.db.prisma.user.update({ where: { id: user.id }, data: { codeLockedUntil: new Date(Date.now() - 1000) } })
  const after = await startLogin(ctx, user)
  const ok = await ctx.request('POST', `/v1/logins/${after.challengeId}/verify`, { code: ctx.twilio.lastCodeFor(user.number) })
  t.equal(ok.statusCode, 200, 'after the period the right code works')
})
