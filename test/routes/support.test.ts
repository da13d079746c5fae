// Contract section 5: support actions (scope `admin`) and the security event log.
import t from 'tap'
import { buildTestApp, createUser, enrolledUser, enrolPhone, phoneNumber, startLogin, STRONG_PASSWORD } from '../helpers/app.js'
import { assertProblem } from '../helpers/problem.js'

const SUPPORT = 'Studio Pro support at help@dancedesk.example'
const ctx = await buildTestApp(t, { env: { SUPPORT_CONTACT: SUPPORT } })
const SIX_DIGITS = /(?<!\d)\d{6}(?!\d)/
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z$/

const lock = (userId: string, reason = 'caller could not prove identity') => ctx.request('POST', `/v1/users/${userId}/lock`, { reason })
const unlock = (userId: string, reason = 'identity checked by phone') => ctx.request('POST', `/v1/users/${userId}/unlock`, { reason })
const login = (email: string, password = STRONG_PASSWORD) => ctx.request('POST', '/v1/logins', { email, password })
async function eventsOf (userId: string, query = '') {
  const response = await ctx.request('GET', `/v1/users/${userId}/events${query}`)
  if (response.statusCode !== 200) throw new Error(`events: ${response.statusCode} ${response.body}`)
  return response.json().items as Array<{ id: string, type: string, createdAt: string, ip: string | null, userAgent: string | null, details: Record<string, unknown> }>
}
const wrong = (code: string | undefined) => (code ?? '000000').replace(/\d/g, (d) => String((Number(d) + 5) % 10))

t.test('lock answers 200 with the User locked and the reason; a login then is 423 naming the support contact', async (t) => {
  const user = await enrolledUser(ctx, 1)
  const response = await lock(user.id, 'reported stolen phone')
  t.equal(response.statusCode, 200, response.body)
  t.equal(response.json().id, user.id)
  t.equal(response.json().locked, true)
  t.equal(response.json().lockedReason, 'reported stolen phone')
  const refused = await login(user.email)
  const body = assertProblem(t, refused, 'account_locked')
  t.match(body.detail, SUPPORT, 'the 423 tells the user how to reach support')
  t.equal((await ctx.request('GET', `/v1/users/${user.id}`)).json().locked, true)
  const wrongPassword = await login(user.email, 'Not-The-Password-1')
  assertProblem(t, wrongPassword, 'invalid_credentials', undefined)
  t.notMatch(wrongPassword.body, /locked/, 'a wrong password learns nothing about the lock')
})

t.test('locking closes the open challenges: a code sent before the lock no longer works', async (t) => {
  const user = await enrolledUser(ctx, 2)
  const challenge = await startLogin(ctx, user)
  const code = ctx.twilio.lastCodeFor(user.number)
  const verification = await ctx.request('POST', `/v1/users/${user.id}/phones`, { phoneNumber: phoneNumber(3) })
  const verificationCode = ctx.twilio.lastCodeFor(phoneNumber(3))
  t.equal((await lock(user.id)).statusCode, 200)
  const verify = await ctx.request('POST', `/v1/logins/${challenge.challengeId}/verify`, { code })
  t.ok([410, 423].includes(verify.statusCode), `verify after lock: ${verify.statusCode} ${verify.body}`)
  t.ok(['challenge_closed', 'account_locked'].includes(verify.json().code))
  const send = await ctx.request('POST', `/v1/logins/${challenge.challengeId}/send`, { channel: 'sms' })
  t.ok([410, 423].includes(send.statusCode), `send after lock: ${send.statusCode}`)
  const recovery = await ctx.request('POST', `/v1/logins/${challenge.challengeId}/recovery`, { recoveryCode: user.recoveryCode })
  t.ok([410, 423].includes(recovery.statusCode), `recovery after lock: ${recovery.statusCode}`)
  const rows = await ctx.db.prisma.otpChallenge.findMany({ where: { userId: user.id, completedAt: null } })
  t.equal(rows.length, 2, 'the login and the phone verification')
  t.ok(rows.every((row) => row.closedAt !== null && row.closedReason === 'account_locked'), 'every open challenge was closed')
  assertProblem(t, await ctx.request('POST', `/v1/users/${user.id}/phones/verify`, { verificationId: verification.json().verificationId, code: verificationCode }), 'verification_expired')
  t.equal((await ctx.request('GET', `/v1/users/${user.id}/phones`)).json().items.length, 1, 'no phone was added')
  t.equal(await ctx.db.prisma.recoveryCode.count({ where: { userId: user.id } }), 1, 'the recovery code was not consumed')
})

t.test('unlock answers 200 with the User unlocked and its counters cleared; login works again', async (t) => {
  const user = await enrolledUser(ctx, 4)
  const challenge = await startLogin(ctx, user)
  // three wrong recovery codes lock the account (contract section 3)
  for (let i = 0; i < 3; i++) await ctx.request('POST', `/v1/logins/${challenge.challengeId}/recovery`, { recoveryCode: 'AAAA-BBBB-CCCC-DDDD-EEEE' })
  const locked = await ctx.request('GET', `/v1/users/${user.id}`)
  t.equal(locked.json().locked, true, 'locked by wrong recovery codes')
  t.type(locked.json().lockedReason, 'string')
  const response = await unlock(user.id)
  t.equal(response.statusCode, 200, response.body)
  t.equal(response.json().locked, false)
  t.equal(response.json().lockedReason, null)
  const row = await ctx.db.prisma.user.findUniqueOrThrow({ where: { id: user.id } })
  t.same([row.lockedAt, row.recoveryFailures, row.codeFailures, row.codeLockedUntil], [null, 0, 0, null], 'counters cleared')
  const again = await startLogin(ctx, user)
  t.equal(again.status, 'challenge_required')
  const wrongOnce = await ctx.request('POST', `/v1/logins/${again.challengeId}/recovery`, { recoveryCode: 'AAAA-BBBB-CCCC-DDDD-EEEE' })
  t.equal(wrongOnce.json().attemptsRemaining, 2, 'the recovery count starts afresh')
  const verified = await ctx.request('POST', `/v1/logins/${again.challengeId}/verify`, { code: ctx.twilio.lastCodeFor(user.number) })
  t.equal(verified.statusCode, 200, verified.body)
})

t.test('unlock also clears the wrong-password throttle', async (t) => {
  const user = await enrolledUser(ctx, 5)
  let throttled = null
  for (let i = 0; i < 8 && throttled === null; i++) {
    const response = await login(user.email, `Wrong-Password-${i}`)
    if (response.statusCode === 429) throttled = response
  }
  t.ok(throttled !== null, 'wrong passwords throttle the account')
  if (throttled !== null) assertProblem(t, throttled, 'too_many_attempts')
  t.equal((await login(user.email)).statusCode, 429, 'even the right password waits')
  t.equal((await unlock(user.id, 'user called, verified identity')).statusCode, 200)
  const response = await login(user.email)
  t.equal(response.statusCode, 200, response.body)
  t.equal(response.json().status, 'challenge_required')
})

t.test('unlock clears the per-account wrong-code pause', async (t) => {
  const user = await enrolledUser(ctx, 6)
  const challenge = await startLogin(ctx, user)
  await ctx.db.prisma.user.update({ where: { id: user.id }, data: { codeFailures: 9, codeLockedUntil: new Date(Date.now() + 15 * 60_000) } })
  assertProblem(t, await ctx.request('POST', `/v1/logins/${challenge.challengeId}/verify`, { code: ctx.twilio.lastCodeFor(user.number) }), 'too_many_attempts')
  t.equal((await unlock(user.id)).statusCode, 200)
  const verified = await ctx.request('POST', `/v1/logins/${challenge.challengeId}/verify`, { code: ctx.twilio.lastCodeFor(user.number) })
  t.equal(verified.statusCode, 200, verified.body)
})

t.test('DELETE two-factor: 204; phones and recovery code gone; the previous primary is told; login now asks for enrolment', async (t) => {
  const user = await enrolledUser(ctx, 7)
  await enrolPhone(ctx, user.id, phoneNumber(8))
  const open = await startLogin(ctx, user)
  const openCode = ctx.twilio.lastCodeFor(user.number)
  const before = ctx.twilio.messagesTo(user.number).length
  const response = await ctx.request('DELETE', `/v1/users/${user.id}/two-factor`, { reason: 'lost both phones, identity checked' })
  t.equal(response.statusCode, 204, response.body)
  t.equal(response.body, '')
  t.equal(await ctx.db.prisma.phone.count({ where: { userId: user.id } }), 0)
  t.equal(await ctx.db.prisma.recoveryCode.count({ where: { userId: user.id } }), 0)
  const notices = ctx.twilio.messagesTo(user.number).slice(before)
  t.equal(notices.length, 1, 'one notice to the previous primary')
  t.match(notices[0], /reset/)
  t.match(notices[0], SUPPORT)
  t.notMatch(notices[0], SIX_DIGITS, 'no code in the notice')
  t.equal(ctx.twilio.messagesTo(phoneNumber(8)).length, 1, 'the backup phone only ever got its code')
  const view = (await ctx.request('GET', `/v1/users/${user.id}`)).json()
  t.same(view.twoFactor, { enabled: false, required: true, enrollmentDueBy: null, methods: [], phones: [], totp: null, recoveryCode: null })
  const next = await login(user.email)
  t.same(next.json(), { status: 'enrollment_required', userId: user.id })
  assertProblem(t, await ctx.request('POST', `/v1/logins/${open.challengeId}/verify`, { code: openCode }), 'challenge_closed')
  assertProblem(t, await ctx.request('POST', `/v1/logins/${open.challengeId}/recovery`, { recoveryCode: user.recoveryCode }), 'challenge_closed')
  await enrolPhone(ctx, user.id, phoneNumber(9))
  t.equal((await login(user.email)).json().status, 'challenge_required', 'the user can enrol again')
})

t.test('DELETE two-factor on a user without any is 204 and notifies no one', async (t) => {
  const user = await createUser(ctx)
  const sent = ctx.twilio.requests.length
  t.equal((await ctx.request('DELETE', `/v1/users/${user.id}/two-factor`, { reason: 'cleanup' })).statusCode, 204)
  t.equal(ctx.twilio.requests.length, sent)
})

t.test('support actions need a reason and a real user', async (t) => {
  const user = await createUser(ctx)
  for (const [method, url] of [['POST', 'lock'], ['POST', 'unlock'], ['DELETE', 'two-factor']] as const) {
    assertProblem(t, await ctx.request(method, `/v1/users/${user.id}/${url}`, {}), 'invalid_request', /reason/)
    assertProblem(t, await ctx.request(method, `/v1/users/${user.id}/${url}`, { reason: '' }), 'invalid_request', /reason/)
    assertProblem(t, await ctx.request(method, `/v1/users/${user.id}/${url}`, { reason: 'x'.repeat(501) }), 'invalid_request', /reason/)
    assertProblem(t, await ctx.request(method, `/v1/users/00000000-0000-0000-0000-000000000000/${url}`, { reason: 'because' }), 'not_found')
  }
  assertProblem(t, await ctx.request('GET', '/v1/users/00000000-0000-0000-0000-000000000000/events'), 'not_found')
  t.equal((await ctx.request('GET', `/v1/users/${user.id}`)).json().locked, false, 'nothing happened')
})

t.test('support routes need scope admin: 403 with a users key, 200 with an admin key', async (t) => {
  const user = await createUser(ctx)
  const { key: usersKey } = await ctx.app.apiKeys.create('backend-users-only', ['users', 'login'])
  const { key: adminKey } = await ctx.app.apiKeys.create('support-desk-admin', ['admin'])
  const routes = [
    ['POST', `/v1/users/${user.id}/lock`, { reason: 'r' }],
    ['POST', `/v1/users/${user.id}/unlock`, { reason: 'r' }],
    ['DELETE', `/v1/users/${user.id}/two-factor`, { reason: 'r' }],
    ['GET', `/v1/users/${user.id}/events`, undefined]
  ] as const
  for (const [method, url, body] of routes) {
    assertProblem(t, await ctx.request(method, url, body, usersKey), 'forbidden', /admin/)
  }
  t.equal((await ctx.request('GET', `/v1/users/${user.id}`)).json().locked, false, 'the 403 lock did nothing')
  for (const [method, url, body] of routes) {
    t.ok([200, 204].includes((await ctx.request(method, url, body, adminKey)).statusCode), `${method} ${url} with admin`)
  }
  assertProblem(t, await ctx.request('GET', `/v1/users/${user.id}`, undefined, adminKey), 'forbidden', /users/)
})

t.test('events: {id, type, createdAt, ip, userAgent, details}, newest first, with the caller\'s address and the reported one', async (t) => {
  const user = await createUser(ctx)
  await ctx.app.inject({ method: 'POST', url: '/v1/logins', headers: { authorization: `Bearer ${ctx.config.BOOTSTRAP_API_KEY as string}` }, payload: { email: user.email, password: 'Wrong-Password-1', context: { ip: '203.0.113.9', userAgent: 'StudioProApp/5.1 (iPhone)' } } })
  await ctx.app.inject({ method: 'POST', url: `/v1/users/${user.id}/lock`, headers: { authorization: `Bearer ${ctx.config.BOOTSTRAP_API_KEY as string}`, 'user-agent': 'support-console/1.0' }, payload: { reason: 'suspicious' } })
  const events = await eventsOf(user.id)
  t.same(events.map((e) => e.type), ['account.locked', 'login.failed', 'user.created'])
  for (const event of events) {
    t.same(Object.keys(event).sort(), ['createdAt', 'details', 'id', 'ip', 'type', 'userAgent'])
    t.match(event.createdAt, ISO)
  }
  const times = events.map((e) => Date.parse(e.createdAt))
  t.same(times, [...times].sort((a, b) => b - a), 'newest first')
  const [locked, failed] = events
  t.same([failed?.ip, failed?.userAgent], ['203.0.113.9', 'StudioProApp/5.1 (iPhone)'], 'the end user\'s address as the backend reports it')
  t.equal(locked?.userAgent, 'support-console/1.0')
  t.equal(locked?.ip, '127.0.0.1')
  t.equal(locked?.details.reason, 'suspicious', 'the reason is recorded')
})

t.test('events page with limit and before; bad limits and unknown cursors are 400', async (t) => {
  const user = await createUser(ctx)
  for (let i = 0; i < 6; i++) await ctx.request('PATCH', `/v1/users/${user.id}`, { role: `role${i}` })
  const all = await eventsOf(user.id)
  t.equal(all.length, 7)
  const first = await eventsOf(user.id, '?limit=3')
  t.same(first.map((e) => e.id), all.slice(0, 3).map((e) => e.id))
  const second = await eventsOf(user.id, `?limit=3&before=${first[2]?.id ?? ''}`)
  t.same(second.map((e) => e.id), all.slice(3, 6).map((e) => e.id))
  const third = await eventsOf(user.id, `?limit=3&before=${second[2]?.id ?? ''}`)
  t.same(third.map((e) => e.id), all.slice(6).map((e) => e.id))
  t.same(third.map((e) => e.type), ['user.created'])
  t.same(await eventsOf(user.id, `?before=${third[0]?.id ?? ''}`), [], 'nothing before the first event')
  t.equal((await eventsOf(user.id, '?limit=200')).length, 7)
  for (const limit of ['0', 'abc', '-1', '201', '1.5', '']) {
    assertProblem(t, await ctx.request('GET', `/v1/users/${user.id}/events?limit=${limit}`), 'invalid_request', /limit/)
  }
  const other = await createUser(ctx)
  assertProblem(t, await ctx.request('GET', `/v1/users/${other.id}/events?before=${all[0]?.id ?? ''}`), 'invalid_request', /before/)
  assertProblem(t, await ctx.request('GET', `/v1/users/${user.id}/events?before=no-such-event`), 'invalid_request', /before/)
})

t.test('every action writes its event, and no event holds a code, password or full number', async (t) => {
  const password = 'Event-Log-Plie-2024!'
  const user = await createUser(ctx, { password })
  const first = await enrolPhone(ctx, user.id, phoneNumber(20), 'sms', 'Mobile')
  const second = await enrolPhone(ctx, user.id, phoneNumber(21))
  await ctx.request('PATCH', `/v1/users/${user.id}/phones/${second.phone.id}`, { primary: true })
  await ctx.request('DELETE', `/v1/users/${user.id}/phones/${first.phone.id}`)
  const regenerated = (await ctx.request('POST', `/v1/users/${user.id}/recovery-code`)).json().recoveryCode as string
  await ctx.request('POST', '/v1/logins', { email: user.email, password: 'Wrong-Password-9' })
  const challenge = await startLogin(ctx, user, password)
  const code = ctx.twilio.lastCodeFor(phoneNumber(21)) as string
  await ctx.request('POST', `/v1/logins/${challenge.challengeId}/verify`, { code: wrong(code) })
  t.equal((await ctx.request('POST', `/v1/logins/${challenge.challengeId}/verify`, { code })).statusCode, 200)
  const second2 = await startLogin(ctx, user, password)
  await ctx.request('POST', `/v1/logins/${second2.challengeId}/recovery`, { recoveryCode: 'AAAA-BBBB-CCCC-DDDD-EEEE' })
  const recovered = await ctx.request('POST', `/v1/logins/${second2.challengeId}/recovery`, { recoveryCode: regenerated })
  t.equal(recovered.statusCode, 200, recovered.body)
  const newPassword = 'Event-Log-Plie-2025!'
  await ctx.request('PUT', `/v1/users/${user.id}/password`, { password: newPassword })
  await lock(user.id)
  await unlock(user.id)
  await ctx.request('DELETE', `/v1/users/${user.id}/two-factor`, { reason: 'test reset' })

  const events = await eventsOf(user.id, '?limit=200')
  const types = new Set(events.map((e) => e.type))
  for (const type of ['user.created', 'password.changed', 'login.succeeded', 'login.failed', 'challenge.sent', 'code.failed',
    'recovery.used', 'recovery.failed', 'account.locked', 'account.unlocked', 'phone.verification_started', 'phone.verified',
    'phone.updated', 'phone.removed', 'recovery_code.regenerated', 'two_factor.reset', 'notice.sent']) {
    t.ok(types.has(type), `${type} was recorded`)
  }
  t.equal(events[0]?.type, 'notice.sent', 'the reset notice is the newest')
  t.equal(events.find((e) => e.type === 'two_factor.reset')?.details.reason, 'test reset')

  // Ids and timestamps are cut out first: a random UUID can hold a run of six digits that
  // happens to equal a code (it did, once), which would be no leak.
  const dump = JSON.stringify(events)
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '')
    .replace(/\d{4}-\d{2}-\d{2}T[\d:.]+Z/g, '')
  const secrets = [password, newPassword, first.recoveryCode, second.recoveryCode, regenerated, recovered.json().recoveryCode as string,
    ...ctx.twilio.requests.flatMap((r) => [r.body ?? '', r.twiml ?? ''].flatMap((text) => text.match(SIX_DIGITS) ?? []))]
  for (const secret of secrets) {
    t.notMatch(dump, secret, 'no secret in the events')
    t.notMatch(dump, secret.replace(/-/g, ''), 'not even without dashes')
  }
  for (const number of [phoneNumber(20), phoneNumber(21)]) {
    t.notMatch(dump, number.slice(2), 'no full number')
    t.notMatch(dump, number.slice(-7), 'not even the local part')
  }
  t.notMatch(dump, SIX_DIGITS, 'no six-digit run outside ids and dates (codes, numbers)')
})
