// Contract section 6: a method the organization does not allow is neither offered, nor sent,
// nor accepted; the recovery code always stays available.
import t from 'tap'
import { assertProblem } from '../helpers/problem.js'
import { buildTestApp, enrolPhone, email, phoneNumber, STRONG_PASSWORD, type TestApp } from '../helpers/app.js'

const POLICY = { requiredRoles: ['*'], allowedMethods: ['sms', 'voice', 'totp'], rememberDeviceDays: 30, enrollmentGraceDays: 0, smsDailyLimit: 1000 }

async function enrolledOrgUser (ctx: TestApp, organizationId: string, n: number, channel: 'sms' | 'voice') {
  const created = await ctx.request('POST', '/v1/users', { email: email(), password: STRONG_PASSWORD, organizationId })
  const user = created.json() as { id: string, email: string }
  const number = phoneNumber(n)
  const enrolled = await enrolPhone(ctx, user.id, number, channel)
  return { ...user, number, recoveryCode: enrolled.recoveryCode }
}

async function login (ctx: TestApp, user: { email: string }) {
  return (await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD })).json()
}

t.test('voice only: an SMS user is called instead, sms is neither offered nor accepted, recovery still works', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledOrgUser(ctx, 'studio-voice', 1, 'sms')
  await ctx.request('PUT', '/v1/organizations/studio-voice/policy', { ...POLICY, allowedMethods: ['voice'] })
  ctx.twilio.reset()

  const challenge = await login(ctx, user)
  t.equal(challenge.status, 'challenge_required')
  t.same(challenge.methods, ['voice', 'recovery'])
  t.equal(challenge.delivery.channel, 'voice', 'the code is read by a call')
  t.same(ctx.twilio.messagesTo(user.number), [], 'no text was sent')
  t.equal(ctx.twilio.callsTo(user.number).length, 1)
  const code = ctx.twilio.lastCodeFor(user.number) as string

  await ctx.db.prisma.otpChallenge.update({ where: { id: challenge.challengeId }, data: { lastSentAt: new Date(0) } })
  assertProblem(t, await ctx.request('POST', `/v1/logins/${challenge.challengeId}/send`, { channel: 'sms' }), 'invalid_request', /sms is not allowed/)
  t.same(ctx.twilio.messagesTo(user.number), [], 'send refused it before the provider')
  assertProblem(t, await ctx.request('POST', `/v1/logins/${challenge.challengeId}/verify`, { code, method: 'sms' }), 'invalid_request', /sms is not allowed/)

  const verified = await ctx.request('POST', `/v1/logins/${challenge.challengeId}/verify`, { code, method: 'voice' })
  t.equal(verified.statusCode, 200, 'the allowed method with the same code works, the refusal cost nothing')
  t.same(verified.json().amr, ['pwd', 'tel'])

  const another = await login(ctx, user)
  const recovered = await ctx.request('POST', `/v1/logins/${another.challengeId}/recovery`, { recoveryCode: user.recoveryCode })
  t.equal(recovered.statusCode, 200, 'the recovery code is always accepted')
})

t.test('sms only: a voice user gets a text; voice is refused at send', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledOrgUser(ctx, 'studio-sms', 2, 'voice')
  await ctx.request('PUT', '/v1/organizations/studio-sms/policy', { ...POLICY, allowedMethods: ['sms'] })
  ctx.twilio.reset()
  const challenge = await login(ctx, user)
  t.same(challenge.methods, ['sms', 'recovery'])
  t.equal(challenge.delivery.channel, 'sms')
  t.same(ctx.twilio.callsTo(user.number), [])
  await ctx.db.prisma.otpChallenge.update({ where: { id: challenge.challengeId }, data: { lastSentAt: new Date(0) } })
  assertProblem(t, await ctx.request('POST', `/v1/logins/${challenge.challengeId}/send`, { channel: 'voice' }), 'invalid_request', /voice is not allowed/)
  t.same(ctx.twilio.callsTo(user.number), [])
})

t.test('totp only: a phone is no usable second factor, so nothing is sent and the required user must enrol', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledOrgUser(ctx, 'studio-app', 3, 'sms')
  await ctx.request('PUT', '/v1/organizations/studio-app/policy', { ...POLICY, allowedMethods: ['totp'] })
  ctx.twilio.reset()
  t.same(await login(ctx, user), { status: 'enrollment_required', userId: user.id })
  t.equal(ctx.twilio.requests.length, 0, 'no SMS or call')

  await ctx.request('PUT', '/v1/organizations/studio-app/policy', { ...POLICY, allowedMethods: ['totp'], enrollmentGraceDays: 10 })
  const graced = await login(ctx, user)
  t.equal(graced.status, 'authenticated')
  t.type(graced.enrollmentDueBy, 'string', 'within the grace period the user is told to set up an app')
  t.equal(ctx.twilio.requests.length, 0)
})
