// Contract section 1: users (scope `users`).
import t from 'tap'
import { buildTestApp, createUser, email, enrolPhone, phoneNumber, STRONG_PASSWORD } from '../helpers/app.js'
import { assertProblem } from '../helpers/problem.js'

const ctx = await buildTestApp(t)
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z$/

async function login (address: string, password: string) {
  return await ctx.request('POST', '/v1/logins', { email: address, password })
}

t.test('create answers 201 with exactly the contract User, role staff by default', async (t) => {
  const address = email('create')
  const before = Date.now()
  const response = await ctx.request('POST', '/v1/users', { email: address, password: STRONG_PASSWORD })
  t.equal(response.statusCode, 201, response.body)
  t.match(response.headers['content-type'], /^application\/json/)
  const user = response.json()
  t.same(Object.keys(user).sort(), ['createdAt', 'email', 'id', 'locked', 'lockedReason', 'organizationId', 'role', 'twoFactor'])
  t.same(Object.keys(user.twoFactor).sort(), ['enabled', 'enrollmentDueBy', 'methods', 'phones', 'recoveryCode', 'required', 'totp'])
  t.type(user.id, 'string')
  t.ok(user.id.length > 0)
  t.equal(user.email, address)
  t.equal(user.role, 'staff')
  t.equal(user.organizationId, null)
  t.match(user.createdAt, ISO)
  t.ok(Math.abs(Date.parse(user.createdAt) - before) < 60_000, 'createdAt is now')
  t.equal(user.locked, false)
  t.equal(user.lockedReason, null)
  t.same(user.twoFactor, { enabled: false, required: true, enrollmentDueBy: null, methods: [], phones: [], totp: null, recoveryCode: null })
})

t.test('role and organizationId are taken as given', async (t) => {
  const response = await ctx.request('POST', '/v1/users', { email: email(), password: STRONG_PASSWORD, role: 'owner', organizationId: 'studio-42' })
  t.equal(response.statusCode, 201, response.body)
  t.equal(response.json().role, 'owner')
  t.equal(response.json().organizationId, 'studio-42')
})

t.test('email is trimmed and lower-cased; a duplicate in any case is 409 email_taken', async (t) => {
  const response = await ctx.request('POST', '/v1/users', { email: '  Ana.Pavlova@Studio.Example  ', password: STRONG_PASSWORD })
  t.equal(response.statusCode, 201, response.body)
  t.equal(response.json().email, 'ana.pavlova@studio.example')
  for (const duplicate of ['ana.pavlova@studio.example', 'ANA.PAVLOVA@STUDIO.EXAMPLE', ' Ana.Pavlova@studio.example', 'ana.pavlova@Studio.Example\t']) {
    assertProblem(t, await ctx.request('POST', '/v1/users', { email: duplicate, password: STRONG_PASSWORD }), 'email_taken')
  }
  t.equal(await ctx.db.prisma.user.count({ where: { email: { equals: 'ana.pavlova@studio.example', mode: 'insensitive' } } }), 1)
})

t.test('simultaneous creates of one email: one 201, the rest 409', async (t) => {
  const address = email('race')
  const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => ctx.request('POST', '/v1/users', { email: i % 2 === 0 ? address : address.toUpperCase(), password: STRONG_PASSWORD })))
  t.same(answers.map((r) => r.statusCode).sort(), [201, 409, 409, 409, 409, 409, 409, 409])
})

t.test('weak passwords are 422 weak_password and create nothing', async (t) => {
  const address = email('weak')
  const cases: Array<[string, RegExp]> = [
    ['Short-7', /8 to 256/],
    ['', /8 to 256/],
    ['x'.repeat(257), /8 to 256/],
    ['password1', /common/],
    ['Password1', /common/],
    ['qwertyuiop', /common/],
    [address, /email/],
    [address.toUpperCase(), /email/]
  ]
  for (const [password, detail] of cases) {
    const response = await ctx.request('POST', '/v1/users', { email: address, password })
    const body = assertProblem(t, response, 'weak_password', detail)
    if (password.length > 0) t.notMatch(response.body, password, 'the password is not echoed')
    t.ok(body)
  }
  t.equal(await ctx.db.prisma.user.count({ where: { email: address } }), 0)
})

t.test('8 and 256 characters are fine', async (t) => {
  t.equal((await ctx.request('POST', '/v1/users', { email: email(), password: 'Jt8#kq2!' })).statusCode, 201, '8')
  const long = 'Grand-Battement-'.repeat(16)
  t.equal(long.length, 256)
  const address = email('long')
  t.equal((await ctx.request('POST', '/v1/users', { email: address, password: long })).statusCode, 201, '256')
  t.equal((await login(address, long)).json().status, 'enrollment_required', 'and it logs in')
})

t.test('the password is stored only as an argon2id hash and never answered', async (t) => {
  const address = email('hash')
  const password = 'Fouette-Turns-32x!'
  const created = await ctx.request('POST', '/v1/users', { email: address, password })
  t.notMatch(created.body, password)
  t.notMatch(created.body, /argon2|passwordHash/i)
  const rows = await ctx.db.prisma.$queryRaw<Array<Record<string, unknown>>>`SELECT * FROM users WHERE email = ${address}`
  const row = rows[0] as Record<string, unknown>
  t.match(row.password_hash, /^\$argon2id\$v=19\$/)
  t.notMatch(JSON.stringify(row), password, 'no column holds the password')
  const id = created.json().id as string
  for (const response of [await ctx.request('GET', `/v1/users/${id}`), await ctx.request('GET', `/v1/users?email=${encodeURIComponent(address)}`), await ctx.request('PATCH', `/v1/users/${id}`, { role: 'teacher' })]) {
    t.notMatch(response.body, password)
    t.notMatch(response.body, /argon2/)
  }
})

t.test('GET by id answers the User; an unknown id is 404 not_found', async (t) => {
  const user = await createUser(ctx)
  const response = await ctx.request('GET', `/v1/users/${user.id}`)
  t.equal(response.statusCode, 200)
  t.equal(response.json().id, user.id)
  t.equal(response.json().email, user.email)
  assertProblem(t, await ctx.request('GET', '/v1/users/00000000-0000-0000-0000-000000000000'), 'not_found')
  assertProblem(t, await ctx.request('GET', '/v1/users/no-such-user'), 'not_found')
})

t.test('GET ?email= finds the user in any case and spacing; an unknown email gives no items', async (t) => {
  const user = await createUser(ctx)
  for (const query of [user.email, user.email.toUpperCase(), ` ${user.email} `]) {
    const response = await ctx.request('GET', `/v1/users?email=${encodeURIComponent(query)}`)
    t.equal(response.statusCode, 200, response.body)
    t.same(response.json().items.map((u: { id: string }) => u.id), [user.id], JSON.stringify(query))
  }
  const none = await ctx.request('GET', `/v1/users?email=${encodeURIComponent('nobody@studio.example')}`)
  t.equal(none.statusCode, 200)
  t.same(none.json(), { items: [] })
  assertProblem(t, await ctx.request('GET', '/v1/users'), 'invalid_request', /email/)
})

t.test('the User shows the verified phones and the recovery code date', async (t) => {
  const user = await createUser(ctx)
  const enrolled = await enrolPhone(ctx, user.id, phoneNumber(11), 'sms', 'Mobile')
  const view = (await ctx.request('GET', `/v1/users/${user.id}`)).json()
  t.equal(view.twoFactor.enabled, true)
  t.same(view.twoFactor.methods, ['sms', 'voice', 'recovery'])
  t.equal(view.twoFactor.phones.length, 1)
  const phone = view.twoFactor.phones[0]
  t.same(phone, { id: enrolled.phone.id, masked: '+1 ••• ••• ••11', label: 'Mobile', channel: 'sms', primary: true, verifiedAt: phone.verifiedAt })
  t.match(phone.verifiedAt, ISO)
  t.match(view.twoFactor.recoveryCode.createdAt, ISO)
  t.notMatch(JSON.stringify(view), enrolled.recoveryCode)
  t.notMatch(JSON.stringify(view), phoneNumber(11).slice(2))
})

t.test('PATCH changes email, role and organizationId', async (t) => {
  const user = await createUser(ctx)
  const address = email('renamed')
  const response = await ctx.request('PATCH', `/v1/users/${user.id}`, { email: ` ${address.toUpperCase()} `, role: 'teacher', organizationId: 'studio-7' })
  t.equal(response.statusCode, 200, response.body)
  t.same([response.json().email, response.json().role, response.json().organizationId], [address, 'teacher', 'studio-7'])
  const cleared = await ctx.request('PATCH', `/v1/users/${user.id}`, { organizationId: null })
  t.equal(cleared.json().organizationId, null)
  t.equal(cleared.json().role, 'teacher', 'untouched fields stay')
  t.equal(cleared.json().email, address)
  const same = await ctx.request('PATCH', `/v1/users/${user.id}`, { email: address.toUpperCase() })
  t.equal(same.statusCode, 200, 'its own email in another case is no conflict')
  t.equal((await login(address, STRONG_PASSWORD)).statusCode, 200, 'the new email logs in')
  t.equal((await login(user.email, STRONG_PASSWORD)).statusCode, 401, 'the old one no longer does')
})

t.test('PATCH to a taken email is 409 email_taken and changes nothing; unknown user 404', async (t) => {
  const a = await createUser(ctx)
  const b = await createUser(ctx)
  assertProblem(t, await ctx.request('PATCH', `/v1/users/${b.id}`, { email: a.email.toUpperCase(), role: 'owner' }), 'email_taken')
  const after = (await ctx.request('GET', `/v1/users/${b.id}`)).json()
  t.same([after.email, after.role], [b.email, 'staff'], 'nothing changed, the role neither')
  assertProblem(t, await ctx.request('PATCH', '/v1/users/00000000-0000-0000-0000-000000000000', { role: 'owner' }), 'not_found')
  assertProblem(t, await ctx.request('PATCH', `/v1/users/${b.id}`, { password: STRONG_PASSWORD }), 'invalid_request', /password/)
})

t.test('two users racing to take one email: one 200, one 409', async (t) => {
  const a = await createUser(ctx)
  const b = await createUser(ctx)
  const target = email('contested')
  const answers = await Promise.all([ctx.request('PATCH', `/v1/users/${a.id}`, { email: target }), ctx.request('PATCH', `/v1/users/${b.id}`, { email: target.toUpperCase() })])
  t.same(answers.map((r) => r.statusCode).sort(), [200, 409])
  t.equal(await ctx.db.prisma.user.count({ where: { email: target } }), 1)
})

t.test('PUT password: 204, then the new password logs in and the old one does not', async (t) => {
  const user = await createUser(ctx)
  const password = 'New-Pas-de-Deux-2024'
  const response = await ctx.request('PUT', `/v1/users/${user.id}/password`, { password })
  t.equal(response.statusCode, 204)
  t.equal(response.body, '')
  const fresh = await login(user.email, password)
  t.equal(fresh.statusCode, 200, fresh.body)
  t.equal(fresh.json().status, 'enrollment_required')
  assertProblem(t, await login(user.email, STRONG_PASSWORD), 'invalid_credentials')
})

t.test('PUT password refuses weak ones (422) and unknown users (404)', async (t) => {
  const user = await createUser(ctx)
  for (const password of ['short', 'password1', user.email, 'y'.repeat(257)]) {
    assertProblem(t, await ctx.request('PUT', `/v1/users/${user.id}/password`, { password }), 'weak_password')
  }
  t.equal((await login(user.email, STRONG_PASSWORD)).statusCode, 200, 'the old password still works')
  assertProblem(t, await ctx.request('PUT', '/v1/users/00000000-0000-0000-0000-000000000000/password', { password: 'New-Pas-de-Deux-2024' }), 'not_found')
})

t.test('DELETE: 204, then 404 everywhere, and the email is free again', async (t) => {
  const user = await createUser(ctx)
  await enrolPhone(ctx, user.id, phoneNumber(12))
  const response = await ctx.request('DELETE', `/v1/users/${user.id}`)
  t.equal(response.statusCode, 204)
  t.equal(response.body, '')
  assertProblem(t, await ctx.request('GET', `/v1/users/${user.id}`), 'not_found')
  assertProblem(t, await ctx.request('DELETE', `/v1/users/${user.id}`), 'not_found')
  assertProblem(t, await ctx.request('GET', `/v1/users/${user.id}/phones`), 'not_found')
  t.same((await ctx.request('GET', `/v1/users?email=${encodeURIComponent(user.email)}`)).json(), { items: [] })
  t.equal(await ctx.db.prisma.phone.count({ where: { userId: user.id } }), 0, 'phones went with the user')
  assertProblem(t, await login(user.email, STRONG_PASSWORD), 'invalid_credentials')
  t.equal((await ctx.request('POST', '/v1/users', { email: user.email, password: STRONG_PASSWORD })).statusCode, 201)
})

t.test('creating, changing and re-passwording a user write events without the password', async (t) => {
  const password = 'Event-Sourced-Plie-9'
  const user = await createUser(ctx, { password })
  await ctx.request('PATCH', `/v1/users/${user.id}`, { role: 'teacher' })
  const newPassword = 'Event-Sourced-Plie-10'
  await ctx.request('PUT', `/v1/users/${user.id}/password`, { password: newPassword })
  const events = (await ctx.request('GET', `/v1/users/${user.id}/events`)).json().items as Array<{ type: string }>
  t.same(events.map((e) => e.type), ['password.changed', 'user.updated', 'user.created'])
  const dump = JSON.stringify(events)
  t.notMatch(dump, password)
  t.notMatch(dump, newPassword)
})
