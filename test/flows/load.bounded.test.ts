// Issue 4 item 6: a bounded load. Many workers log in and verify at once for a fixed time,
// some with a wrong code first. No answer may be a 5xx, and afterwards every counter in the
// database must match exactly what the clients were told.
import t from 'tap'
import { buildTestApp, enrolledUser, STRONG_PASSWORD } from '../helpers/app.js'

const WORKERS = Number(process.env.LOAD_WORKERS ?? 40)
const DURATION_MS = Number(process.env.LOAD_DURATION_MS ?? 15_000)

t.test(`${WORKERS} concurrent clients logging in and verifying for ${DURATION_MS / 1000} s: no 5xx, exact counters`, async (t) => {
  const ctx = await buildTestApp(t)
  // One user per worker: a worker reads its own latest code from the fake Twilio.
  const users = []
  for (let i = 0; i < WORKERS; i++) users.push(await enrolledUser(ctx, 200 + i))
  const baseline = ctx.twilio.requests.length

  const tally = { logins: 0, wrong: 0, verified: 0, fiveXx: [] as string[], unexpected: [] as string[] }
  const stopAt = Date.now() + DURATION_MS
  await Promise.all(users.map(async (user, worker) => {
    let round = 0
    while (Date.now() < stopAt) {
      round++
      const login = await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD })
      if (login.statusCode >= 500) { tally.fiveXx.push(`login ${login.statusCode} ${login.body}`); continue }
      if (login.statusCode !== 200) { tally.unexpected.push(`login ${login.statusCode} ${login.body}`); continue }
      tally.logins++
      const { challengeId } = login.json() as { challengeId: string }
      const code = ctx.twilio.lastCodeFor(user.number) ?? ''
      if ((round + worker) % 3 === 0) {
        const wrongCode = code === '000000' ? '111111' : '000000'
        const wrong = await ctx.request('POST', `/v1/logins/${challengeId}/verify`, { code: wrongCode })
        if (wrong.statusCode >= 500) tally.fiveXx.push(`wrong ${wrong.statusCode} ${wrong.body}`)
        else if (wrong.statusCode === 422) tally.wrong++
        else tally.unexpected.push(`wrong ${wrong.statusCode} ${wrong.body}`)
      }
      const right = await ctx.request('POST', `/v1/logins/${challengeId}/verify`, { code })
      if (right.statusCode >= 500) tally.fiveXx.push(`verify ${right.statusCode} ${right.body}`)
      else if (right.statusCode === 200) tally.verified++
      else tally.unexpected.push(`verify ${right.statusCode} ${right.body}`)
    }
  }))

  t.same(tally.fiveXx, [], 'no 5xx')
  t.same(tally.unexpected, [], 'no other refusal')
  t.ok(tally.logins >= WORKERS * 2, `${tally.logins} logins, ${tally.verified} verified, ${tally.wrong} wrong codes`)

  const ids = users.map((user) => user.id)
  const challenges = await ctx.db.prisma.otpChallenge.findMany({ where: { userId: { in: ids }, purpose: 'login' } })
  t.equal(challenges.length, tally.logins, 'one challenge per answered login')
  t.equal(challenges.reduce((sum, c) => sum + c.failedAttempts, 0), tally.wrong, 'wrong-code counters equal the wrong answers')
  t.equal(challenges.filter((c) => c.completedAt !== null).length, tally.verified, 'completed challenges equal the successes')
  const sends = challenges.reduce((sum, c) => sum + c.sendCount, 0)
  t.equal(sends, tally.logins, 'one send recorded per login')
  t.equal(ctx.twilio.requests.length - baseline, sends, 'and each one reached Twilio exactly once')
  const stored = await ctx.db.prisma.user.findMany({ where: { id: { in: ids } }, select: { codeFailures: true, lockedAt: true } })
  t.ok(stored.every((u) => u.codeFailures === 0 && u.lockedAt === null), 'every run ended in a success, which reset the account counter')
})
