import t from 'tap'
import { Writable } from 'node:stream'
import { buildTestApp, enrolledUser, startLogin, STRONG_PASSWORD, TEST_API_KEY } from '../helpers/app.js'

function capture () {
  const lines: Array<Record<string, unknown>> = []
  const raw: string[] = []
  const logStream = new Writable({
    write (chunk, _encoding, done) {
      raw.push(String(chunk))
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>)
      done()
    }
  })
  return { lines, raw, logStream }
}

t.test('each request writes exactly one access line: request id, route template, status, duration', async (t) => {
  const { lines, logStream } = capture()
  const ctx = await buildTestApp(t, { env: { LOG_LEVEL: 'info' }, logStream })
  const userId = '00000000-0000-4000-8000-000000000000'
  lines.length = 0

  const health = await ctx.app.inject({ method: 'GET', url: '/health' })
  const missing = await ctx.request('GET', `/v1/users/${userId}?probe=1`)
  const unknown = await ctx.app.inject({ method: 'GET', url: '/no-such-route' })

  for (const [response, route, status] of [[health, '/health', 200], [missing, '/v1/users/:userId', 404], [unknown, 'unmatched', 404]] as const) {
    const reqId = response.headers['x-request-id']
    const mine = lines.filter((line) => line.reqId === reqId)
    t.equal(mine.length, 1, `one line for ${route}`)
    t.match(mine[0], { msg: 'request', reqId, route, statusCode: status, method: 'GET', durationMs: Number })
  }
  t.equal(lines.length, 3, 'and nothing else: fastify\'s own incoming/completed lines are off')
  t.notOk(JSON.stringify(lines).includes(userId), 'the raw URL with its ids and query is not logged')
})

t.test('security events are logged with the user id and request id, never codes or passwords', async (t) => {
  const { lines, raw, logStream } = capture()
  const ctx = await buildTestApp(t, { env: { LOG_LEVEL: 'info' }, logStream })
  const user = await enrolledUser(ctx, 1)
  const login = await startLogin(ctx, user)
  const code = ctx.twilio.lastCodeFor(user.number) as string
  const wrong = code === '000000' ? '111111' : '000000'
  const failed = await ctx.request('POST', `/v1/logins/${login.challengeId}/verify`, { code: wrong })
  t.equal(failed.statusCode, 422)

  const event = lines.find((line) => line.event === 'code.failed')
  t.ok(event, 'the wrong code is a logged security event')
  t.match(event, { msg: 'security event', userId: user.id, reqId: failed.headers['x-request-id'] })
  t.same(Object.keys(event ?? {}).filter((key) => !['level', 'time', 'pid', 'hostname', 'msg'].includes(key)).sort(), ['event', 'reqId', 'userId'], 'no details: only type, user and request')
  t.ok(lines.some((line) => line.event === 'challenge.sent' && line.userId === user.id))
  const log = raw.join('')
  for (const secret of [STRONG_PASSWORD, TEST_API_KEY, user.number, user.recoveryCode, ctx.twilio.authToken]) {
    t.notOk(log.includes(secret), `no ${secret.slice(0, 3)}… in the log`)
  }
  t.notMatch(log, new RegExp(`(?<![\\d.])(${code}|${wrong})(?![\\d.])`), 'no code, right or wrong')
})
