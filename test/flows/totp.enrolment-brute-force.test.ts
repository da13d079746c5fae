// An attacker who can reach the enrolment (a stolen session at the backend, say) must not be
// able to guess the pending secret's codes: five wrong codes end the enrolment, as they end a
// phone verification, sequentially or all at once, and a new enrolment starts a new count.
import t from 'tap'
import { awayFromStepEdge, buildTestApp, createUser, totpCode } from '../helpers/app.js'
import { assertProblem } from '../helpers/problem.js'

const ctx = await buildTestApp(t)

/** A six-digit code `code` is not: every digit moved by five. */
const wrong = (code: string) => code.replace(/\d/g, (d) => String((Number(d) + 5) % 10))

async function start (userId: string): Promise<{ enrollmentId: string, secret: string }> {
  return (await ctx.request('POST', `/v1/users/${userId}/totp`)).json()
}
async function confirm (userId: string, enrollmentId: string, code: string) {
  return await ctx.request('POST', `/v1/users/${userId}/totp/verify`, { enrollmentId, code })
}

t.test('five wrong codes end the enrolment; the right code is then refused', async (t) => {
  const user = await createUser(ctx)
  const { enrollmentId, secret } = await start(user.id)
  await awayFromStepEdge()
  for (let attempt = 1; attempt <= 5; attempt++) {
    const body = assertProblem(t, await confirm(user.id, enrollmentId, wrong(totpCode(secret))), 'invalid_code')
    t.equal(body.attemptsRemaining, 5 - attempt, `attempt ${attempt}: attemptsRemaining counts down`)
  }
  await awayFromStepEdge()
  assertProblem(t, await confirm(user.id, enrollmentId, totpCode(secret)), 'verification_expired')
  t.equal((await ctx.request('GET', `/v1/users/${user.id}`)).json().twoFactor.totp, null, 'no app was enabled')

  const again = await start(user.id)
  assertProblem(t, await confirm(user.id, again.enrollmentId, wrong(totpCode(again.secret))), 'invalid_code')
  await awayFromStepEdge()
  t.equal((await confirm(user.id, again.enrollmentId, totpCode(again.secret))).statusCode, 200, 'a new enrolment has its own count')
})

t.test('forty concurrent guesses get at most five checked', async (t) => {
  const user = await createUser(ctx)
  const { enrollmentId, secret } = await start(user.id)
  await awayFromStepEdge()
  const right = totpCode(secret)
  // Every code but the right one: a brute force that fires them all at once.
  const guesses = Array.from({ length: 40 }, (_, i) => String((Number(right) + 1 + i * 7919) % 1_000_000).padStart(6, '0'))
  const answers = await Promise.all(guesses.map(async (code) => await confirm(user.id, enrollmentId, code)))
  const codes = answers.map((answer) => answer.json().code)
  t.equal(codes.filter((code) => code === 'invalid_code').length, 5, 'five guesses were checked')
  t.equal(codes.filter((code) => code === 'verification_expired').length, 35, 'the rest found the enrolment over')
  const row = await ctx.db.prisma.totpFactor.findUniqueOrThrow({ where: { userId: user.id } })
  t.equal(row.pendingFailedAttempts, 5, 'the database counted exactly five')
  assertProblem(t, await confirm(user.id, enrollmentId, right), 'verification_expired')
})
