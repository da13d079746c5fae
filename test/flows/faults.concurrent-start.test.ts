// Issue 4 item 6: two instances start at once on an empty database. Each opens its own pool
// and runs the migrations; the advisory lock must make one wait for the other, so both
// come up and every migration is recorded exactly once.
import t from 'tap'
import { readdir } from 'node:fs/promises'
import pg from 'pg'
import { buildApp } from '../../src/app.js'
import { DEFAULT_MIGRATIONS_DIR } from '../../src/db/migrate.js'
import { createTestDatabase } from '../helpers/database.js'
import { testConfig } from '../helpers/app.js'

t.test('two instances starting at once on an empty database both come up, migrations applied once', async (t) => {
  const { url } = await createTestDatabase(t)
  const migrations = (await readdir(DEFAULT_MIGRATIONS_DIR, { withFileTypes: true })).filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort()
  t.ok(migrations.length > 0, 'there are migrations to apply')

  const configs = await Promise.all([testConfig(t, { DATABASE_URL: url, SMS_PROVIDER: 'console' }), testConfig(t, { DATABASE_URL: url, SMS_PROVIDER: 'console' })])
  // No `database` option: each app opens its own pool, as two processes would.
  const apps = await Promise.all(configs.map(async (config) => {
    const app = await buildApp({ config })
    t.teardown(async () => { await app.close() })
    await app.ready()
    return app
  }))
  for (const [i, app] of apps.entries()) {
    const ready = await app.inject({ method: 'GET', url: '/ready' })
    t.equal(ready.statusCode, 200, `instance ${i + 1} is ready`)
  }

  const client = new pg.Client({ connectionString: url })
  await client.connect()
  t.teardown(async () => { await client.end() })
  const { rows } = await client.query<{ migration_name: string, n: string, finished: string }>(
    'SELECT migration_name, count(*) AS n, count(finished_at) AS finished FROM _prisma_migrations GROUP BY migration_name ORDER BY migration_name')
  t.same(rows.map((row) => row.migration_name), migrations, 'every migration is recorded')
  t.ok(rows.every((row) => row.n === '1' && row.finished === '1'), `each exactly once and finished: ${JSON.stringify(rows)}`)

  // Both instances write to the one schema: a user created on one is read on the other.
  const created = await apps[0]!.inject({ method: 'POST', url: '/v1/users', headers: { authorization: `Bearer ${configs[0]!.BOOTSTRAP_API_KEY as string}` }, payload: { email: `start.${process.pid}@studio.example`, password: 'Pirouette-Jete-1987!' } })
  t.equal(created.statusCode, 201, created.body)
  const read = await apps[1]!.inject({ method: 'GET', url: `/v1/users/${created.json().id as string}`, headers: { authorization: `Bearer ${configs[1]!.BOOTSTRAP_API_KEY as string}` } })
  t.equal(read.statusCode, 200, read.body)
})
