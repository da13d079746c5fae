// Contract sections 3 and 4: a remembered device skips the second factor for its own user only,
// until it expires or is revoked; the token is stored only as its SHA-256.
import t from 'tap'
import { createHash } from 'node:crypto'
import { assertProblem } from '../helpers/problem.js'
import { buildTestApp, enrolledUser, startLogin, STRONG_PASSWORD, type TestApp } from '../helpers/app.js'

const BROWSER = 'Mozilla/5.0 (Macintosh) Safari/17.1'

/** Logs in with the code and asks to remember the browser; returns the verify answer. */
async function loginAndRemember (ctx: TestApp, user: { email: string, number: string }) {
  const login = await startLogin(ctx, user)
  const code = ctx.twilio.lastCodeFor(user.number)
  const verified = await ctx.request('POST', `/v1/logins/${login.challengeId}/verify`, { code, rememberDevice: true, context: { userAgent: BROWSER } })
  if (verified.statusCode !== 200) throw new Error(`verify: ${verified.statusCode} ${verified.body}`)
  return verified.json() as { status: string, userId: string, amr: string[], deviceToken?: string, deviceTokenExpiresAt?: string }
}

async function loginWithToken (ctx: TestApp, user: { email: string }, deviceToken: string) {
  const response = await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD, deviceToken })
  if (response.statusCode !== 200) throw new Error(`login: ${response.statusCode} ${response.body}`)
  return response.json()
}

t.test('a remembered device skips the second factor, is stored hashed, and records when it was used', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 1)
  const before = Date.now()
  const remembered = await loginAndRemember(ctx, user)
  t.same(remembered.amr, ['pwd', 'sms'])
  const token = remembered.deviceToken as string
  t.match(token, /^[A-Za-z0-9_-]{43,}$/, 'base64url, at least 256 bits')
  const expiresAt = Date.parse(remembered.deviceTokenExpiresAt as string)
  t.ok(Math.abs(expiresAt - (before + 30 * 86_400_000)) < 60_000, 'expires after the default 30 days')

  const rows = await ctx.db.prisma.rememberedDevice.findMany({ where: { userId: user.id } })
  t.equal(rows.length, 1)
  t.equal(rows[0]?.tokenHash, createHash('sha256').update(token).digest('hex'), 'the table holds the SHA-256 of the token')
  const dump = JSON.stringify(await ctx.db.prisma.$queryRaw`SELECT * FROM remembered_devices`)
  t.notOk(dump.includes(token), 'the token itself is nowhere in the table')
  t.equal(rows[0]?.userAgent, BROWSER)
  t.equal(rows[0]?.lastUsedAt, null)

  ctx.twilio.reset()
  const again = await loginWithToken(ctx, user, token)
  t.same(again, { status: 'authenticated', userId: user.id, amr: ['pwd', 'device'] })
  t.equal(ctx.twilio.requests.length, 0, 'no code was sent')
  const used = await ctx.db.prisma.rememberedDevice.findFirstOrThrow({ where: { userId: user.id } })
  t.ok(used.lastUsedAt !== null && used.lastUsedAt.getTime() >= before, 'lastUsedAt is updated')

  const wrongPassword = await ctx.request('POST', '/v1/logins', { email: user.email, password: 'not-the-password-1', deviceToken: token })
  assertProblem(t, wrongPassword, 'invalid_credentials')

  const events = (await ctx.request('GET', `/v1/users/${user.id}/events?limit=50`)).json().items as Array<{ type: string }>
  t.ok(events.some((e) => e.type === 'device.remembered'), 'the event log records the remembered device')
})

t.test("a token is bound to its user: someone else's token, a revoked, an expired or a made-up one gives the normal challenge", async (t) => {
  const ctx = await buildTestApp(t)
  const ana = await enrolledUser(ctx, 2)
  const ben = await enrolledUser(ctx, 3)
  const anaToken = (await loginAndRemember(ctx, ana)).deviceToken as string

  const crossed = await loginWithToken(ctx, ben, anaToken)
  t.equal(crossed.status, 'challenge_required', "Ana's token does not skip Ben's second factor")
  t.ok(crossed.delivery !== null, "and Ben's code is sent as usual")

  for (const garbage of ['x', 'A'.repeat(256), anaToken.slice(0, -1), `${anaToken}A`, '../../etc/passwd', '\u00ff\u2603 token']) {
    const answer = await loginWithToken(ctx, ana, garbage)
    t.equal(answer.status, 'challenge_required', `made-up token ${JSON.stringify(garbage.slice(0, 12))}: a challenge, no error`)
  }

  await ctx.db.prisma.rememberedDevice.updateMany({ where: { userId: ana.id }, data: { expiresAt: new Date(Date.now() - 1000) } })
  t.equal((await loginWithToken(ctx, ana, anaToken)).status, 'challenge_required', 'an expired token')
  const listed = await ctx.request('GET', `/v1/users/${ana.id}/devices`)
  t.same(listed.json().items, [], 'and it is no longer listed')

  const fresh = (await loginAndRemember(ctx, ana)).deviceToken as string
  await ctx.db.prisma.rememberedDevice.updateMany({ where: { userId: ana.id }, data: { revokedAt: new Date() } })
  t.equal((await loginWithToken(ctx, ana, fresh)).status, 'challenge_required', 'a revoked token')
})

t.test('rememberDevice is ignored when the policy sets rememberDeviceDays to 0, and a shortened policy applies to old tokens', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 4)
  await ctx.request('PATCH', `/v1/users/${user.id}`, { organizationId: 'studio-no-remember' })
  const token = (await loginAndRemember(ctx, user)).deviceToken as string
  t.ok(token, 'a token under the default policy')

  const policy = { requiredRoles: ['*'], allowedMethods: ['sms', 'voice', 'totp'], rememberDeviceDays: 0, enrollmentGraceDays: 0, smsDailyLimit: 1000 }
  t.equal((await ctx.request('PUT', '/v1/organizations/studio-no-remember/policy', policy)).statusCode, 200)
  const off = await loginAndRemember(ctx, user)
  t.equal(off.status, 'authenticated')
  t.notOk('deviceToken' in off, 'no token is issued')
  t.notOk('deviceTokenExpiresAt' in off)
  t.equal((await loginWithToken(ctx, user, token)).status, 'challenge_required', 'and the earlier token no longer skips the code')

  await ctx.request('PUT', '/v1/organizations/studio-no-remember/policy', { ...policy, rememberDeviceDays: 7 })
  const weekToken = (await loginAndRemember(ctx, user)).deviceToken as string
  t.equal((await loginWithToken(ctx, user, weekToken)).status, 'authenticated')
  await ctx.db.prisma.rememberedDevice.updateMany({ where: { userId: user.id }, data: { createdAt: new Date(Date.now() - 8 * 86_400_000) } })
  t.equal((await loginWithToken(ctx, user, weekToken)).status, 'challenge_required', 'a token older than the policy allows no longer works')
})

t.test('listing and forgetting devices', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 5)
  const first = (await loginAndRemember(ctx, user)).deviceToken as string
  const second = (await loginAndRemember(ctx, user)).deviceToken as string

  const listed = await ctx.request('GET', `/v1/users/${user.id}/devices`)
  t.equal(listed.statusCode, 200)
  const items = listed.json().items as Array<Record<string, unknown>>
  t.equal(items.length, 2)
  t.same(Object.keys(items[0] ?? {}).sort(), ['createdAt', 'expiresAt', 'id', 'lastUsedAt', 'userAgent'])
  t.notOk(listed.body.includes(first) || listed.body.includes(second), 'tokens are never listed')
  t.notOk(listed.body.includes(createHash('sha256').update(first).digest('hex')), 'nor their hashes')

  const device = await ctx.db.prisma.rememberedDevice.findFirstOrThrow({ where: { tokenHash: createHash('sha256').update(first).digest('hex') } })
  const removed = await ctx.request('DELETE', `/v1/users/${user.id}/devices/${device.id}`)
  t.equal(removed.statusCode, 204)
  t.equal((await loginWithToken(ctx, user, first)).status, 'challenge_required', 'the forgotten device is asked again')
  t.equal((await loginWithToken(ctx, user, second)).status, 'authenticated', 'the other one still works')
  assertProblem(t, await ctx.request('DELETE', `/v1/users/${user.id}/devices/${device.id}`), 'not_found')
  assertProblem(t, await ctx.request('DELETE', `/v1/users/${user.id}/devices/no-such-device`), 'not_found')

  const other = await enrolledUser(ctx, 6)
  const otherDevice = await ctx.db.prisma.rememberedDevice.findFirstOrThrow({ where: { userId: user.id, revokedAt: null } })
  assertProblem(t, await ctx.request('DELETE', `/v1/users/${other.id}/devices/${otherDevice.id}`), 'not_found', /no device/)
  t.equal((await loginWithToken(ctx, user, second)).status, 'authenticated', "another user's id cannot revoke it")

  t.equal((await ctx.request('DELETE', `/v1/users/${user.id}/devices`)).statusCode, 204)
  t.equal((await loginWithToken(ctx, user, second)).status, 'challenge_required', 'forget all: every device is asked again')
  t.same((await ctx.request('GET', `/v1/users/${user.id}/devices`)).json().items, [])
  t.equal((await ctx.request('DELETE', `/v1/users/${user.id}/devices`)).statusCode, 204, 'forgetting none is fine')

  assertProblem(t, await ctx.request('GET', '/v1/users/no-such-user/devices'), 'not_found')
  assertProblem(t, await ctx.request('DELETE', '/v1/users/no-such-user/devices'), 'not_found')
  const types = (await ctx.request('GET', `/v1/users/${user.id}/events?limit=100`)).json().items.map((e: { type: string }) => e.type)
  t.ok(types.filter((type: string) => type === 'device.revoked').length >= 2, 'revocations are in the event log')
})

t.test('password change, lock, unlock and two-factor reset revoke every device', async (t) => {
  const ctx = await buildTestApp(t)
  const cases: Array<[string, (userId: string) => Promise<void>]> = [
    ['password change', async (id) => { t.equal((await ctx.request('PUT', `/v1/users/${id}/password`, { password: 'Arabesque-Plie-2024!' })).statusCode, 204) }],
    ['lock', async (id) => {
      t.equal((await ctx.request('POST', `/v1/users/${id}/lock`, { reason: 'lost laptop' })).statusCode, 200)
      t.equal((await ctx.request('POST', `/v1/users/${id}/unlock`, { reason: 'found it' })).statusCode, 200)
    }],
    ['unlock', async (id) => { t.equal((await ctx.request('POST', `/v1/users/${id}/unlock`, { reason: 'support call' })).statusCode, 200) }],
    ['two-factor reset', async (id) => { t.equal((await ctx.request('DELETE', `/v1/users/${id}/two-factor`, { reason: 'new phone' })).statusCode, 204) }]
  ]
  let n = 10
  for (const [name, action] of cases) {
    const user = await enrolledUser(ctx, n++)
    const token = (await loginAndRemember(ctx, user)).deviceToken as string
    await action(user.id)
    const active = await ctx.db.prisma.rememberedDevice.count({ where: { userId: user.id, revokedAt: null } })
    t.equal(active, 0, `${name}: no active device left`)
    const password = name === 'password change' ? 'Arabesque-Plie-2024!' : STRONG_PASSWORD
    const answer = (await ctx.request('POST', '/v1/logins', { email: user.email, password, deviceToken: token })).json()
    t.not(answer.amr?.includes('device'), true, `${name}: the token no longer skips the second factor (${answer.status})`)
  }
})

t.test('three wrong recovery codes lock the account and revoke its devices', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 20)
  await loginAndRemember(ctx, user)
  const login = await startLogin(ctx, user)
  for (let i = 0; i < 3; i++) {
    await ctx.request('POST', `/v1/logins/${login.challengeId}/recovery`, { recoveryCode: 'AAAA-BBBB-CCCC-DDDD-EEEE' })
  }
  t.equal((await ctx.request('GET', `/v1/users/${user.id}`)).json().locked, true)
  t.equal(await ctx.db.prisma.rememberedDevice.count({ where: { userId: user.id, revokedAt: null } }), 0)
})
