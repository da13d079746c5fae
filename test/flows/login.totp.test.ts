// Contract sections 3 and 4: logging in with an authenticator app.
import t from 'tap'
import { MAX_ACCOUNT_CODE_FAILURES, MAX_CODE_ATTEMPTS_PER_CHALLENGE } from '../../src/lib/limits.js'
import { awayFromStepEdge, buildTestApp, enrolledUser, enrolTotp, startLogin, STRONG_PASSWORD, totpCode, totpUser } from '../helpers/app.js'
import { assertProblem } from '../helpers/problem.js'

const ctx = await buildTestApp(t)
/** A six-digit code `code` is not: every digit moved by five. */
const wrong = (code: string) => code.replace(/\d/g, (d) => String((Number(d) + 5) % 10))

async function verify (challengeId: string, body: object) {
  return await ctx.request('POST', `/v1/logins/${challengeId}/verify`, body)
}

t.test('a TOTP user: challenge_required with methods [totp, recovery] and delivery null; nothing is sent; the code gives amr otp', async (t) => {
  const user = await totpUser(ctx)
  ctx.twilio.reset()
  const response = await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD })
  t.equal(response.statusCode, 200)
  const body = response.json()
  t.match(body, { status: 'challenge_required', methods: ['totp', 'recovery'], delivery: null })
  t.notOk('deliveryError' in body)
  t.equal(ctx.twilio.requests.length, 0, 'no SMS, no call')
  await awayFromStepEdge()
  const verified = await verify(body.challengeId, { code: totpCode(user.secret), method: 'totp' })
  t.equal(verified.statusCode, 200, verified.body)
  t.same(verified.json(), { status: 'authenticated', userId: user.id, amr: ['pwd', 'otp'] })
  const events = (await ctx.request('GET', `/v1/users/${user.id}/events`)).json().items
  t.match(events[0], { type: 'login.succeeded', details: { method: 'totp' } })
})

t.test('without `method`, a challenge that sent nothing is answered with the app', async (t) => {
  const user = await totpUser(ctx)
  const login = await startLogin(ctx, user)
  await awayFromStepEdge()
  const verified = await verify(login.challengeId, { code: totpCode(user.secret) })
  t.equal(verified.statusCode, 200, verified.body)
  t.same(verified.json().amr, ['pwd', 'otp'])
})

t.test('a user with a phone and an app: the app is preferred (nothing sent), an SMS on request still works', async (t) => {
  const user = await enrolledUser(ctx, 1)
  const { secret } = await enrolTotp(ctx, user.id)
  ctx.twilio.reset()
  const login = await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD })
  t.match(login.json(), { status: 'challenge_required', methods: ['sms', 'voice', 'totp', 'recovery'], delivery: null })
  t.equal(ctx.twilio.requests.length, 0)
  const { challengeId } = login.json()
  const sent = await ctx.request('POST', `/v1/logins/${challengeId}/send`, { channel: 'sms' })
  t.equal(sent.statusCode, 202, sent.body)
  const sms = ctx.twilio.lastCodeFor(user.number) as string
  const bySms = await verify(challengeId, { code: sms })
  t.equal(bySms.statusCode, 200, 'after a send, a code without method is the SMS one')
  t.same(bySms.json().amr, ['pwd', 'sms'])

  const again = await startLogin(ctx, user)
  await awayFromStepEdge()
  const byApp = await verify(again.challengeId, { code: totpCode(secret), method: 'totp' })
  t.equal(byApp.statusCode, 200, byApp.body)
  t.same(byApp.json().amr, ['pwd', 'otp'])
})

t.test('method totp for a user without an app is 400 invalid_request', async (t) => {
  const user = await enrolledUser(ctx, 2)
  const login = await startLogin(ctx, user)
  assertProblem(t, await verify(login.challengeId, { code: '123456', method: 'totp' }), 'invalid_request', /totp/)
  const right = await verify(login.challengeId, { code: ctx.twilio.lastCodeFor(user.number) })
  t.equal(right.statusCode, 200, 'the refused method spent no attempt and closed nothing')
})

t.test(`${MAX_CODE_ATTEMPTS_PER_CHALLENGE} wrong TOTP codes close the challenge; the right code is refused after that`, async (t) => {
  const user = await totpUser(ctx)
  const login = await startLogin(ctx, user)
  await awayFromStepEdge()
  const remaining: number[] = []
  for (let i = 0; i < MAX_CODE_ATTEMPTS_PER_CHALLENGE; i++) {
    const answer = await verify(login.challengeId, { code: wrong(totpCode(user.secret)), method: 'totp' })
    remaining.push(assertProblem(t, answer, 'invalid_code').attemptsRemaining as number)
  }
  t.same(remaining, [4, 3, 2, 1, 0])
  assertProblem(t, await verify(login.challengeId, { code: totpCode(user.secret), method: 'totp' }), 'challenge_closed')
  const fresh = await startLogin(ctx, user)
  t.equal((await verify(fresh.challengeId, { code: totpCode(user.secret), method: 'totp' })).statusCode, 200, 'the refused code was not spent')
})

t.test('wrong TOTP and SMS codes share one challenge\'s attempts', async (t) => {
  const user = await enrolledUser(ctx, 3)
  const { secret } = await enrolTotp(ctx, user.id)
  const login = await startLogin(ctx, user)
  await ctx.request('POST', `/v1/logins/${login.challengeId}/send`, { channel: 'sms' })
  const sms = ctx.twilio.lastCodeFor(user.number) as string
  await awayFromStepEdge()
  const seen: number[] = []
  for (let i = 0; i < MAX_CODE_ATTEMPTS_PER_CHALLENGE; i++) {
    const body = i % 2 === 0 ? { code: wrong(totpCode(secret)), method: 'totp' } : { code: wrong(sms), method: 'sms' }
    seen.push(assertProblem(t, await verify(login.challengeId, body), 'invalid_code').attemptsRemaining as number)
  }
  t.same(seen, [4, 3, 2, 1, 0])
  assertProblem(t, await verify(login.challengeId, { code: sms, method: 'sms' }), 'challenge_closed')
})

t.test('wrong TOTP codes count toward the per-account cap across challenges, like SMS codes', async (t) => {
  const user = await totpUser(ctx)
  let failures = 0
  let last
  while (failures < MAX_ACCOUNT_CODE_FAILURES) {
    const login = await startLogin(ctx, user)
    for (let i = 0; i < MAX_CODE_ATTEMPTS_PER_CHALLENGE - 1 && failures < MAX_ACCOUNT_CODE_FAILURES; i++, failures++) {
      last = await verify(login.challengeId, { code: wrong(totpCode(user.secret)), method: 'totp' })
    }
  }
  t.equal(last?.statusCode, 429, `the ${MAX_ACCOUNT_CODE_FAILURES}th wrong code starts a lock-out period`)
  t.equal(last?.json().code, 'too_many_attempts')
  const login = await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD })
  t.equal(login.statusCode, 429, 'no new challenge during the lock-out period')

  await ctx.db.prisma.user.update({ where: { id: user.id }, data: { codeLockedUntil: new Date(Date.now() - 1000) } })
  const after = await startLogin(ctx, user)
  await awayFromStepEdge()
  t.equal((await verify(after.challengeId, { code: totpCode(user.secret), method: 'totp' })).statusCode, 200, 'after the period the right code works')
  const row = await ctx.db.prisma.user.findUniqueOrThrow({ where: { id: user.id } })
  t.equal(row.codeFailures, 0, 'a success resets the account count')
})

t.test('a TOTP user can log in with the recovery code, and a wrong TOTP code is recorded as code.failed without the code', async (t) => {
  const user = await totpUser(ctx)
  const login = await startLogin(ctx, user)
  await awayFromStepEdge()
  const bad = wrong(totpCode(user.secret))
  await verify(login.challengeId, { code: bad, method: 'totp' })
  const recovered = await ctx.request('POST', `/v1/logins/${login.challengeId}/recovery`, { recoveryCode: user.recoveryCode })
  t.equal(recovered.statusCode, 200, recovered.body)
  const events = (await ctx.request('GET', `/v1/users/${user.id}/events`)).json().items
  const failed = events.find((e: { type: string }) => e.type === 'code.failed')
  t.match(failed, { details: { method: 'totp', attemptsRemaining: 4 } })
  t.notOk(JSON.stringify(events).includes(bad), 'no event holds the code')
  t.notOk(JSON.stringify(events).includes(user.secret), 'no event holds the secret')
})
