// Twilio down, throttling or hanging: the login answers 502 delivery_failed fast,
// the challenge stays usable (retry at once, or the other channel), no budget is
// spent; undelivered texts reported by signed callbacks show in the login's status.
import t from 'tap'
import { buildTestApp, enrolledUser, startLogin, type TestApp } from '../helpers/app.js'
import { assertProblem } from '../helpers/problem.js'

const PUBLIC = 'https://auth.studiopro.example'

async function statusOf (ctx: TestApp, challengeId: string) {
  const answer = await ctx.request('GET', `/v1/logins/${challengeId}`)
  t.equal(answer.statusCode, 200, answer.body)
  return answer.json()
}

for (const failure of [{ status: 500 }, { status: 503 }, { status: 429, code: 20429 }, 'hang'] as const) {
  const name = typeof failure === 'string' ? failure : `HTTP ${failure.status}`
  t.test(`Twilio ${name}: 502 delivery_failed quickly, then an immediate retry works`, async (t) => {
    const ctx = await buildTestApp(t, { env: { TWILIO_TIMEOUT_MS: '1000', SMS_PER_NUMBER_PER_HOUR: '3' } })
    const user = await enrolledUser(ctx, 1)
    const login = await startLogin(ctx, user)
    ctx.twilio.failNext(1, failure, 'sms')
    const began = Date.now()
    // The cooldown of the login's own send is over only after 30 s: wait it out by moving the clock of the row.
    await ctx.db.prisma.otpChallenge.update({ where: { id: login.challengeId }, data: { lastSentAt: new Date(Date.now() - 60_000) } })
    const failed = await ctx.request('POST', `/v1/logins/${login.challengeId}/send`, { channel: 'sms' })
    const took = Date.now() - began
    assertProblem(t, failed, 'delivery_failed')
    t.ok(took < 3_000, `answered in ${took} ms (timeout 1000 ms)`)

    const state = await statusOf(ctx, login.challengeId)
    t.equal(state.status, 'open', 'the challenge is still open')
    t.equal(state.delivery.status, 'failed', 'the failed attempt shows as the latest delivery')

    // No cooldown was started by the failed send: the user can retry at once, by SMS or by call.
    const voice = await ctx.request('POST', `/v1/logins/${login.challengeId}/send`, { channel: 'voice' })
    t.equal(voice.statusCode, 202, voice.body)
    const code = ctx.twilio.lastCodeFor(user.number)
    const verified = await ctx.request('POST', `/v1/logins/${login.challengeId}/verify`, { code })
    t.equal(verified.statusCode, 200, 'the code of the retry completes the login')
    const spent = await ctx.db.prisma.sendCounter.findFirst({ where: { scope: 'number-hour' } })
    t.equal(spent?.count, 3, 'enrolment, login and the retry: the failed attempt was given back')
  })
}

t.test('the first send of a login fails: challenge_required with deliveryError, and the challenge works', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 2)
  ctx.twilio.failNext(1, { status: 500 })
  const login = await startLogin(ctx, user) as { challengeId: string, delivery: unknown, deliveryError?: string }
  t.equal(login.delivery, null)
  t.equal(login.deliveryError, 'delivery_failed')
  const retry = await ctx.request('POST', `/v1/logins/${login.challengeId}/send`, { channel: 'sms' })
  t.equal(retry.statusCode, 202, 'no resend cooldown after a send that failed')
})

t.test('an SMS reported undelivered shows in the login status, so the backend can offer a call', async (t) => {
  const ctx = await buildTestApp(t, { env: { PUBLIC_BASE_URL: PUBLIC } })
  const user = await enrolledUser(ctx, 3)
  const login = await startLogin(ctx, user)
  const sms = ctx.twilio.requests.at(-1)
  t.equal(sms?.statusCallback, `${PUBLIC}/v1/webhooks/twilio/status`, 'Twilio is told where to report')
  t.equal((await statusOf(ctx, login.challengeId)).delivery.status, 'queued')

  const forged = ctx.twilio.signedStatusCallback(sms?.sid ?? '', 'delivered', { url: `${PUBLIC}/v1/webhooks/twilio/status`, authToken: 'attacker-guess' })
  const refused = await ctx.app.inject({ method: 'POST', url: forged.path, headers: forged.headers, payload: forged.payload })
  assertProblem(t, refused, 'invalid_signature')
  t.equal((await statusOf(ctx, login.challengeId)).delivery.status, 'queued', 'a forged callback changes nothing')

  const report = ctx.twilio.signedStatusCallback(sms?.sid ?? '', 'undelivered', { url: `${PUBLIC}/v1/webhooks/twilio/status`, params: { ErrorCode: '30003' } })
  const accepted = await ctx.app.inject({ method: 'POST', url: report.path, headers: report.headers, payload: report.payload })
  t.equal(accepted.statusCode, 204, accepted.body)
  const state = await statusOf(ctx, login.challengeId)
  t.match(state.delivery, { channel: 'sms', status: 'undelivered', errorCode: '30003', phone: { masked: /67$|\d\d$/ } })
  t.notOk(JSON.stringify(state).includes(user.number.slice(2)), 'the status never shows the number')

  const late = ctx.twilio.signedStatusCallback(sms?.sid ?? '', 'sent', { url: `${PUBLIC}/v1/webhooks/twilio/status` })
  t.equal((await ctx.app.inject({ method: 'POST', url: late.path, headers: late.headers, payload: late.payload })).statusCode, 204)
  t.equal((await statusOf(ctx, login.challengeId)).delivery.status, 'undelivered', 'a late "sent" callback does not hide the failure')

  await ctx.db.prisma.otpChallenge.update({ where: { id: login.challengeId }, data: { lastSentAt: new Date(Date.now() - 60_000) } })
  const call = await ctx.request('POST', `/v1/logins/${login.challengeId}/send`, { channel: 'voice' })
  t.equal(call.statusCode, 202)
  t.equal((await statusOf(ctx, login.challengeId)).delivery.channel, 'voice', 'the call is now the latest delivery')
})

t.test('GET /v1/logins/{id}: unknown is 404', async (t) => {
  const ctx = await buildTestApp(t)
  assertProblem(t, await ctx.request('GET', '/v1/logins/00000000-0000-0000-0000-000000000000'), 'not_found')
})
