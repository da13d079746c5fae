// Per-client-IP and per-API-key limits: a password spray, a send flood and a code
// flood from one address are cut off, other addresses are not, and a spoofed
// X-Forwarded-For from an untrusted peer moves nothing.
import t from 'tap'
import { buildTestApp, createUser, email, enrolledUser, startLogin, TEST_API_KEY } from '../helpers/app.js'
import { assertProblem } from '../helpers/problem.js'

t.test('password guesses from one client IP stop at the per-IP limit; another IP is unaffected', async (t) => {
  const ctx = await buildTestApp(t, { env: { RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: '3' } })
  const attacker = '203.0.113.7'
  // Spread over many accounts so that no per-account throttle is what stops it.
  for (let i = 0; i < 3; i++) {
    const answer = await ctx.request('POST', '/v1/logins', { email: email('spray'), password: 'Wrong-password-1', context: { ip: attacker } })
    assertProblem(t, answer, 'invalid_credentials')
  }
  const refused = await ctx.request('POST', '/v1/logins', { email: email('spray'), password: 'Wrong-password-1', context: { ip: attacker } })
  const body = assertProblem(t, refused, 'too_many_requests')
  t.ok(Number(refused.headers['retry-after']) >= 1 && Number(refused.headers['retry-after']) <= 60, `Retry-After ${String(refused.headers['retry-after'])}`)
  t.equal(body.retryAfter, Number(refused.headers['retry-after']), 'retryAfter in the body matches the header')

  const other = await ctx.request('POST', '/v1/logins', { email: email('spray'), password: 'Wrong-password-1', context: { ip: '2001:db8::1' } })
  assertProblem(t, other, 'invalid_credentials')
})

t.test('IPv6 clients are counted per /64: fresh addresses from one network do not escape', async (t) => {
  const ctx = await buildTestApp(t, { env: { RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: '2' } })
  const codes = []
  for (const ip of ['2001:db8:7:7::1', '2001:db8:7:7::2', '2001:db8:7:7:abcd::3']) {
    codes.push((await ctx.request('POST', '/v1/logins', { email: email(), password: 'Wrong-password-1', context: { ip } })).json().code)
  }
  t.same(codes, ['invalid_credentials', 'invalid_credentials', 'too_many_requests'])
  assertProblem(t, await ctx.request('POST', '/v1/logins', { email: email(), password: 'Wrong-password-1', context: { ip: '2001:db8:7:8::1' } }), 'invalid_credentials')
})

t.test('a context.ip that is not an IP address is refused with 400', async (t) => {
  const ctx = await buildTestApp(t)
  for (const ip of ['not-an-ip', '10.0.0.300', '', '1.2.3.4, 5.6.7.8']) {
    const answer = await ctx.request('POST', '/v1/logins', { email: email(), password: 'Wrong-password-1', context: { ip } })
    assertProblem(t, answer, 'invalid_request', /context\.ip/)
  }
})

t.test('X-Forwarded-For counts only behind a trusted proxy', async (t) => {
  const login = (ctx: Awaited<ReturnType<typeof buildTestApp>>, forwarded: string) => ctx.app.inject({
    method: 'POST',
    url: '/v1/logins',
    headers: { authorization: `Bearer ${TEST_API_KEY}`, 'x-forwarded-for': forwarded },
    payload: { email: email(), password: 'Wrong-password-1' }
  })

  const untrusted = await buildTestApp(t, { env: { RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: '2' } })
  const statuses = []
  // A different forged address on each request: without a trusted proxy they are all 127.0.0.1.
  for (let i = 0; i < 3; i++) statuses.push((await login(untrusted, `198.51.100.${i + 1}`)).statusCode)
  t.same(statuses, [401, 401, 429], 'forged X-Forwarded-For does not escape the limit')

  const behindProxy = await buildTestApp(t, { env: { RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: '2', TRUSTED_PROXIES: '127.0.0.1' } })
  const spread = []
  for (let i = 0; i < 3; i++) spread.push((await login(behindProxy, `198.51.100.${i + 1}`)).statusCode)
  t.same(spread, [401, 401, 401], 'behind the trusted proxy each forwarded client has its own budget')
  const same = []
  for (let i = 0; i < 3; i++) same.push((await login(behindProxy, '198.51.100.99')).statusCode)
  t.same(same, [401, 401, 429], 'and one forwarded client is limited')
})

t.test('sends from one client IP stop at the per-IP limit and never reach Twilio', async (t) => {
  const ctx = await buildTestApp(t, { env: { RATE_LIMIT_SEND_PER_IP_PER_MINUTE: '2' } })
  const user = await enrolledUser(ctx, 1)
  const { challengeId } = await startLogin(ctx, user)
  const before = ctx.twilio.requests.length
  const codes = []
  for (let i = 0; i < 3; i++) {
    const answer = await ctx.request('POST', `/v1/logins/${challengeId}/send`, { channel: 'voice', context: { ip: '203.0.113.9' } })
    codes.push(answer.json().code ?? answer.statusCode)
  }
  // The login just sent a code, so the first two meet the resend cooldown: refused or not, they count.
  t.same(codes, ['resend_too_soon', 'resend_too_soon', 'too_many_requests'], 'every send request counts, the third is refused by the IP limit')
  t.equal(ctx.twilio.requests.length, before, 'nothing more reached Twilio')
})

t.test('code guesses from one client IP stop at the per-IP limit, across challenges', async (t) => {
  const ctx = await buildTestApp(t, { env: { RATE_LIMIT_VERIFY_PER_IP_PER_MINUTE: '3' } })
  const challenges = []
  for (let n = 1; n <= 2; n++) challenges.push((await startLogin(ctx, await enrolledUser(ctx, n))).challengeId)
  const codes = []
  for (let i = 0; i < 4; i++) {
    const answer = await ctx.request('POST', `/v1/logins/${challenges[i % 2]}/verify`, { code: '000000', context: { ip: '203.0.113.10' } })
    codes.push(answer.json().code)
  }
  t.same(codes, ['invalid_code', 'invalid_code', 'invalid_code', 'too_many_requests'])
  const recovery = await ctx.request('POST', `/v1/logins/${challenges[0]}/recovery`, { recoveryCode: 'AAAA-BBBB', context: { ip: '203.0.113.10' } })
  assertProblem(t, recovery, 'too_many_requests')
  const elsewhere = await ctx.request('POST', `/v1/logins/${challenges[0]}/verify`, { code: '000000', context: { ip: '203.0.113.11' } })
  assertProblem(t, elsewhere, 'invalid_code')
})

t.test('one API key is capped overall, whatever client IPs it reports', async (t) => {
  const ctx = await buildTestApp(t, { env: { RATE_LIMIT_API_KEY_PER_MINUTE: '5' } })
  const statuses = []
  for (let i = 0; i < 6; i++) {
    statuses.push((await ctx.request('POST', '/v1/logins', { email: email(), password: 'Wrong-password-1', context: { ip: `192.0.2.${i + 1}` } })).statusCode)
  }
  t.same(statuses, [401, 401, 401, 401, 401, 429])
  const user = await ctx.request('GET', '/v1/users/00000000-0000-0000-0000-000000000000')
  assertProblem(t, user, 'too_many_requests')
})

t.test('limits are off at 0', async (t) => {
  const ctx = await buildTestApp(t, { env: { RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: '0' } })
  await createUser(ctx)
  for (let i = 0; i < 5; i++) {
    assertProblem(t, await ctx.request('POST', '/v1/logins', { email: email(), password: 'Wrong-password-1', context: { ip: '203.0.113.12' } }), 'invalid_credentials')
  }
})
