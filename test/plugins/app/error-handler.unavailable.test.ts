// Which driver errors mean "the database is away" (503 unavailable) and which stay a 500.
import t from 'tap'
import { isDatabaseUnavailable } from '../../../src/plugins/app/error-handler.js'

t.test('connection and timeout failures of pg and Prisma are unavailable', async (t) => {
  for (const message of ['Query read timeout', 'canceling statement due to statement timeout', 'Connection terminated unexpectedly',
    'timeout exceeded when trying to connect', 'connect ECONNREFUSED 127.0.0.1:5432', 'read ECONNRESET']) {
    t.ok(isDatabaseUnavailable(new Error(message)), message)
  }
  t.ok(isDatabaseUnavailable(Object.assign(new Error('x'), { name: 'PrismaClientKnownRequestError', code: 'P2024' })), 'P2024 pool timeout')
})

t.test('programming errors are not disguised as an outage', async (t) => {
  t.notOk(isDatabaseUnavailable(new Error('relation "users" does not exist')))
  t.notOk(isDatabaseUnavailable(new TypeError('Query read timeout')), 'only driver and Prisma errors are classified')
  t.notOk(isDatabaseUnavailable(null))
})
