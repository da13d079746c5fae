// Issue 4: the per-IP SMS budget must count the END USER's address, the one the backend
// reports in `context.ip`, not the backend's own address (every login comes from the
// backend, so counting that would make one budget for the whole user base). A resend
// belongs to the login that opened the challenge: it counts against the login's IP.
import t from 'tap'
import { buildTestApp, enrolledUser, STRONG_PASSWORD, type TestApp } from '../helpers/app.js'
import { assertProblem } from '../helpers/problem.js'

async function login (t: Tap.Test, ctx: TestApp, user: { email: string }, ip: string) {
  const answer = await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD, context: { ip } })
  t.equal(answer.statusCode, 200, `login from ${ip}: ${answer.body}`)
  return answer.json() as { challengeId: string, delivery: unknown }
}

async function ipCounters (ctx: TestApp) {
  const rows = await ctx.db.prisma.sendCounter.findMany({ where: { scope: 'ip-hour' } })
  return Object.fromEntries(rows.map((row) => [row.key, row.count]))
}

t.test('each end-user IP has its own budget, and a resend without context counts against the IP of the login', async (t) => {
  // Enrolment sends count too (against the caller, 127.0.0.1 under inject): the budget is above them.
  const ctx = await buildTestApp(t, { env: { SMS_PER_IP_PER_HOUR: '2', RESEND_COOLDOWN_SECONDS: '0' } })
  const first = await enrolledUser(ctx, 60)
  const second = await enrolledUser(ctx, 61)
  const before = await ipCounters(ctx)

  const a = await login(t, ctx, first, '203.0.113.10')
  t.not(a.delivery, null, 'the login from A sent its code')
  const resend = await ctx.request('POST', `/v1/logins/${a.challengeId}/send`, { channel: 'sms' })
  t.equal(resend.statusCode, 202, 'a resend with no context fits in A\'s budget')
  const sent = ctx.twilio.requests.length
  assertProblem(t, await ctx.request('POST', `/v1/logins/${a.challengeId}/send`, { channel: 'sms' }), 'send_limit_reached', /this network/)
  t.equal(ctx.twilio.requests.length, sent, 'the refused resend reached nobody')
  const other = await login(t, ctx, second, '203.0.113.10')
  t.equal(other.delivery, null, 'another account logging in from A finds A\'s budget spent: nothing sent')

  const b = await login(t, ctx, second, '203.0.113.20')
  t.not(b.delivery, null, 'B has its own budget')
  t.equal((await ctx.request('POST', `/v1/logins/${b.challengeId}/send`, { channel: 'sms' })).statusCode, 202)

  t.same(await ipCounters(ctx), { ...before, '203.0.113.10': 2, '203.0.113.20': 2 },
    'counted under the reported IPs; the caller\'s address (127.0.0.1) took nothing from the logins or resends')
})

t.test('IPv6 end users are counted per /64', async (t) => {
  const ctx = await buildTestApp(t, { env: { SMS_PER_IP_PER_HOUR: '2' } })
  const first = await enrolledUser(ctx, 62)
  const second = await enrolledUser(ctx, 63)
  t.not((await login(t, ctx, first, '2001:db8:1:2::a')).delivery, null)
  t.not((await login(t, ctx, second, '2001:db8:1:2:ffff::b')).delivery, null)
  t.equal((await login(t, ctx, first, '2001:db8:1:2::c')).delivery, null, 'a fresh address in the same /64 shares the spent budget')
  t.not((await login(t, ctx, second, '2001:db8:1:3::a')).delivery, null, 'another /64 has its own')
  t.equal((await ipCounters(ctx))['2001:db8:1:2::/64'], 2)
})
