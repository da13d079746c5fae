import t from 'tap'
import { buildTestApp, enrolledUser, startLogin } from '../helpers/app.js'

t.test('enrol by SMS, log in, verify', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 1)
  const login = await startLogin(ctx, user)
  t.equal(login.status, 'challenge_required')
  const code = ctx.twilio.lastCodeFor(user.number)
  const verified = await ctx.request('POST', `/v1/logins/${login.challengeId}/verify`, { code })
  t.equal(verified.statusCode, 200, verified.body)
  t.same(verified.json().amr, ['pwd', 'sms'])
})
