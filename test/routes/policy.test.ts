// Contract section 6: GET and PUT /v1/organizations/{organizationId}/policy.
import t from 'tap'
import { assertProblem } from '../helpers/problem.js'
import { buildTestApp } from '../helpers/app.js'

const VALID = { requiredRoles: ['owner', 'manager'], allowedMethods: ['sms', 'totp'], rememberDeviceDays: 14, enrollmentGraceDays: 7, smsDailyLimit: 250 }

t.test('with none set, GET answers the configured default; PUT replaces it for that organization only', async (t) => {
  const ctx = await buildTestApp(t)
  const initial = await ctx.request('GET', '/v1/organizations/studio-a/policy')
  t.equal(initial.statusCode, 200)
  t.same(initial.json(), { requiredRoles: ['*'], allowedMethods: ['sms', 'voice', 'totp'], rememberDeviceDays: 30, enrollmentGraceDays: 0, smsDailyLimit: 1000 })

  const put = await ctx.request('PUT', '/v1/organizations/studio-a/policy', VALID)
  t.equal(put.statusCode, 200)
  t.same(put.json(), VALID)
  t.same((await ctx.request('GET', '/v1/organizations/studio-a/policy')).json(), VALID)
  t.same((await ctx.request('GET', '/v1/organizations/studio-b/policy')).json().requiredRoles, ['*'], 'another organization keeps the default')

  const relaxed = { ...VALID, requiredRoles: [], allowedMethods: ['totp', 'sms'] }
  t.same((await ctx.request('PUT', '/v1/organizations/studio-a/policy', relaxed)).json(), { ...relaxed, allowedMethods: ['sms', 'totp'] }, 'no role required is allowed; methods come back in a fixed order')
  const edges = { requiredRoles: ['*'], allowedMethods: ['voice'], rememberDeviceDays: 90, enrollmentGraceDays: 90, smsDailyLimit: 0 }
  t.same((await ctx.request('PUT', '/v1/organizations/studio-a/policy', edges)).json(), edges, 'the bounds themselves are accepted')
})

t.test('the defaults come from the configuration', async (t) => {
  const ctx = await buildTestApp(t, {
    env: {
      DEFAULT_REQUIRED_ROLES: 'owner, manager',
      DEFAULT_ALLOWED_METHODS: 'totp,sms',
      DEFAULT_REMEMBER_DEVICE_DAYS: '0',
      DEFAULT_ENROLLMENT_GRACE_DAYS: '5',
      DEFAULT_SMS_DAILY_LIMIT: '42'
    }
  })
  t.same((await ctx.request('GET', '/v1/organizations/any/policy')).json(), {
    requiredRoles: ['owner', 'manager'], allowedMethods: ['sms', 'totp'], rememberDeviceDays: 0, enrollmentGraceDays: 5, smsDailyLimit: 42
  })
})

t.test('PUT refuses what the contract does not allow with 400 invalid_request naming the field', async (t) => {
  const ctx = await buildTestApp(t)
  const bad: Array<[string, Record<string, unknown>, RegExp]> = [
    ['rememberDeviceDays above 90', { ...VALID, rememberDeviceDays: 91 }, /rememberDeviceDays/],
    ['rememberDeviceDays negative', { ...VALID, rememberDeviceDays: -1 }, /rememberDeviceDays/],
    ['rememberDeviceDays fractional', { ...VALID, rememberDeviceDays: 1.5 }, /rememberDeviceDays/],
    ['rememberDeviceDays as a string', { ...VALID, rememberDeviceDays: '30' }, /rememberDeviceDays/],
    ['enrollmentGraceDays above 90', { ...VALID, enrollmentGraceDays: 91 }, /enrollmentGraceDays/],
    ['enrollmentGraceDays negative', { ...VALID, enrollmentGraceDays: -3 }, /enrollmentGraceDays/],
    ['smsDailyLimit negative', { ...VALID, smsDailyLimit: -1 }, /smsDailyLimit/],
    ['smsDailyLimit fractional', { ...VALID, smsDailyLimit: 2.5 }, /smsDailyLimit/],
    ['no allowed method', { ...VALID, allowedMethods: [] }, /allowedMethods/],
    ['an unknown method', { ...VALID, allowedMethods: ['sms', 'email'] }, /allowedMethods/],
    ['recovery is not a policy method', { ...VALID, allowedMethods: ['recovery'] }, /allowedMethods/],
    ['a method twice', { ...VALID, allowedMethods: ['sms', 'sms'] }, /allowedMethods/],
    ['* with other roles', { ...VALID, requiredRoles: ['*', 'owner'] }, /requiredRoles/],
    ['a role that is no role name', { ...VALID, requiredRoles: ['Owner!'] }, /requiredRoles/],
    ['roles not an array', { ...VALID, requiredRoles: 'owner' }, /requiredRoles/],
    ['a missing field', { requiredRoles: ['*'], allowedMethods: ['sms'], rememberDeviceDays: 1, enrollmentGraceDays: 1 }, /smsDailyLimit/],
    ['an unknown field', { ...VALID, mfa: true }, /mfa/]
  ]
  for (const [name, body, field] of bad) {
    const response = await ctx.request('PUT', '/v1/organizations/studio-a/policy', body)
    assertProblem(t, response, 'invalid_request', field)
    t.comment(name)
  }
  t.same((await ctx.request('GET', '/v1/organizations/studio-a/policy')).json().smsDailyLimit, 1000, 'nothing was saved')
})

t.test('policy needs the users scope', async (t) => {
  const ctx = await buildTestApp(t)
  const { key } = await ctx.app.apiKeys.create('login-only', ['login'])
  assertProblem(t, await ctx.request('GET', '/v1/organizations/studio-a/policy', undefined, key), 'forbidden')
  assertProblem(t, await ctx.request('PUT', '/v1/organizations/studio-a/policy', VALID, key), 'forbidden')
  assertProblem(t, await ctx.request('GET', '/v1/organizations/studio-a/policy', undefined, null), 'unauthorized')
})
