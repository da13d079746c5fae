import t from 'tap'
import pg from 'pg'
import { buildTestApp, enrolledUser, STRONG_PASSWORD, TEST_API_KEY } from '../helpers/app.js'
import { oneConnection } from '../helpers/one-connection.js'

t.test('a flood of wrong passwords gets 503 overloaded with Retry-After at once, not a queue of seconds', async (t) => {
  // One hash slot, a queue of two: the other logins of a burst of 20 are refused.
  const ctx = await buildTestApp(t, { env: { HASH_CONCURRENCY: '1', HASH_QUEUE_MAX: '2', HASH_MAX_WAIT_MS: '2000', ARGON2_MEMORY_COST: '8192', ARGON2_TIME_COST: '2' } })
  const user = await enrolledUser(ctx, 1)
  const started = Date.now()
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) =>
    ctx.request('POST', '/v1/logins', { email: `flood-${i}@example.com`, password: 'wrong-password-123' })))
  const overloaded = answers.filter((r) => r.statusCode === 503)
  t.ok(overloaded.length >= 10, `${overloaded.length} of 20 refused`)
  for (const r of overloaded) {
    t.equal(r.json().code, 'overloaded')
    t.equal(r.headers['retry-after'], '2')
    t.equal(r.headers['content-type'], 'application/problem+json; charset=utf-8')
  }
  t.ok(answers.every((r) => r.statusCode === 503 || r.statusCode === 401), 'the admitted ones are checked normally')
  t.ok(Date.now() - started < 5_000, 'nobody waited out a long queue')
  // Once the flood is over the same service answers a real login.
  const ok = await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD })
  t.equal(ok.statusCode, 200, ok.body)
})

t.test('a login refused as overloaded is refused before it costs the database a statement', async (t) => {
  const statements: string[] = []
  const query = pg.Client.prototype.query as (...args: unknown[]) => unknown
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    statements.push(String((args[0] as { text?: string })?.text ?? args[0]))
    return query.apply(this, args)
  } as typeof pg.Client.prototype.query
  t.teardown(() => { pg.Client.prototype.query = query as typeof pg.Client.prototype.query })

  // One slot and no queue; a slow hash keeps the slot taken while the second login comes.
  const ctx = await buildTestApp(t, { env: { HASH_CONCURRENCY: '1', HASH_QUEUE_MAX: '0', ARGON2_MEMORY_COST: '65536', ARGON2_TIME_COST: '8' } })
  let firstDone = false
  statements.length = 0
  const first = ctx.request('POST', '/v1/logins', { email: 'first@example.com', password: 'wrong-password-123' }).then((r) => { firstDone = true; return r })
  // Wait for the first login to hold the only slot (no fixed delay: on a loaded machine its
  // user lookup can take longer than any guess).
  while (ctx.app.passwords.places > 0) await new Promise((resolve) => setTimeout(resolve, 5))
  statements.length = 0
  const refused = await ctx.request('POST', '/v1/logins', { email: 'second@example.com', password: 'wrong-password-123' })
  const during = [...statements]
  t.notOk(firstDone, 'the first login still held the slot')
  t.equal(refused.statusCode, 503)
  t.equal(refused.json().code, 'overloaded')
  t.same(during, [], 'no statement was sent for the refused login')
  const unread = await ctx.request('POST', '/v1/logins', { email: 'not an email', password: 1 })
  t.equal(unread.statusCode, 503, 'the refusal comes before the body is even validated')
  t.notOk(firstDone, 'and the first login still held the slot')
  t.equal((await first).statusCode, 401, 'the admitted login is checked normally')
})

t.test('a connection whose login was refused as overloaded is not read again until a login could be admitted; other connections are', async (t) => {
  // One slot, no queue, and a hash of about a second to hold the slot with. The long wait makes
  // the pause's cap (half to all of Retry-After) far outlast the hash even on a loaded CI machine,
  // so that only room, never the cap, can end the pause here.
  const ctx = await buildTestApp(t, { env: { HASH_CONCURRENCY: '1', HASH_QUEUE_MAX: '0', HASH_MAX_WAIT_MS: '20000', ARGON2_MEMORY_COST: '65536', ARGON2_TIME_COST: '16' } })
  await ctx.app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = ctx.app.server.address() as { port: number }
  const flood = oneConnection(port, { authorization: `Bearer ${TEST_API_KEY}` })
  const other = oneConnection(port)
  t.teardown(() => { flood.close(); other.close() })

  let hashDoneAt = 0
  const held = ctx.app.passwords.hash('holding the only slot').then(() => { hashDoneAt = Date.now() })
  const refusal = await flood.send('POST', '/v1/logins', { email: 'flood@example.com', password: 'wrong-password-123' })
  t.equal(refusal.status, 503, refusal.body)
  t.equal(JSON.parse(refusal.body).code, 'overloaded')
  t.equal(refusal.headers['retry-after'], '20')
  t.equal(hashDoneAt, 0, 'refused while the slot was held')

  const next = flood.send('GET', '/health')
  const meanwhile = await other.send('GET', '/health')
  t.equal(meanwhile.status, 200)
  t.ok(hashDoneAt === 0, 'another connection was answered while the slot was still held')
  const after = await next
  await held
  t.equal(after.status, 200, 'the waiting request is answered, not lost')
  t.equal(after.localPort, refusal.localPort, 'on the refused connection')
  t.ok(after.at >= hashDoneAt, `answered ${after.at - hashDoneAt} ms after the slot was freed, not before`)
  t.ok(after.at - refusal.at < 10_000, 'and before the shortest cap of its pause')

  // The slot rests after a hash while the gate is refusing, and the pause may end before the
  // rest does: the point here is only that the connection takes logins again once there is room.
  while (ctx.app.passwords.places === 0) await new Promise((resolve) => setTimeout(resolve, 20))
  const login = await flood.send('POST', '/v1/logins', { email: 'flood@example.com', password: 'wrong-password-123' })
  t.equal(login.status, 401, 'with room again, the same connection gets its password checked')
})

t.test('a recovery code works while password checks are refused: it is no argon2 hash', async (t) => {
  const ctx = await buildTestApp(t, { env: { HASH_CONCURRENCY: '1', HASH_QUEUE_MAX: '0', HASH_MAX_WAIT_MS: '5000', ARGON2_MEMORY_COST: '65536', ARGON2_TIME_COST: '16' } })
  const user = await enrolledUser(ctx, 2)
  const login = await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD })
  t.equal(login.statusCode, 200, login.body)
  let held = true
  const holding = ctx.app.passwords.hash('holding the only slot').then(() => { held = false })
  const refused = await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD })
  t.equal(refused.statusCode, 503, 'password checks are being refused')
  const recovered = await ctx.request('POST', `/v1/logins/${login.json().challengeId as string}/recovery`, { recoveryCode: user.recoveryCode })
  t.equal(recovered.statusCode, 200, recovered.body)
  t.same(recovered.json().amr, ['pwd', 'recovery'])
  t.ok(held, 'answered while the slot was still held')
  await holding
})
