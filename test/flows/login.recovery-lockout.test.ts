import t from 'tap'
import { buildTestApp, enrolledUser, startLogin, STRONG_PASSWORD, type TestApp } from '../helpers/app.js'

const WRONG = 'AAAA-BBBB-CCCC-DDDD-EEEE'

async function recover (ctx: TestApp, challengeId: string, recoveryCode: string) {
  return await ctx.request('POST', `/v1/logins/${challengeId}/recovery`, { recoveryCode })
}

t.test('a right recovery code authenticates once, is replaced, and the primary phone is told', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 1)
  const login = await startLogin(ctx, user)
  ctx.twilio.reset()
  const answer = await recover(ctx, login.challengeId, user.recoveryCode.toLowerCase().replace(/-/g, ' '))
  t.equal(answer.statusCode, 200, answer.body)
  const body = answer.json()
  t.equal(body.status, 'authenticated')
  t.same(body.amr, ['pwd', 'recovery'])
  t.match(body.recoveryCode, /^[2-9A-HJKMNP-Z]{4}(-[2-9A-HJKMNP-Z]{4}){4}$/)
  t.not(body.recoveryCode, user.recoveryCode)
  t.ok(body.recoveryKit.includes(body.recoveryCode) && body.recoveryKit.includes(user.email))
  t.ok(body.recoveryKit.includes('support@studiopro.com'))

  const notices = ctx.twilio.messagesTo(user.number)
  t.equal(notices.length, 1, 'one security notice to the primary phone')
  t.notMatch(notices[0], /\d{6}/, 'the notice carries no code')
  t.notOk(notices[0]?.includes(body.recoveryCode))

  const again = await startLogin(ctx, user)
  const reuse = await recover(ctx, again.challengeId, user.recoveryCode)
  t.equal(reuse.statusCode, 422, 'the used code is gone')
  t.equal(reuse.json().code, 'invalid_recovery_code')
  const fresh = await recover(ctx, again.challengeId, body.recoveryCode)
  t.equal(fresh.statusCode, 200, 'the new code works')
})

t.test('three wrong recovery codes in a row, across challenges, lock the account', async (t) => {
  const ctx = await buildTestApp(t, { env: { SUPPORT_CONTACT: 'help@tutu.example' } })
  const user = await enrolledUser(ctx, 2)
  const first = await startLogin(ctx, user)
  const one = await recover(ctx, first.challengeId, WRONG)
  t.equal(one.statusCode, 422)
  t.match(one.json(), { code: 'invalid_recovery_code', attemptsRemaining: 2 })

  const second = await startLogin(ctx, user)
  const two = await recover(ctx, second.challengeId, WRONG)
  t.match(two.json(), { code: 'invalid_recovery_code', attemptsRemaining: 1 })
  const three = await recover(ctx, second.challengeId, WRONG)
  t.equal(three.statusCode, 423)
  t.equal(three.json().code, 'account_locked')
  t.match(three.json().detail, /help@tutu\.example/)

  const right = await recover(ctx, first.challengeId, user.recoveryCode)
  t.equal(right.statusCode, 423, 'even the right code is refused once locked')
  const code = ctx.twilio.lastCodeFor(user.number)
  const sms = await ctx.request('POST', `/v1/logins/${first.challengeId}/verify`, { code })
  t.equal(sms.statusCode, 423, 'open challenges are closed by the lock')
  const stored = await ctx.db.prisma.otpChallenge.findMany({ where: { userId: user.id, purpose: 'login' } })
  t.ok(stored.every((c) => c.closedAt !== null), 'every open challenge was closed in the database')
  const password = await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD })
  t.equal(password.statusCode, 423)

  const userView = await ctx.request('GET', `/v1/users/${user.id}`)
  t.match(userView.json(), { locked: true, lockedReason: 'too_many_recovery_failures' })
  const unlock = await ctx.request('POST', `/v1/users/${user.id}/unlock`, { reason: 'called support, identity checked' })
  t.equal(unlock.statusCode, 200)
  t.equal(unlock.json().locked, false)
  const after = await startLogin(ctx, user)
  const works = await recover(ctx, after.challengeId, user.recoveryCode)
  t.equal(works.statusCode, 200, 'after the unlock the counters start again and the code works')
})

t.test('a right code resets the run of wrong ones', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 3)
  const login = await startLogin(ctx, user)
  await recover(ctx, login.challengeId, WRONG)
  await recover(ctx, login.challengeId, WRONG)
  const ok = await recover(ctx, login.challengeId, user.recoveryCode)
  t.equal(ok.statusCode, 200)
  const next = await startLogin(ctx, user)
  const wrong = await recover(ctx, next.challengeId, WRONG)
  t.match(wrong.json(), { attemptsRemaining: 2 }, 'the run starts again at zero')
})

t.test('20 simultaneous wrong recovery codes are checked at most 3 times before the lock', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 4)
  const login = await startLogin(ctx, user)
  const answers = await Promise.all(Array.from({ length: 20 }, () => recover(ctx, login.challengeId, WRONG)))
  const statuses = answers.map((a) => a.statusCode)
  t.equal(statuses.filter((s) => s === 422).length, 2, 'two wrong answers')
  t.equal(statuses.filter((s) => s >= 500).length, 0)
  t.ok(statuses.every((s) => s === 422 || s === 423 || s === 429), `only 422/423/429: ${statuses.join(',')}`)
  const row = await ctx.db.prisma.user.findUniqueOrThrow({ where: { id: user.id } })
  t.equal(row.recoveryFailures, 3, 'the counter stopped at three')
  t.not(row.lockedAt, null, 'the account is locked')
  const failed = await ctx.db.prisma.securityEvent.count({ where: { userId: user.id, type: 'recovery.failed' } })
  t.equal(failed, 3, 'three checks happened, not twenty')
})

t.test('20 simultaneous uses of the right recovery code succeed once', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 5)
  const login = await startLogin(ctx, user)
  const answers = await Promise.all(Array.from({ length: 20 }, () => recover(ctx, login.challengeId, user.recoveryCode)))
  t.equal(answers.filter((a) => a.statusCode === 200).length, 1)
  t.equal(answers.filter((a) => a.statusCode >= 500).length, 0)
  const row = await ctx.db.prisma.user.findUniqueOrThrow({ where: { id: user.id } })
  t.equal(row.lockedAt, null, 'a double submit never locks the account')
  t.equal(row.recoveryFailures, 0)
  t.equal(await ctx.db.prisma.recoveryCode.count({ where: { userId: user.id } }), 1, 'exactly one new code exists')
})

t.test('20 simultaneous uses of the right SMS code succeed once', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 6)
  const login = await startLogin(ctx, user)
  const code = ctx.twilio.lastCodeFor(user.number)
  const answers = await Promise.all(Array.from({ length: 20 }, () =>
    ctx.request('POST', `/v1/logins/${login.challengeId}/verify`, { code })))
  t.equal(answers.filter((a) => a.statusCode === 200).length, 1)
  t.same([...new Set(answers.filter((a) => a.statusCode !== 200).map((a) => a.json().code))], ['challenge_closed'])
})

t.test('20 simultaneous wrong SMS codes are counted exactly, five at most', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 7)
  const login = await startLogin(ctx, user)
  const right = ctx.twilio.lastCodeFor(user.number)
  const wrong = right === '999999' ? '888888' : '999999'
  const answers = await Promise.all(Array.from({ length: 20 }, () =>
    ctx.request('POST', `/v1/logins/${login.challengeId}/verify`, { code: wrong })))
  t.equal(answers.filter((a) => a.statusCode === 422).length, 5)
  t.equal(answers.filter((a) => a.statusCode === 410).length, 15)
  const row = await ctx.db.prisma.otpChallenge.findUniqueOrThrow({ where: { id: login.challengeId } })
  t.equal(row.failedAttempts, 5)
  t.not(row.closedAt, null)
})
