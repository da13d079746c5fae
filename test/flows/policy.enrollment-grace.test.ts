// Contract section 6: which roles must use 2FA, and the grace period of a newly required
// user, counted from when the requirement first applied (users.two_factor_required_since).
import t from 'tap'
import { assertProblem } from '../helpers/problem.js'
import { buildTestApp, enrolPhone, email, phoneNumber, STRONG_PASSWORD, type TestApp } from '../helpers/app.js'

const DAY = 86_400_000
const POLICY = { requiredRoles: ['owner', 'manager'], allowedMethods: ['sms', 'voice', 'totp'], rememberDeviceDays: 30, enrollmentGraceDays: 0, smsDailyLimit: 1000 }

async function orgUser (ctx: TestApp, role: string, organizationId: string) {
  const response = await ctx.request('POST', '/v1/users', { email: email(role), password: STRONG_PASSWORD, role, organizationId })
  if (response.statusCode !== 201) throw new Error(response.body)
  return response.json() as { id: string, email: string, twoFactor: { required: boolean, enrollmentDueBy: string | null } }
}

async function login (ctx: TestApp, user: { email: string }) {
  const response = await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD })
  if (response.statusCode !== 200) throw new Error(response.body)
  return response.json()
}

t.test('a relaxed role logs in with the password alone; a required role without a method must enrol', async (t) => {
  const ctx = await buildTestApp(t)
  await ctx.request('PUT', '/v1/organizations/studio-r/policy', POLICY)
  const teacher = await orgUser(ctx, 'teacher', 'studio-r')
  const owner = await orgUser(ctx, 'owner', 'studio-r')
  t.same([teacher.twoFactor.required, teacher.twoFactor.enrollmentDueBy], [false, null], 'the User says the teacher is not required')
  t.same([owner.twoFactor.required, owner.twoFactor.enrollmentDueBy], [true, null], 'and the owner is, with no grace period')

  t.same(await login(ctx, teacher), { status: 'authenticated', userId: teacher.id, amr: ['pwd'] })
  t.same(await login(ctx, owner), { status: 'enrollment_required', userId: owner.id })

  // A relaxed user who enrolled anyway still gets the second factor, and may remove it.
  const phone = await enrolPhone(ctx, teacher.id, phoneNumber(1))
  t.equal((await login(ctx, teacher)).status, 'challenge_required')
  t.equal((await ctx.request('DELETE', `/v1/users/${teacher.id}/phones/${phone.phone.id}`)).statusCode, 204, 'a relaxed role may remove its last phone')

  const ownerPhone = await enrolPhone(ctx, owner.id, phoneNumber(2))
  assertProblem(t, await ctx.request('DELETE', `/v1/users/${owner.id}/phones/${ownerPhone.phone.id}`), 'two_factor_required')

  // The verdict follows the organization's policy as it is now.
  await ctx.request('PUT', '/v1/organizations/studio-r/policy', { ...POLICY, requiredRoles: ['*'] })
  t.equal((await login(ctx, teacher)).status, 'enrollment_required', 'requiring every role reaches the teacher')
  t.equal((await ctx.request('GET', `/v1/users/${teacher.id}`)).json().twoFactor.required, true)
})

t.test('the default policy comes from DEFAULT_REQUIRED_ROLES for users without an organization', async (t) => {
  const ctx = await buildTestApp(t, { env: { DEFAULT_REQUIRED_ROLES: 'owner' } })
  const staff = await ctx.request('POST', '/v1/users', { email: email('staff'), password: STRONG_PASSWORD })
  t.same(await login(ctx, staff.json()), { status: 'authenticated', userId: staff.json().id, amr: ['pwd'] })
  const owner = await ctx.request('POST', '/v1/users', { email: email('owner'), password: STRONG_PASSWORD, role: 'owner' })
  t.equal((await login(ctx, owner.json())).status, 'enrollment_required')
})

t.test('grace period: authenticated with enrollmentDueBy just inside, enrollment_required just after', async (t) => {
  const ctx = await buildTestApp(t)
  await ctx.request('PUT', '/v1/organizations/studio-g/policy', { ...POLICY, enrollmentGraceDays: 7 })
  const owner = await orgUser(ctx, 'owner', 'studio-g')
  const row = await ctx.db.prisma.user.findUniqueOrThrow({ where: { id: owner.id } })
  const since = row.twoFactorRequiredSince
  t.ok(since !== null, 'the requirement was recorded when first seen (the created User)')
  t.equal(owner.twoFactor.enrollmentDueBy, new Date((since as Date).getTime() + 7 * DAY).toISOString(), 'the User shows since + 7 days')

  const first = await login(ctx, owner)
  t.same(first, { status: 'authenticated', userId: owner.id, amr: ['pwd'], enrollmentDueBy: owner.twoFactor.enrollmentDueBy })
  const again = await login(ctx, owner)
  t.equal(again.enrollmentDueBy, first.enrollmentDueBy, 'later logins do not restart the grace period')

  const setSince = async (date: Date) => await ctx.db.prisma.user.update({ where: { id: owner.id }, data: { twoFactorRequiredSince: date } })
  await setSince(new Date(Date.now() - 7 * DAY + 60_000))
  const inside = await login(ctx, owner)
  t.equal(inside.status, 'authenticated', 'a minute before the end: still in')
  t.ok(Date.parse(inside.enrollmentDueBy) - Date.now() <= 60_000, 'due within the minute')

  await setSince(new Date(Date.now() - 7 * DAY - 1000))
  t.same(await login(ctx, owner), { status: 'enrollment_required', userId: owner.id }, 'a second after the end: must enrol')
  const view = (await ctx.request('GET', `/v1/users/${owner.id}`)).json()
  t.equal(view.twoFactor.required, true)
  t.ok(Date.parse(view.twoFactor.enrollmentDueBy) < Date.now(), 'the User shows the date that passed')

  // Enrolled: the grace period no longer matters.
  await enrolPhone(ctx, owner.id, phoneNumber(3))
  const enrolled = (await ctx.request('GET', `/v1/users/${owner.id}`)).json()
  t.equal(enrolled.twoFactor.enrollmentDueBy, null)
  t.equal((await login(ctx, owner)).status, 'challenge_required')
})

t.test('the grace period starts once, even when the first logins race', async (t) => {
  const ctx = await buildTestApp(t)
  await ctx.request('PUT', '/v1/organizations/studio-c/policy', { ...POLICY, requiredRoles: ['manager'], enrollmentGraceDays: 3 })
  const teacher = await orgUser(ctx, 'teacher', 'studio-c')
  t.equal((await ctx.db.prisma.user.findUniqueOrThrow({ where: { id: teacher.id } })).twoFactorRequiredSince, null, 'not required: nothing recorded')

  // Promoted: the requirement applies from now on; the first sightings race.
  await ctx.db.prisma.user.update({ where: { id: teacher.id }, data: { role: 'manager' } })
  const answers = await Promise.all(Array.from({ length: 8 }, async () => await login(ctx, teacher)))
  const dueDates = new Set(answers.map((a) => a.enrollmentDueBy))
  t.equal(dueDates.size, 1, 'every concurrent login got the same due date')
  const since = (await ctx.db.prisma.user.findUniqueOrThrow({ where: { id: teacher.id } })).twoFactorRequiredSince as Date
  t.equal([...dueDates][0], new Date(since.getTime() + 3 * DAY).toISOString())

  // Back to a relaxed role: the start is forgotten, so a later promotion gets a full grace period.
  const demoted = await ctx.request('PATCH', `/v1/users/${teacher.id}`, { role: 'teacher' })
  t.same(demoted.json().twoFactor, { ...demoted.json().twoFactor, required: false, enrollmentDueBy: null })
  t.equal((await ctx.db.prisma.user.findUniqueOrThrow({ where: { id: teacher.id } })).twoFactorRequiredSince, null)
})
