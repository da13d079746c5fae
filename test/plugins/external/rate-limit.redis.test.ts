import t from 'tap'
import { buildApp } from '../../../src/app.js'
import { PHONE_VERIFICATIONS_PER_HOUR } from '../../../src/lib/limits.js'
import { buildTestApp, createUser, phoneNumber, TEST_API_KEY } from '../../helpers/app.js'

t.test('with REDIS_URL, two instances share the per-user verification limit', async (t) => {
  const first = await buildTestApp(t, { env: { REDIS_URL: 'redis://127.0.0.1:6379' } })
  const second = await buildApp({ config: first.config, database: first.db })
  t.teardown(async () => { await second.close() })
  const user = await createUser(first)
  const statuses: number[] = []
  for (let i = 0; i < PHONE_VERIFICATIONS_PER_HOUR + 1; i++) {
    const app = i % 2 === 0 ? first.app : second
    const answer = await app.inject({
      method: 'POST',
      url: `/v1/users/${user.id}/phones`,
      headers: { authorization: `Bearer ${TEST_API_KEY}` },
      payload: { phoneNumber: phoneNumber(i) }
    })
    statuses.push(answer.statusCode)
  }
  t.same(statuses, [...Array(PHONE_VERIFICATIONS_PER_HOUR).fill(202), 429], 'the sixth start is refused, whichever instance gets it')
  t.equal(first.twilio.requests.length, PHONE_VERIFICATIONS_PER_HOUR, 'the refused start sent nothing')
})
