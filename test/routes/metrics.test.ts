import { test } from 'tap'
import { buildTestApp, enrolledUser, startLogin } from '../helpers/app.js'

test('/metrics exposes request latency by route template, never by raw URL', async (t) => {
  const ctx = await buildTestApp(t)
  await ctx.request('GET', '/health', undefined, null)
  await ctx.request('GET', '/v1/users/00000000-0000-0000-0000-000000000000')
  await ctx.request('GET', '/no-such-route-abc123', undefined, null)

  const response = await ctx.request('GET', '/metrics', undefined, null)
  t.equal(response.statusCode, 200)
  t.match(response.headers['content-type'], /^text\/plain/)
  const body = response.body
  t.match(body, /spa_http_request_duration_seconds_count\{method="GET",route="\/health",status="200"\} 1/)
  t.match(body, /spa_http_request_duration_seconds_count\{method="GET",route="\/v1\/users\/:[a-zA-Z]+",status="\d{3}"\} 1/)
  t.match(body, /route="unmatched",status="404"/)
  t.notMatch(body, /00000000-0000-0000-0000-000000000000/, 'ids from URLs never become labels')
  t.notMatch(body, /no-such-route-abc123/, 'unknown paths never become labels')
  t.match(body, /# TYPE spa_codes_sent_total counter/)
})

/** The value of one sample in Prometheus text format, whatever the label order; 0 when absent. */
function sample (body: string, name: string, labels: Record<string, string>): number {
  for (const line of body.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null || match[1] !== name) continue
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]))
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) return Number(match[3])
  }
  return 0
}

test('codes sent, second-factor checks, lockouts, provider calls and the database pool are counted', async (t) => {
  const ctx = await buildTestApp(t)
  const scrape = async () => (await ctx.request('GET', '/metrics', undefined, null)).body
  const user = await enrolledUser(ctx, 1)
  const locked = await enrolledUser(ctx, 2)
  const before = await scrape()
  const delta = (after: string, name: string, labels: Record<string, string>) => sample(after, name, labels) - sample(before, name, labels)

  // One wrong code, then the right one.
  const login = await startLogin(ctx, user)
  const code = ctx.twilio.lastCodeFor(user.number) ?? ''
  const wrong = code === '000000' ? '111111' : '000000'
  t.equal((await ctx.request('POST', `/v1/logins/${login.challengeId}/verify`, { code: wrong })).statusCode, 422)
  t.equal((await ctx.request('POST', `/v1/logins/${login.challengeId}/verify`, { code })).statusCode, 200)

  // Twilio refuses one text: the login goes on without a code.
  ctx.twilio.failNext(1, { status: 400, code: 21211, message: 'The number is not valid' }, 'sms')
  const failed = await startLogin(ctx, user)
  t.equal(failed.delivery, null)

  // Three wrong recovery codes lock the other account.
  const first = await startLogin(ctx, locked)
  for (const expected of [422, 422, 423]) {
    const answer = await ctx.request('POST', `/v1/logins/${first.challengeId}/recovery`, { recoveryCode: 'AAAA-BBBB-CCCC-DDDD-EEEE' })
    t.equal(answer.statusCode, expected, answer.body)
  }

  const after = await scrape()
  t.equal(delta(after, 'spa_codes_sent_total', { channel: 'sms', outcome: 'sent' }), 2, 'two logins got their text')
  t.equal(delta(after, 'spa_codes_sent_total', { channel: 'sms', outcome: 'failed' }), 1, 'the refused text')
  t.equal(delta(after, 'spa_verifications_total', { method: 'sms', outcome: 'wrong' }), 1)
  t.equal(delta(after, 'spa_verifications_total', { method: 'sms', outcome: 'accepted' }), 1)
  t.equal(delta(after, 'spa_verifications_total', { method: 'recovery', outcome: 'wrong' }), 3)
  t.equal(delta(after, 'spa_lockouts_total', { reason: 'recovery_failures' }), 1)
  t.ok(delta(after, 'spa_provider_errors_total', { provider: 'twilio', operation: 'sms', reason: 'rejected' }) >= 1, 'the provider failure is counted by reason')
  t.equal(delta(after, 'spa_provider_request_duration_seconds_count', { provider: 'twilio', operation: 'sms', outcome: 'ok' }), 2, 'each provider call is timed')
  t.ok(sample(after, 'spa_db_pool_connections', { state: 'total' }) >= 1, 'the pool gauge reads the open connections')
  t.match(after, /spa_db_pool_connections\{state="waiting"\} \d+/)
  t.notMatch(after, new RegExp(user.number.replace('+', '\\+')), 'no phone number in any label')
})

test('a support lock is counted under one bounded reason, not its free text', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 3)
  const answer = await ctx.request('POST', `/v1/users/${user.id}/lock`, { reason: 'caller 4471 said phone stolen' })
  t.equal(answer.statusCode, 200, answer.body)
  const body = (await ctx.request('GET', '/metrics', undefined, null)).body
  t.equal(sample(body, 'spa_lockouts_total', { reason: 'support' }), 1)
  t.notMatch(body, /phone stolen/)
})

test('a send refused by the SMS budget and a pause after ten wrong codes are counted', async (t) => {
  // One code per number per hour: enrolment uses it, so the login's text is refused.
  const ctx = await buildTestApp(t, { env: { SMS_PER_NUMBER_PER_HOUR: '1' } })
  const user = await enrolledUser(ctx, 4)
  const before = (await ctx.request('GET', '/metrics', undefined, null)).body
  const first = await startLogin(ctx, user)
  t.equal(first.delivery, null, 'the login goes on without a text')
  const second = await startLogin(ctx, user)
  let last = 0
  // Five wrong codes close a challenge; ten across challenges pause the account.
  for (const challengeId of [first.challengeId, second.challengeId]) {
    for (let i = 0; i < 5; i++) {
      last = (await ctx.request('POST', `/v1/logins/${challengeId}/verify`, { code: '000000' })).statusCode
    }
  }
  t.equal(last, 429, 'the tenth wrong code pauses the account')
  const after = (await ctx.request('GET', '/metrics', undefined, null)).body
  const delta = (name: string, labels: Record<string, string>) => sample(after, name, labels) - sample(before, name, labels)
  t.equal(delta('spa_codes_sent_total', { channel: 'sms', outcome: 'refused' }), 2, 'both logins\' texts were refused')
  t.equal(delta('spa_codes_sent_total', { channel: 'sms', outcome: 'sent' }), 0)
  t.equal(delta('spa_lockouts_total', { reason: 'code_failures' }), 1)
  t.equal(delta('spa_verifications_total', { method: 'sms', outcome: 'wrong' }), 10)
})
