// Contract sections 4 and 6 together: the studio's allowedMethods decides whether the
// authenticator app is offered and accepted, and a TOTP login can remember the device.
import t from 'tap'
import { assertProblem } from '../helpers/problem.js'
import { awayFromStepEdge, buildTestApp, email, enrolPhone, enrolTotp, phoneNumber, STRONG_PASSWORD, totpCode, type TestApp } from '../helpers/app.js'

const POLICY = { requiredRoles: ['*'], allowedMethods: ['sms', 'voice', 'totp'], rememberDeviceDays: 30, enrollmentGraceDays: 0, smsDailyLimit: 1000 }

async function orgUserWithPhoneAndApp (ctx: TestApp, organizationId: string, n: number) {
  const user = (await ctx.request('POST', '/v1/users', { email: email(), password: STRONG_PASSWORD, organizationId })).json() as { id: string, email: string }
  await enrolPhone(ctx, user.id, phoneNumber(n))
  const { secret } = await enrolTotp(ctx, user.id)
  return { ...user, number: phoneNumber(n), secret }
}

async function login (ctx: TestApp, user: { email: string }, deviceToken?: string) {
  return (await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD, ...(deviceToken === undefined ? {} : { deviceToken }) })).json()
}

t.test('a studio that does not allow apps: totp is neither offered nor accepted, and the code is texted at once', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await orgUserWithPhoneAndApp(ctx, 'studio-texts', 1)
  await ctx.request('PUT', '/v1/organizations/studio-texts/policy', { ...POLICY, allowedMethods: ['sms', 'voice'] })
  ctx.twilio.reset()
  const challenge = await login(ctx, user)
  t.same(challenge.methods, ['sms', 'voice', 'recovery'])
  t.equal(challenge.delivery?.channel, 'sms', 'the app is not preferred when not allowed: the code is texted')
  await awayFromStepEdge()
  assertProblem(t, await ctx.request('POST', `/v1/logins/${challenge.challengeId}/verify`, { code: totpCode(user.secret), method: 'totp' }), 'invalid_request', /totp is not allowed/)
  const sms = await ctx.request('POST', `/v1/logins/${challenge.challengeId}/verify`, { code: ctx.twilio.lastCodeFor(user.number) })
  t.equal(sms.statusCode, 200, 'the refused method spent no attempt')
})

t.test('a studio that allows only apps: nothing is sent, the app logs in, and rememberDevice gives a token that skips the next code', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await orgUserWithPhoneAndApp(ctx, 'studio-apps', 2)
  await ctx.request('PUT', '/v1/organizations/studio-apps/policy', { ...POLICY, allowedMethods: ['totp'] })
  ctx.twilio.reset()
  const challenge = await login(ctx, user)
  t.same(challenge.methods, ['totp', 'recovery'])
  t.equal(challenge.delivery, null)
  t.equal(ctx.twilio.requests.length, 0, 'no text, no call')
  await awayFromStepEdge()
  const verified = await ctx.request('POST', `/v1/logins/${challenge.challengeId}/verify`, { code: totpCode(user.secret), method: 'totp', rememberDevice: true })
  t.equal(verified.statusCode, 200, verified.body)
  t.same(verified.json().amr, ['pwd', 'otp'])
  t.type(verified.json().deviceToken, 'string')
  const again = await login(ctx, user, verified.json().deviceToken)
  t.match(again, { status: 'authenticated', userId: user.id })
  t.ok(again.amr.includes('device'), 'the remembered device skips the code')
})

t.test('the last method the studio allows cannot be removed; a method it does not allow always can', async (t) => {
  const ctx = await buildTestApp(t)
  const appsOnly = await orgUserWithPhoneAndApp(ctx, 'studio-apps-only', 3)
  await ctx.request('PUT', '/v1/organizations/studio-apps-only/policy', { ...POLICY, allowedMethods: ['totp'] })
  assertProblem(t, await ctx.request('DELETE', `/v1/users/${appsOnly.id}/totp`), 'two_factor_required', /allows only authenticator apps/)
  const [phone] = (await ctx.request('GET', `/v1/users/${appsOnly.id}/phones`)).json().items
  t.equal((await ctx.request('DELETE', `/v1/users/${appsOnly.id}/phones/${phone.id}`)).statusCode, 204, 'a phone the studio does not allow is no way in: it can go')
  assertProblem(t, await ctx.request('DELETE', `/v1/users/${appsOnly.id}/totp`), 'two_factor_required')

  const textsOnly = await orgUserWithPhoneAndApp(ctx, 'studio-texts-only', 4)
  await ctx.request('PUT', '/v1/organizations/studio-texts-only/policy', { ...POLICY, allowedMethods: ['sms'] })
  const [textPhone] = (await ctx.request('GET', `/v1/users/${textsOnly.id}/phones`)).json().items
  assertProblem(t, await ctx.request('DELETE', `/v1/users/${textsOnly.id}/phones/${textPhone.id}`), 'two_factor_required', /add another phone before/)
  t.equal((await ctx.request('DELETE', `/v1/users/${textsOnly.id}/totp`)).statusCode, 204, 'an app the studio does not allow can go')
  const view = (await ctx.request('GET', `/v1/users/${textsOnly.id}`)).json()
  t.equal(view.twoFactor.phones.length, 1, 'the phone, the only way in, is still there')
})
