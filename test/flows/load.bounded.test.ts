// Issue 4 item 6: a bounded load over real HTTP. Many clients, each on its own keep-alive
// connection, log in, sometimes ask for another code, sometimes send a stale or wrong code
// first, sometimes send the right code twice at once, sometimes replay it after success.
// No answer may be a 5xx, and afterwards every counter in the database (and the fake
// Twilio's log) must match exactly what the clients were told.
import t from 'tap'
import { Pool } from 'undici'
import { buildTestApp, enrolledUser, STRONG_PASSWORD, TEST_API_KEY } from '../helpers/app.js'

const WORKERS = Number(process.env.LOAD_WORKERS ?? 200)
const DURATION_MS = Number(process.env.LOAD_DURATION_MS ?? 20_000)

t.test(`${WORKERS} concurrent HTTP clients for ${DURATION_MS / 1000} s (login, resend, verify): no 5xx, exact counters`, async (t) => {
  const ctx = await buildTestApp(t, {
    env: {
      RESEND_COOLDOWN_SECONDS: '0',
      // Every client may wait for a hash slot: this test proves correctness under
      // concurrency; shedding past the queue is login.password-flood's subject.
      HASH_QUEUE_MAX: String(WORKERS),
      HASH_MAX_WAIT_MS: '30000',
      // The studio budget's own test is policy.sms-budget-concurrency; a fast machine sends
      // more than the default 1000 a day here, and a refused resend is not what this counts.
      DEFAULT_SMS_DAILY_LIMIT: '100000000'
    }
  })
  // One user (and number) per client: a client reads its own latest code from the fake Twilio.
  const users: Array<Awaited<ReturnType<typeof enrolledUser>>> = []
  for (let i = 0; i < WORKERS; i += 25) {
    users.push(...await Promise.all(Array.from({ length: Math.min(25, WORKERS - i) }, async (_, j) => await enrolledUser(ctx, 300 + i + j))))
  }
  const baseline = ctx.twilio.requests.length

  const base = await ctx.app.listen({ host: '127.0.0.1', port: 0 })
  const http = new Pool(base, { connections: WORKERS, pipelining: 1 })
  t.teardown(async () => { await http.close() })
  async function call (method: 'POST', path: string, body: unknown) {
    const response = await http.request({ method, path, headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
    const text = await response.body.text()
    return { status: response.statusCode, text, json: () => JSON.parse(text) as Record<string, unknown> }
  }

  const tally = { logins: 0, resends: 0, wrong: 0, stale: 0, verified: 0, doubles: 0, replays: 0, fiveXx: [] as string[], unexpected: [] as string[] }
  const expect = (what: string, answer: { status: number, text: string }, status: number): boolean => {
    if (answer.status === status) return true
    ;(answer.status >= 500 ? tally.fiveXx : tally.unexpected).push(`${what} ${answer.status} ${answer.text}`)
    return false
  }
  const stopAt = Date.now() + DURATION_MS
  await Promise.all(users.map(async (user, worker) => {
    const context = { ip: `198.18.${worker >> 8}.${worker & 255}` }
    for (let round = 0; Date.now() < stopAt; round++) {
      const r = round + worker
      const login = await call('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD, context })
      if (!expect('login', login, 200)) continue
      tally.logins++
      const challengeId = login.json().challengeId as string
      const path = `/v1/logins/${challengeId}`
      let code = ctx.twilio.lastCodeFor(user.number) ?? ''

      if (r % 4 === 1) {
        const resend = await call('POST', `${path}/send`, { channel: 'sms', context })
        if (!expect('send', resend, 202)) continue
        tally.resends++
        const stale = code
        code = ctx.twilio.lastCodeFor(user.number) ?? ''
        if (stale !== code) {
          // A resend voids the code before it: it is a wrong code now.
          if (expect('stale', await call('POST', `${path}/verify`, { code: stale, context }), 422)) tally.stale++
        }
      }
      if (r % 3 === 0) {
        const wrongCode = code === '000000' ? '111111' : '000000'
        if (expect('wrong', await call('POST', `${path}/verify`, { code: wrongCode, context }), 422)) tally.wrong++
      }
      if (r % 5 === 2) {
        // The same right code twice at once: exactly one may win.
        const both = await Promise.all([1, 2].map(async () => await call('POST', `${path}/verify`, { code, context })))
        const won = both.filter((answer) => answer.status === 200).length
        const lost = both.filter((answer) => answer.status === 410 && answer.json().code === 'challenge_closed').length
        if (won === 1 && lost === 1) { tally.verified++; tally.doubles++ } else for (const answer of both) expect('double', answer, 200)
      } else if (expect('verify', await call('POST', `${path}/verify`, { code, context }), 200)) {
        tally.verified++
      }
      if (r % 7 === 3) {
        if (expect('replay', await call('POST', `${path}/verify`, { code, context }), 410)) tally.replays++
      }
    }
  }))

  t.same(tally.fiveXx.slice(0, 5), [], `no 5xx (${tally.fiveXx.length})`)
  t.same(tally.unexpected.slice(0, 5), [], `no other refusal (${tally.unexpected.length})`)
  const { fiveXx, unexpected, ...counts } = tally
  t.comment(JSON.stringify(counts))
  t.ok(tally.logins >= WORKERS, `${tally.logins} logins in ${DURATION_MS / 1000} s`)
  t.ok(tally.resends > 0 && tally.doubles > 0 && tally.replays > 0 && tally.wrong > 0, 'every kind of step ran')

  const ids = users.map((user) => user.id)
  const challenges = await ctx.db.prisma.otpChallenge.findMany({ where: { userId: { in: ids }, purpose: 'login' } })
  t.equal(challenges.length, tally.logins, 'one challenge per answered login')
  t.equal(challenges.filter((c) => c.completedAt !== null).length, tally.verified, 'completed challenges equal the successes: no code was consumed twice')
  t.equal(challenges.reduce((sum, c) => sum + c.failedAttempts, 0), tally.wrong + tally.stale, 'wrong-code counters equal the wrong and stale answers')
  const sends = challenges.reduce((sum, c) => sum + c.sendCount, 0)
  t.equal(sends, tally.logins + tally.resends, 'one send recorded per login and per resend')
  t.equal(ctx.twilio.requests.length - baseline, sends, 'and each one reached Twilio exactly once')
  const deliveries = await ctx.db.prisma.delivery.count({ where: { challengeId: { in: challenges.map((c) => c.id) } } })
  t.equal(deliveries, sends, 'one delivery row per send')
  const numberCounters = await ctx.db.prisma.sendCounter.aggregate({ where: { scope: 'number-hour' }, _sum: { count: true } })
  t.equal(numberCounters._sum.count, ctx.twilio.requests.length, 'the per-number budgets counted every text, enrolments included, once')
  const ipCounters = await ctx.db.prisma.sendCounter.findMany({ where: { scope: 'ip-hour', key: { startsWith: '198.18.' } } })
  t.equal(ipCounters.reduce((sum, row) => sum + row.count, 0), sends, 'the per-IP budgets counted every login send and resend under the client\'s IP')
  const stored = await ctx.db.prisma.user.findMany({ where: { id: { in: ids } }, select: { codeFailures: true, lockedAt: true } })
  t.ok(stored.every((u) => u.codeFailures === 0 && u.lockedAt === null), 'every run ended in a success, which reset the account counter')
})
