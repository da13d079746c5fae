import t from 'tap'
import { buildTestApp, createUser, enrolPhone, enrolledUser, phoneNumber, startLogin, STRONG_PASSWORD } from '../helpers/app.js'

t.test('a user with a phone gets a challenge and the code goes to the primary phone at once', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 1)
  ctx.twilio.reset()
  const response = await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD })
  t.equal(response.statusCode, 200)
  const body = response.json()
  t.equal(body.status, 'challenge_required')
  t.match(body.challengeId, /^[A-Za-z0-9_-]+$/)
  t.same(body.methods, ['sms', 'voice', 'recovery'])
  t.equal(body.delivery.channel, 'sms')
  t.equal(body.delivery.phone.masked, '+1 ••• ••• ••01')
  t.ok(Date.parse(body.delivery.resendAvailableAt) > Date.now() + 25_000, 'resend cooldown of about 30 s')
  t.ok(Date.parse(body.expiresAt) > Date.now() + 9 * 60_000)
  t.equal(ctx.twilio.requests.length, 1)
  const [sms] = ctx.twilio.messagesTo(user.number)
  t.match(sms, /^Your Studio Pro verification code is \d{6}\. It expires in 10 minutes\.$/)
  t.notOk(JSON.stringify(body).includes(user.number.slice(2)), 'the full number is never in the answer')
})

t.test('a voice user gets a call reading the digits, and amr says tel', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 2, 'voice')
  const login = await startLogin(ctx, user)
  t.match(login.delivery, { channel: 'voice' })
  const twiml = ctx.twilio.callsTo(user.number).at(-1) ?? ''
  const code = ctx.twilio.lastCodeFor(user.number) ?? ''
  const spoken = code.split('').join(', ')
  t.equal(twiml.split(spoken).length - 1, 2, 'the digits are read one by one, twice')
  const verified = await ctx.request('POST', `/v1/logins/${login.challengeId}/verify`, { code })
  t.equal(verified.statusCode, 200)
  t.same(verified.json(), { status: 'authenticated', userId: user.id, amr: ['pwd', 'tel'] })
})

t.test('send reaches a backup phone by phoneId, and the new code voids the previous one', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 3)
  const backup = await enrolPhone(ctx, user.id, phoneNumber(4), 'sms', 'studio phone')
  const login = await startLogin(ctx, user)
  const firstCode = ctx.twilio.lastCodeFor(user.number) as string
  await ctx.db.prisma.otpChallenge.update({ where: { id: login.challengeId }, data: { lastSentAt: new Date(Date.now() - 31_000) } })

  const sent = await ctx.request('POST', `/v1/logins/${login.challengeId}/send`, { channel: 'voice', phoneId: backup.phone.id })
  t.equal(sent.statusCode, 202, sent.body)
  t.same(Object.keys(sent.json()).sort(), ['channel', 'phone', 'resendAvailableAt'])
  t.equal(sent.json().channel, 'voice')
  t.equal(sent.json().phone.masked, '+1 ••• ••• ••04')
  const secondCode = ctx.twilio.lastCodeFor(phoneNumber(4)) as string
  t.ok(ctx.twilio.callsTo(phoneNumber(4)).length === 1, 'the backup phone was called')

  if (firstCode !== secondCode) {
    const stale = await ctx.request('POST', `/v1/logins/${login.challengeId}/verify`, { code: firstCode })
    t.equal(stale.statusCode, 422, 'the code sent before the resend no longer works')
    t.equal(stale.json().code, 'invalid_code')
  }
  const verified = await ctx.request('POST', `/v1/logins/${login.challengeId}/verify`, { code: secondCode })
  t.equal(verified.statusCode, 200)
  t.same(verified.json().amr, ['pwd', 'tel'])
})

t.test('resend cooldown, then at most five sends per challenge', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 5)
  const login = await startLogin(ctx, user)
  const tooSoon = await ctx.request('POST', `/v1/logins/${login.challengeId}/send`, { channel: 'sms' })
  t.equal(tooSoon.statusCode, 429)
  t.equal(tooSoon.json().code, 'resend_too_soon')
  t.ok(Number(tooSoon.headers['retry-after']) >= 25, 'Retry-After header in seconds')
  t.equal(tooSoon.json().retryAfter, Number(tooSoon.headers['retry-after']))
  t.equal(tooSoon.headers['content-type'], 'application/problem+json; charset=utf-8')

  for (let send = 2; send <= 5; send++) {
    await ctx.db.prisma.otpChallenge.update({ where: { id: login.challengeId }, data: { lastSentAt: new Date(Date.now() - 31_000) } })
    const ok = await ctx.request('POST', `/v1/logins/${login.challengeId}/send`, { channel: 'sms' })
    t.equal(ok.statusCode, 202, `send ${send} is allowed`)
  }
  await ctx.db.prisma.otpChallenge.update({ where: { id: login.challengeId }, data: { lastSentAt: new Date(Date.now() - 31_000) } })
  const sixth = await ctx.request('POST', `/v1/logins/${login.challengeId}/send`, { channel: 'sms' })
  t.equal(sixth.statusCode, 429)
  t.equal(sixth.json().code, 'send_limit_reached')
  t.equal(ctx.twilio.messagesTo(user.number).length, 1 + 5, 'enrolment code plus five login codes, no more')
})

t.test('concurrent resends after the cooldown: one passes, the others are too soon', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 6)
  const login = await startLogin(ctx, user)
  await ctx.db.prisma.otpChallenge.update({ where: { id: login.challengeId }, data: { lastSentAt: new Date(Date.now() - 31_000) } })
  ctx.twilio.reset()
  const answers = await Promise.all(Array.from({ length: 10 }, () =>
    ctx.request('POST', `/v1/logins/${login.challengeId}/send`, { channel: 'sms' })))
  t.equal(answers.filter((a) => a.statusCode === 202).length, 1)
  t.equal(answers.filter((a) => a.statusCode === 429).length, 9)
  t.equal(ctx.twilio.requests.length, 1, 'one SMS left, not ten')
})

t.test('five wrong codes close the challenge; the right code is refused after that', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 7)
  const login = await startLogin(ctx, user)
  const right = ctx.twilio.lastCodeFor(user.number) as string
  const wrong = right === '000000' ? '111111' : '000000'
  const remaining: number[] = []
  for (let i = 0; i < 5; i++) {
    const answer = await ctx.request('POST', `/v1/logins/${login.challengeId}/verify`, { code: wrong })
    t.equal(answer.statusCode, 422)
    t.equal(answer.json().code, 'invalid_code')
    remaining.push(answer.json().attemptsRemaining)
  }
  t.same(remaining, [4, 3, 2, 1, 0])
  const after = await ctx.request('POST', `/v1/logins/${login.challengeId}/verify`, { code: right })
  t.equal(after.statusCode, 410)
  t.equal(after.json().code, 'challenge_closed')
  const send = await ctx.request('POST', `/v1/logins/${login.challengeId}/send`, { channel: 'sms' })
  t.equal(send.statusCode, 410)
})

t.test('codes are single use and expire', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 8)
  const login = await startLogin(ctx, user)
  const code = ctx.twilio.lastCodeFor(user.number) as string
  t.equal((await ctx.request('POST', `/v1/logins/${login.challengeId}/verify`, { code })).statusCode, 200)
  const replay = await ctx.request('POST', `/v1/logins/${login.challengeId}/verify`, { code })
  t.equal(replay.statusCode, 410)
  t.equal(replay.json().code, 'challenge_closed')

  const second = await startLogin(ctx, user)
  const secondCode = ctx.twilio.lastCodeFor(user.number) as string
  await ctx.db.prisma.otpChallenge.update({ where: { id: second.challengeId }, data: { codeExpiresAt: new Date(Date.now() - 1000) } })
  const late = await ctx.request('POST', `/v1/logins/${second.challengeId}/verify`, { code: secondCode })
  t.equal(late.statusCode, 422, 'a code older than ten minutes is refused')

  await ctx.db.prisma.otpChallenge.update({ where: { id: second.challengeId }, data: { expiresAt: new Date(Date.now() - 1000) } })
  const expired = await ctx.request('POST', `/v1/logins/${second.challengeId}/verify`, { code: secondCode })
  t.equal(expired.statusCode, 410)
  t.equal(expired.json().code, 'challenge_expired')
})

t.test('a code is bound to its challenge', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 9)
  const first = await startLogin(ctx, user)
  const firstCode = ctx.twilio.lastCodeFor(user.number) as string
  const second = await startLogin(ctx, user)
  const secondCode = ctx.twilio.lastCodeFor(user.number) as string
  if (firstCode !== secondCode) {
    const crossed = await ctx.request('POST', `/v1/logins/${second.challengeId}/verify`, { code: firstCode })
    t.equal(crossed.statusCode, 422, 'the first challenge\'s code does not open the second')
  }
  t.equal((await ctx.request('POST', `/v1/logins/${first.challengeId}/verify`, { code: firstCode })).statusCode, 200)
})

t.test('no second factor: enrollment_required under the default policy', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await createUser(ctx)
  const response = await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD })
  t.equal(response.statusCode, 200)
  t.same(response.json(), { status: 'enrollment_required', userId: user.id })
})

t.test('unknown challenge ids are 404, malformed ones 400', async (t) => {
  const ctx = await buildTestApp(t)
  const missing = await ctx.request('POST', '/v1/logins/7b0e9c1e-0000-4000-8000-000000000000/verify', { code: '123456' })
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().code, 'not_found')
  const malformed = await ctx.request('POST', '/v1/logins/..%2F..%2Fetc/verify', { code: '123456' })
  t.equal(malformed.statusCode, 400)
  const shortCode = await ctx.request('POST', '/v1/logins/abc/verify', { code: '12345' })
  t.equal(shortCode.statusCode, 400)
  t.match(shortCode.json().detail, /code/)
})

t.test('Twilio failing: login still answers the challenge, send gives 502 and can be retried at once', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 10)
  ctx.twilio.failNext(1, { status: 500 })
  const login = await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD })
  t.equal(login.statusCode, 200)
  t.match(login.json(), { status: 'challenge_required', delivery: null, deliveryError: 'delivery_failed' })
  const { challengeId } = login.json()

  ctx.twilio.failNext(1, { status: 429, code: 20429 })
  const failed = await ctx.request('POST', `/v1/logins/${challengeId}/send`, { channel: 'sms' })
  t.equal(failed.statusCode, 502)
  t.equal(failed.json().code, 'delivery_failed')

  const retried = await ctx.request('POST', `/v1/logins/${challengeId}/send`, { channel: 'voice' })
  t.equal(retried.statusCode, 202, 'a failed send burns neither the cooldown nor the budget')
  const challenge = await ctx.db.prisma.otpChallenge.findUniqueOrThrow({ where: { id: challengeId } })
  t.equal(challenge.sendCount, 1)
  const verified = await ctx.request('POST', `/v1/logins/${challengeId}/verify`, { code: ctx.twilio.lastCodeFor(user.number) })
  t.equal(verified.statusCode, 200)
})

t.test('the WebOTP line is added when WEBOTP_DOMAIN is set', async (t) => {
  const ctx = await buildTestApp(t, { env: { WEBOTP_DOMAIN: 'app.studiopro.com' } })
  const user = await enrolledUser(ctx, 11)
  await startLogin(ctx, user)
  const sms = ctx.twilio.messagesTo(user.number).at(-1) as string
  const code = ctx.twilio.lastCodeFor(user.number)
  t.equal(sms, `Your Studio Pro verification code is ${code}. It expires in 10 minutes.\n@app.studiopro.com #${code}`)
})

t.test('the login email is trimmed and compared case-insensitively, like the users routes', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 12)
  const response = await ctx.request('POST', '/v1/logins', { email: `  ${user.email.toUpperCase()} `, password: STRONG_PASSWORD })
  t.equal(response.statusCode, 200, response.body)
  t.equal(response.json().status, 'challenge_required')
})
