// Contract section 4: "A TOTP code is accepted at most once" — across challenges, across
// simultaneous requests, and including the code that confirmed the enrolment.
import t from 'tap'
import { awayFromStepEdge, buildTestApp, createUser, startLogin, totpCode, totpUser } from '../helpers/app.js'
import { assertProblem } from '../helpers/problem.js'

const ctx = await buildTestApp(t)

async function verify (challengeId: string, code: string) {
  return await ctx.request('POST', `/v1/logins/${challengeId}/verify`, { code, method: 'totp' })
}

t.test('a code that logged in once is refused on a new challenge in the same step (invalid_code)', async (t) => {
  const user = await totpUser(ctx)
  await awayFromStepEdge()
  const code = totpCode(user.secret)
  const first = await startLogin(ctx, user)
  t.equal((await verify(first.challengeId, code)).statusCode, 200)
  const second = await startLogin(ctx, user)
  const replay = assertProblem(t, await verify(second.challengeId, code), 'invalid_code')
  t.equal(replay.attemptsRemaining, 4, 'the replay is counted as a wrong code')
  assertProblem(t, await verify(first.challengeId, code), 'challenge_closed', undefined)
})

t.test('the code that confirmed the enrolment cannot log in', async (t) => {
  const user = await createUser(ctx)
  const { enrollmentId, secret } = (await ctx.request('POST', `/v1/users/${user.id}/totp`)).json()
  await awayFromStepEdge()
  const code = totpCode(secret)
  t.equal((await ctx.request('POST', `/v1/users/${user.id}/totp/verify`, { enrollmentId, code })).statusCode, 200)
  const login = await startLogin(ctx, user)
  assertProblem(t, await verify(login.challengeId, code), 'invalid_code')
})

t.test('one code sent 10 times at once to one challenge: one 200', async (t) => {
  const user = await totpUser(ctx)
  const login = await startLogin(ctx, user)
  await awayFromStepEdge()
  const code = totpCode(user.secret)
  const answers = await Promise.all(Array.from({ length: 10 }, async () => await verify(login.challengeId, code)))
  t.equal(answers.filter((r) => r.statusCode === 200).length, 1, answers.map((r) => r.statusCode).join(','))
  for (const r of answers.filter((r) => r.statusCode !== 200)) t.ok([410, 422].includes(r.statusCode), `loser: ${r.body}`)
})

t.test('one code sent at once to 6 challenges of the user (a stolen code replayed in parallel): one login succeeds', async (t) => {
  const user = await totpUser(ctx)
  const logins = await Promise.all(Array.from({ length: 6 }, async () => await startLogin(ctx, user)))
  await awayFromStepEdge()
  const code = totpCode(user.secret)
  const answers = await Promise.all(logins.map(async (l) => await verify(l.challengeId, code)))
  t.equal(answers.filter((r) => r.statusCode === 200).length, 1, answers.map((r) => r.statusCode).join(','))
  for (const r of answers.filter((r) => r.statusCode !== 200)) assertProblem(t, r, 'invalid_code')
})
