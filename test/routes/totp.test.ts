// Contract section 4: an authenticator app on the Security settings page (scope `users`).
import t from 'tap'
import { Secret, URI } from 'otpauth'
import { awayFromStepEdge, buildTestApp, createUser, enrolledUser, enrolPhone, enrolTotp, phoneNumber, startLogin, totpCode, totpUser } from '../helpers/app.js'
import { assertProblem } from '../helpers/problem.js'

const ctx = await buildTestApp(t)
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z$/
const RECOVERY_CODE = /^[2-9A-HJKMNP-Z]{4}(?:-[2-9A-HJKMNP-Z]{4}){4}$/

async function start (userId: string) {
  return await ctx.request('POST', `/v1/users/${userId}/totp`)
}
async function confirm (userId: string, enrollmentId: string, code: unknown) {
  return await ctx.request('POST', `/v1/users/${userId}/totp/verify`, { enrollmentId, code })
}
async function userView (userId: string) {
  return (await ctx.request('GET', `/v1/users/${userId}`)).json()
}
/** A six-digit code `code` is not: every digit moved by five. */
const wrong = (code: string) => code.replace(/\d/g, (d) => String((Number(d) + 5) % 10))

t.test('POST totp answers 201 {enrollmentId, secret, otpauthUri, qrCodeSvg}; nothing changes on the account yet', async (t) => {
  const user = await createUser(ctx)
  const response = await start(user.id)
  t.equal(response.statusCode, 201, response.body)
  const body = response.json()
  t.same(Object.keys(body).sort(), ['enrollmentId', 'expiresAt', 'otpauthUri', 'qrCodeSvg', 'secret'])
  t.match(body.secret, /^[A-Z2-7]{32}$/, '160 bits in base32')
  t.equal(Secret.fromBase32(body.secret).bytes.length, 20)
  const uri = URI.parse(body.otpauthUri)
  t.match(body.otpauthUri, /^otpauth:\/\/totp\//)
  t.match(uri, { issuer: 'Studio Pro', label: user.email, algorithm: 'SHA1', digits: 6 })
  t.equal((uri as unknown as { period: number }).period, 30)
  t.equal(uri.secret.base32, body.secret, 'the URI carries the same secret')
  t.match(body.qrCodeSvg, /^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
  t.match(body.qrCodeSvg, /<\/svg>\s*$/)
  const expiresIn = Date.parse(body.expiresAt) - Date.now()
  t.ok(expiresIn > 9 * 60_000 && expiresIn <= 10 * 60_000, 'the enrolment is good for 10 minutes')
  const view = await userView(user.id)
  t.same(view.twoFactor.totp, null, 'no app until a code confirms it')
  t.same(view.twoFactor.methods, [])
  t.equal(view.twoFactor.enabled, false)
  const login = await startLogin(ctx, user)
  t.equal(login.status, 'enrollment_required', 'a pending enrolment is no second factor')
})

t.test('confirming with a code makes TOTP the first method: 200 {totp, recoveryCode, recoveryKit}; the User shows it', async (t) => {
  const user = await createUser(ctx)
  const { enrollmentId, secret } = (await start(user.id)).json()
  await awayFromStepEdge()
  const response = await confirm(user.id, enrollmentId, totpCode(secret))
  t.equal(response.statusCode, 200, response.body)
  const body = response.json()
  t.same(Object.keys(body).sort(), ['recoveryCode', 'recoveryKit', 'totp'])
  t.match(body.totp.enabledAt, ISO)
  t.match(body.recoveryCode, RECOVERY_CODE)
  t.match(body.recoveryKit, body.recoveryCode)
  t.match(body.recoveryKit, user.email)
  t.match(body.recoveryKit, ctx.config.SUPPORT_CONTACT)
  const view = await userView(user.id)
  t.same(view.twoFactor.totp, { enabledAt: body.totp.enabledAt })
  t.same(view.twoFactor.methods, ['totp', 'recovery'])
  t.equal(view.twoFactor.enabled, true)
  t.match(view.twoFactor.recoveryCode, { createdAt: ISO })
  t.notOk(JSON.stringify(view).includes(secret), 'the User never shows the secret')
  assertProblem(t, await confirm(user.id, enrollmentId, totpCode(secret)), 'not_found', undefined)
  const events = (await ctx.request('GET', `/v1/users/${user.id}/events`)).json().items.map((e: { type: string }) => e.type)
  t.ok(events.includes('totp.enrollment_started') && events.includes('totp.enabled'), 'the enrolment and the enabling are recorded')
})

t.test('an app added next to a phone: no new recovery code (the old one stays), the primary phone is told, both methods listed', async (t) => {
  const user = await enrolledUser(ctx, 1)
  const before = ctx.twilio.messagesTo(user.number).length
  const enrolled = await enrolTotp(ctx, user.id)
  t.notOk('recoveryCode' in enrolled, 'TOTP is not the first method: no recovery code')
  const row = await ctx.db.prisma.recoveryCode.findUniqueOrThrow({ where: { userId: user.id } })
  t.ok(await ctx.app.secondFactors.recoveryCode.matches(row.codeHash, user.recoveryCode), 'the phone\'s recovery code still works')
  const notices = ctx.twilio.messagesTo(user.number).slice(before)
  t.equal(notices.length, 1)
  t.match(notices[0], /authenticator app was set up/)
  t.notMatch(notices[0], /\d{6}/)
  t.same((await userView(user.id)).twoFactor.methods, ['sms', 'voice', 'totp', 'recovery'])
})

t.test('a wrong code is 422 invalid_code and changes nothing; the right one still works afterwards', async (t) => {
  const user = await createUser(ctx)
  const { enrollmentId, secret } = (await start(user.id)).json()
  await awayFromStepEdge()
  assertProblem(t, await confirm(user.id, enrollmentId, wrong(totpCode(secret))), 'invalid_code')
  assertProblem(t, await confirm(user.id, enrollmentId, totpCode(secret, -2)), 'invalid_code', undefined)
  t.same((await userView(user.id)).twoFactor.totp, null)
  t.equal((await confirm(user.id, enrollmentId, totpCode(secret))).statusCode, 200)
})

t.test('malformed input is 400 invalid_request naming the field; unknown or another user\'s enrolment is 404', async (t) => {
  const user = await createUser(ctx)
  const other = await createUser(ctx)
  const { enrollmentId, secret } = (await start(user.id)).json()
  const { enrollmentId: othersId } = (await start(other.id)).json()
  for (const code of ['12345a', '12345', '1234567', ' 123456', '', 123456, null]) {
    assertProblem(t, await confirm(user.id, enrollmentId, code), 'invalid_request', /code/)
  }
  assertProblem(t, await ctx.request('POST', `/v1/users/${user.id}/totp/verify`, { code: '123456' }), 'invalid_request', /enrollmentId/)
  assertProblem(t, await ctx.request('POST', `/v1/users/${user.id}/totp/verify`, { enrollmentId, code: '123456', secret }), 'invalid_request')
  assertProblem(t, await ctx.request('POST', `/v1/users/${user.id}/totp/verify`, { enrollmentId: 'x/../y', code: '123456' }), 'invalid_request', /enrollmentId/)
  assertProblem(t, await ctx.request('POST', `/v1/users/${user.id}/totp`, { secret: 'JBSWY3DPEHPK3PXP' }), 'invalid_request')
  assertProblem(t, await confirm(user.id, '3b0c8c1e-5d1a-4d8e-9a51-0f6f1f9a2b7c', totpCode(secret)), 'not_found')
  assertProblem(t, await confirm(user.id, othersId, totpCode(secret)), 'not_found', undefined)
  assertProblem(t, await confirm(other.id, enrollmentId, totpCode(secret)), 'not_found', undefined)
  assertProblem(t, await start('00000000-0000-0000-0000-000000000000'), 'not_found')
  assertProblem(t, await ctx.request('DELETE', '/v1/users/00000000-0000-0000-0000-000000000000/totp'), 'not_found')
  t.same((await userView(other.id)).twoFactor.totp, null, 'no attempt enabled anything')
})

t.test('an enrolment not confirmed within 10 minutes is 410 verification_expired', async (t) => {
  const user = await createUser(ctx)
  const { enrollmentId, secret } = (await start(user.id)).json()
  await ctx.db.prisma.totpFactor.update({ where: { userId: user.id }, data: { pendingExpiresAt: new Date(Date.now() - 1) } })
  await awayFromStepEdge()
  assertProblem(t, await confirm(user.id, enrollmentId, totpCode(secret)), 'verification_expired')
  t.same((await userView(user.id)).twoFactor.totp, null)
})

t.test('starting again replaces a pending enrolment: the first enrollmentId is void', async (t) => {
  const user = await createUser(ctx)
  const first = (await start(user.id)).json()
  const second = (await start(user.id)).json()
  t.not(first.secret, second.secret, 'a new secret each time')
  await awayFromStepEdge()
  assertProblem(t, await confirm(user.id, first.enrollmentId, totpCode(first.secret)), 'not_found')
  t.equal((await confirm(user.id, second.enrollmentId, totpCode(second.secret))).statusCode, 200)
})

t.test('re-enrolling with an app enabled: the old app works until the new one is confirmed, then only the new one', async (t) => {
  const user = await totpUser(ctx)
  const next = (await start(user.id)).json()
  t.same((await userView(user.id)).twoFactor.methods, ['totp', 'recovery'], 'still enabled while the new enrolment is pending')

  const during = await startLogin(ctx, user)
  const oldWorks = await ctx.request('POST', `/v1/logins/${during.challengeId}/verify`, { code: totpCode(user.secret), method: 'totp' })
  t.equal(oldWorks.statusCode, 200, 'the old app still logs in while the new one is pending')

  await awayFromStepEdge()
  const confirmed = await confirm(user.id, next.enrollmentId, totpCode(next.secret, -1))
  t.equal(confirmed.statusCode, 200, confirmed.body)
  t.notOk('recoveryCode' in confirmed.json(), 'a replacement is not a first method: the recovery code stays')
  const row = await ctx.db.prisma.recoveryCode.findUniqueOrThrow({ where: { userId: user.id } })
  t.ok(await ctx.app.secondFactors.recoveryCode.matches(row.codeHash, user.recoveryCode))

  const after = await startLogin(ctx, user)
  assertProblem(t, await ctx.request('POST', `/v1/logins/${after.challengeId}/verify`, { code: totpCode(user.secret, 1), method: 'totp' }), 'invalid_code')
  const newWorks = await ctx.request('POST', `/v1/logins/${after.challengeId}/verify`, { code: totpCode(next.secret), method: 'totp' })
  t.equal(newWorks.statusCode, 200, 'the new app logs in')
})

t.test('five confirmations of one enrolment at once: one 200, one recovery code', async (t) => {
  const user = await createUser(ctx)
  const { enrollmentId, secret } = (await start(user.id)).json()
  await awayFromStepEdge()
  const code = totpCode(secret)
  const answers = await Promise.all(Array.from({ length: 5 }, async () => await confirm(user.id, enrollmentId, code)))
  const ok = answers.filter((r) => r.statusCode === 200)
  t.equal(ok.length, 1, answers.map((r) => r.statusCode).join(','))
  for (const r of answers.filter((r) => r.statusCode !== 200)) t.ok([404, 410].includes(r.statusCode), `loser: ${r.body}`)
  const row = await ctx.db.prisma.recoveryCode.findUniqueOrThrow({ where: { userId: user.id } })
  t.ok(await ctx.app.secondFactors.recoveryCode.matches(row.codeHash, ok[0]?.json().recoveryCode))
})

t.test('DELETE totp: the last method of a required user is 409 two_factor_required; next to a phone it is 204', async (t) => {
  const only = await totpUser(ctx)
  assertProblem(t, await ctx.request('DELETE', `/v1/users/${only.id}/totp`), 'two_factor_required')
  t.same((await userView(only.id)).twoFactor.methods, ['totp', 'recovery'], 'the app stays')

  const both = await totpUser(ctx)
  await enrolPhone(ctx, both.id, phoneNumber(2))
  const before = ctx.twilio.messagesTo(phoneNumber(2)).length
  const removed = await ctx.request('DELETE', `/v1/users/${both.id}/totp`)
  t.equal(removed.statusCode, 204)
  t.equal(removed.body, '')
  const view = await userView(both.id)
  t.same(view.twoFactor.totp, null)
  t.same(view.twoFactor.methods, ['sms', 'voice', 'recovery'])
  t.equal(await ctx.db.prisma.totpFactor.count({ where: { userId: both.id } }), 0, 'the secret is deleted, not just disabled')
  t.match(ctx.twilio.messagesTo(phoneNumber(2)).slice(before), [/authenticator app was removed/])
  assertProblem(t, await ctx.request('DELETE', `/v1/users/${both.id}/totp`), 'not_found', undefined)
  const login = await startLogin(ctx, both)
  t.same((login as unknown as { methods: string[] }).methods, ['sms', 'voice', 'recovery'], 'login no longer offers totp')
  const events = (await ctx.request('GET', `/v1/users/${both.id}/events`)).json().items.map((e: { type: string }) => e.type)
  t.ok(events.includes('totp.removed'))
})

t.test('the last-factor rule counts the app for phones too: the last phone goes when TOTP stays, and racing removals keep one', async (t) => {
  const user = await totpUser(ctx)
  const phone = await enrolPhone(ctx, user.id, phoneNumber(3))
  const removed = await ctx.request('DELETE', `/v1/users/${user.id}/phones/${phone.phone.id}`)
  t.equal(removed.statusCode, 204, 'the app is a second factor: the last phone may go')
  t.ok(await ctx.db.prisma.recoveryCode.findUnique({ where: { userId: user.id } }), 'the recovery code stays with the app')

  // Several users at once, so the two removals of each really overlap in the database.
  const racers = await Promise.all([5, 6, 7, 8, 9, 10].map(async (n) => {
    const racer = await totpUser(ctx)
    return { racer, phone: await enrolPhone(ctx, racer.id, phoneNumber(n)) }
  }))
  await Promise.all(racers.map(async ({ racer, phone }) => {
    const answers = await Promise.all([
      ctx.request('DELETE', `/v1/users/${racer.id}/totp`),
      ctx.request('DELETE', `/v1/users/${racer.id}/phones/${phone.phone.id}`)
    ])
    t.same(answers.map((r) => r.statusCode).sort(), [204, 409], 'one removal wins, the other is refused')
    t.equal((await userView(racer.id)).twoFactor.enabled, true, 'the user keeps a second factor')
  }))

  const pendingOnly = await createUser(ctx)
  await start(pendingOnly.id)
  t.equal((await ctx.request('DELETE', `/v1/users/${pendingOnly.id}/totp`)).statusCode, 204, 'a pending enrolment alone can always be dropped')
})

t.test('a TOTP-only user may regenerate the recovery code', async (t) => {
  const user = await totpUser(ctx)
  const response = await ctx.request('POST', `/v1/users/${user.id}/recovery-code`)
  t.equal(response.statusCode, 201, response.body)
  t.match(response.json().recoveryCode, RECOVERY_CODE)
})

t.test('support\'s two-factor reset removes the app and any pending enrolment', async (t) => {
  const user = await totpUser(ctx)
  await start(user.id)
  const reset = await ctx.request('DELETE', `/v1/users/${user.id}/two-factor`, { reason: 'lost phone, identity checked' })
  t.equal(reset.statusCode, 204, reset.body)
  t.equal(await ctx.db.prisma.totpFactor.count({ where: { userId: user.id } }), 0)
  t.same((await userView(user.id)).twoFactor.totp, null)
  t.equal((await startLogin(ctx, user)).status, 'enrollment_required')
})

t.test('the routes need scope users', async (t) => {
  const user = await createUser(ctx)
  const { key } = await ctx.app.apiKeys.create(`login-only-${Date.now()}`, ['login'])
  assertProblem(t, await ctx.request('POST', `/v1/users/${user.id}/totp`, undefined, key), 'forbidden')
  assertProblem(t, await ctx.request('DELETE', `/v1/users/${user.id}/totp`, undefined, key), 'forbidden')
  assertProblem(t, await ctx.request('POST', `/v1/users/${user.id}/totp`, undefined, null), 'unauthorized')
})
