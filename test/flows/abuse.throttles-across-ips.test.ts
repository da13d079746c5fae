// A botnet spreads its guesses over many addresses: the per-IP limits never fire, so
// the per-account throttles must count every guess whatever address it comes from.
import t from 'tap'
import { MAX_ACCOUNT_CODE_FAILURES, MAX_CODE_ATTEMPTS_PER_CHALLENGE, PASSWORD_FAILURES_BEFORE_THROTTLE } from '../../src/lib/limits.js'
import { buildTestApp, enrolledUser, STRONG_PASSWORD } from '../helpers/app.js'
import { assertProblem } from '../helpers/problem.js'

const ip = (n: number) => `198.51.100.${n}`

t.test('wrong passwords from a new IP each time still slow the account down', async (t) => {
  // Real per-IP limits: each address makes a single guess, far under them.
  const ctx = await buildTestApp(t, { env: { RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: '30' } })
  const user = await enrolledUser(ctx, 1)
  for (let i = 0; i < PASSWORD_FAILURES_BEFORE_THROTTLE; i++) {
    assertProblem(t, await ctx.request('POST', '/v1/logins', { email: user.email, password: `wrong-${i}-password`, context: { ip: ip(i + 1) } }), 'invalid_credentials')
  }
  const throttled = await ctx.request('POST', '/v1/logins', { email: user.email, password: 'wrong-again-password', context: { ip: ip(200) } })
  assertProblem(t, throttled, 'too_many_attempts')
  const owner = await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD, context: { ip: ip(201) } })
  assertProblem(t, owner, 'too_many_attempts', /wait/)
  t.equal((await ctx.db.prisma.user.findUniqueOrThrow({ where: { id: user.id } })).lockedAt, null, 'slowed down, never locked')
})

t.test('wrong codes from a new IP each time, over new challenges, still pause the account', async (t) => {
  const ctx = await buildTestApp(t, { env: { RATE_LIMIT_VERIFY_PER_IP_PER_MINUTE: '30' } })
  const user = await enrolledUser(ctx, 2)
  let guesses = 0
  let last
  let n = 0
  while (guesses < MAX_ACCOUNT_CODE_FAILURES) {
    const login = await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD, context: { ip: ip(++n) } })
    t.equal(login.statusCode, 200, login.body)
    const { challengeId } = login.json()
    for (let i = 0; i < MAX_CODE_ATTEMPTS_PER_CHALLENGE - 1 && guesses < MAX_ACCOUNT_CODE_FAILURES; i++) {
      last = await ctx.request('POST', `/v1/logins/${challengeId}/verify`, { code: '000000', context: { ip: ip(++n) } })
      guesses++
    }
  }
  t.ok(last !== undefined)
  if (last !== undefined) assertProblem(t, last, 'too_many_attempts')
  const next = await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD, context: { ip: ip(250) } })
  assertProblem(t, next, 'too_many_attempts', /wrong codes/)
  const row = await ctx.db.prisma.user.findUniqueOrThrow({ where: { id: user.id } })
  t.ok(row.codeLockedUntil !== null && row.codeLockedUntil > new Date(Date.now() + 14 * 60_000), 'paused for the lock-out period')
  t.equal(row.lockedAt, null, 'a pause, not a lock that needs support')
})
