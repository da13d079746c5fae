import t from 'tap'
import { Writable } from 'node:stream'
import { awayFromStepEdge, buildTestApp, createUser, enrolPhone, phoneNumber, STRONG_PASSWORD, TEST_API_KEY, totpCode } from '../helpers/app.js'

t.test('a whole flow writes no password, code, recovery code, key, token or full number to the log', async (t) => {
  const lines: string[] = []
  const logStream = new Writable({ write (chunk, _encoding, done) { lines.push(String(chunk)); done() } })
  const ctx = await buildTestApp(t, { env: { LOG_LEVEL: 'trace' }, logStream })

  const password = 'Grand-Battement-Secret-42'
  const number = phoneNumber(42)
  const backup = phoneNumber(43)
  const secrets: string[] = [password, TEST_API_KEY, ctx.twilio.authToken, number, number.slice(2), backup, backup.slice(2)]

  const user = await createUser(ctx, { password })
  const first = await enrolPhone(ctx, user.id, number, 'sms')
  secrets.push(ctx.twilio.lastCodeFor(number) as string, first.recoveryCode)
  const second = await enrolPhone(ctx, user.id, backup, 'voice')
  secrets.push(ctx.twilio.lastCodeFor(backup) as string, second.recoveryCode)

  const { key } = await ctx.app.apiKeys.create('backend', ['login'])
  secrets.push(key)
  const login = await ctx.request('POST', '/v1/logins', { email: user.email, password, context: { ip: '203.0.113.9', userAgent: 'Safari' } }, key)
  const { challengeId } = login.json()
  secrets.push(ctx.twilio.lastCodeFor(number) as string)
  await ctx.request('POST', `/v1/logins/${challengeId}/verify`, { code: '000001' }, key)
  await ctx.request('POST', `/v1/logins/${challengeId}/recovery`, { recoveryCode: 'WRNG-WRNG-WRNG-WRNG-WRNG' }, key)
  secrets.push('WRNG-WRNG-WRNG-WRNG-WRNG', '000001')

  // A failing provider and a malformed body are the paths most likely to dump a request.
  ctx.twilio.failNext(1, { status: 500, message: `upstream said no to ${number}` })
  await ctx.db.prisma.otpChallenge.update({ where: { id: challengeId }, data: { lastSentAt: new Date(0) } })
  await ctx.request('POST', `/v1/logins/${challengeId}/send`, { channel: 'sms' }, key)
  await ctx.app.inject({ method: 'POST', url: '/v1/logins', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, payload: `{"email":"a@b.co","password":"${password}"` })
  const recovered = await ctx.request('POST', `/v1/logins/${challengeId}/recovery`, { recoveryCode: second.recoveryCode }, key)
  t.equal(recovered.statusCode, 200)
  secrets.push(recovered.json().recoveryCode)
  await ctx.request('PUT', `/v1/users/${user.id}/password`, { password: 'Another-Secret-Plie-77' })
  secrets.push('Another-Secret-Plie-77')
  await ctx.request('GET', '/v1/users/x', undefined, 'spa_not_a_real_key_but_still_a_secret')
  secrets.push('spa_not_a_real_key_but_still_a_secret')

  const log = lines.join('')
  t.ok(lines.length > 20, `the flow was logged (${lines.length} lines)`)
  t.ok(lines.every((line) => { try { JSON.parse(line); return true } catch { return false } }), 'every line is JSON')
  t.ok(lines.some((line) => JSON.parse(line).reqId !== undefined), 'lines carry request ids')
  for (const secret of new Set(secrets)) {
    // A 6-digit code can occur by chance inside a timestamp, a duration or a request id's hex:
    // match it only as a whole token.
    const found = /^\d+$/.test(secret) ? new RegExp(`(?<![0-9A-Za-z.])${secret}(?![0-9A-Za-z.])`).test(log) : log.includes(secret)
    t.notOk(found, `the log does not contain ${secret.slice(0, 3)}…`)
  }
})

t.test('a remembered device token is never written to the log, neither when issued nor when used', async (t) => {
  const lines: string[] = []
  const logStream = new Writable({ write (chunk, _encoding, done) { lines.push(String(chunk)); done() } })
  const ctx = await buildTestApp(t, { env: { LOG_LEVEL: 'trace' }, logStream })
  const user = await createUser(ctx)
  const number = phoneNumber(44)
  await enrolPhone(ctx, user.id, number, 'sms')
  const login = await ctx.request('POST', '/v1/logins', { email: user.email, password: 'Pirouette-Jete-1987!' })
  const verified = await ctx.request('POST', `/v1/logins/${login.json().challengeId}/verify`, { code: ctx.twilio.lastCodeFor(number), rememberDevice: true })
  const token = verified.json().deviceToken as string
  t.type(token, 'string')
  const skipped = await ctx.request('POST', '/v1/logins', { email: user.email, password: 'Pirouette-Jete-1987!', deviceToken: token })
  t.same(skipped.json().amr, ['pwd', 'device'])
  // A malformed body carrying the token is the path most likely to dump it.
  await ctx.app.inject({ method: 'POST', url: '/v1/logins', headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' }, payload: `{"email":"${user.email}","deviceToken":"${token}"` })
  await ctx.request('POST', '/v1/logins', { email: user.email, password: 'Pirouette-Jete-1987!', deviceToken: token, extra: 1 })
  const log = lines.join('')
  t.ok(lines.length > 5, 'the flow was logged')
  t.notOk(log.includes(token), 'the token is not in the log')
  t.notOk(log.includes(token.slice(0, 16)), 'not even a prefix of it')
})

t.test('an authenticator-app enrolment and login write no secret, URI or code to the log', async (t) => {
  const lines: string[] = []
  const logStream = new Writable({ write (chunk, _encoding, done) { lines.push(String(chunk)); done() } })
  const ctx = await buildTestApp(t, { env: { LOG_LEVEL: 'trace' }, logStream })
  const user = await createUser(ctx)

  const started = await ctx.request('POST', `/v1/users/${user.id}/totp`)
  t.equal(started.statusCode, 201)
  const { enrollmentId, secret, otpauthUri } = started.json()
  await awayFromStepEdge()
  const confirmCode = totpCode(secret, -1)
  const wrongCode = confirmCode.replace(/\d/g, (d: string) => String((Number(d) + 5) % 10))
  await ctx.request('POST', `/v1/users/${user.id}/totp/verify`, { enrollmentId, code: wrongCode })
  const confirmed = await ctx.request('POST', `/v1/users/${user.id}/totp/verify`, { enrollmentId, code: confirmCode })
  t.equal(confirmed.statusCode, 200)
  // A second, pending enrolment: its secret too.
  const next = (await ctx.request('POST', `/v1/users/${user.id}/totp`)).json()

  const login = await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD })
  const { challengeId } = login.json()
  await ctx.request('POST', `/v1/logins/${challengeId}/verify`, { code: wrongCode, method: 'totp' })
  const loginCode = totpCode(secret)
  t.equal((await ctx.request('POST', `/v1/logins/${challengeId}/verify`, { code: loginCode, method: 'totp' })).statusCode, 200)
  // A malformed body carrying the secret, the path most likely to dump a request.
  await ctx.app.inject({ method: 'POST', url: `/v1/users/${user.id}/totp/verify`, headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' }, payload: `{"enrollmentId":"${enrollmentId}","code":"${loginCode}","secret":"${secret}"` })

  const log = lines.join('')
  t.ok(lines.length > 10, `the flow was logged (${lines.length} lines)`)
  for (const value of [secret, next.secret, otpauthUri, encodeURIComponent(otpauthUri), secret.slice(0, 16)]) {
    t.notOk(log.includes(value), `the log does not contain ${value.slice(0, 3)}…`)
  }
  for (const code of new Set([confirmCode, wrongCode, loginCode])) {
    t.notOk(new RegExp(`(?<![\\d.])${code}(?![\\d.])`).test(log), `the log does not contain the code ${code.slice(0, 2)}…`)
  }
})
