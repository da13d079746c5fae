import t from 'tap'
import { buildApp } from '../../src/app.js'
import { createConsoleSender } from '../../src/senders/console-sender.js'
import { STRONG_PASSWORD, TEST_API_KEY, testConfig } from '../helpers/app.js'

// `npm ci && npm start` on a fresh machine: no DATABASE_URL, so an embedded PGlite under
// DATA_DIR, and the console provider. This walks enrolment and login through it.
t.test('embedded database and console codes: start, enrol, log in, restart keeps the data', async (t) => {
  const config = await testConfig(t, { SMS_PROVIDER: 'console', DATABASE_URL: undefined })
  const silent = { info () {}, warn () {}, error () {} }
  const sender = createConsoleSender(silent)
  const headers = { authorization: `Bearer ${TEST_API_KEY}` }

  let app = await buildApp({ config, sender })
  t.equal(app.db.kind, 'pglite')
  const ready = await app.inject({ method: 'GET', url: '/ready' })
  t.equal(ready.statusCode, 200)

  const created = await app.inject({ method: 'POST', url: '/v1/users', headers, payload: { email: 'owner@studio.example', password: STRONG_PASSWORD, role: 'owner' } })
  t.equal(created.statusCode, 201)
  const userId = created.json().id
  const started = await app.inject({ method: 'POST', url: `/v1/users/${userId}/phones`, headers, payload: { phoneNumber: '415 555 0188' } })
  t.equal(started.statusCode, 202)
  const enrolCode = /\d{6}/.exec(sender.outbox.at(-1)?.text ?? '')?.[0]
  t.equal(sender.outbox.at(-1)?.to, '+14155550188', 'the national number was normalised to E.164')
  const verified = await app.inject({ method: 'POST', url: `/v1/users/${userId}/phones/verify`, headers, payload: { verificationId: started.json().verificationId, code: enrolCode } })
  t.equal(verified.statusCode, 200)
  await app.close()

  app = await buildApp({ config, sender })
  t.teardown(async () => { await app.close() })
  const login = await app.inject({ method: 'POST', url: '/v1/logins', headers, payload: { email: 'owner@studio.example', password: STRONG_PASSWORD } })
  t.equal(login.statusCode, 200, 'the user survived the restart')
  t.equal(login.json().status, 'challenge_required')
  const code = /\d{6}/.exec(sender.outbox.at(-1)?.text ?? '')?.[0]
  const done = await app.inject({ method: 'POST', url: `/v1/logins/${login.json().challengeId}/verify`, headers, payload: { code } })
  t.equal(done.statusCode, 200)
  t.same(done.json().amr, ['pwd', 'sms'])
})
