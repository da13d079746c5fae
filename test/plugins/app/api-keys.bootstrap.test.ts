// NODE_ENV=production with no BOOTSTRAP_API_KEY and no API key in the database would start a
// service nobody can call: it refuses to start, naming BOOTSTRAP_API_KEY. The admin CLI, which
// makes the first key, is the one caller allowed to start without one.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { buildApp } from '../../../src/app.js'
import { ConfigError } from '../../../src/lib/config.js'
import { createApiKeys } from '../../../src/plugins/app/api-keys.js'
import { FAST_ARGON2, testConfig } from '../../helpers/app.js'
import { migratedDatabase } from '../../helpers/database.js'
import { startFakeTwilio } from '../../helpers/fake-twilio.js'

const SERVER = fileURLToPath(new URL('../../../src/server.ts', import.meta.url))

async function production (t: Tap.Test) {
  const { db, url } = await migratedDatabase(t)
  const twilio = await startFakeTwilio(t)
  const config = await testConfig(t, { ...twilio.env, NODE_ENV: 'production', SMS_PROVIDER: 'twilio', BOOTSTRAP_API_KEY: undefined, DATABASE_URL: url })
  const start = async (options: { requireApiAccess?: boolean } = {}) => {
    const app = await buildApp({ config, database: db, ...options })
    t.teardown(async () => { await app.close() })
    await app.ready()
    return app
  }
  return { db, url, twilio, config, start }
}

t.test('production without BOOTSTRAP_API_KEY and without any key refuses to start', async (t) => {
  const { db, start } = await production(t)
  const err = await start().then(() => null, (e: unknown) => e)
  t.ok(err instanceof ConfigError, 'a configuration error')
  t.equal((err as ConfigError).variable, 'BOOTSTRAP_API_KEY')
  t.match((err as Error).message, /^BOOTSTRAP_API_KEY: is required when NODE_ENV=production/)

  // A revoked key lets nobody in either.
  const keys = createApiKeys({ prisma: db.prisma })
  await keys.create('old-backend', ['*'])
  await keys.revoke('old-backend')
  await t.rejects(start(), { variable: 'BOOTSTRAP_API_KEY' }, 'only revoked keys: still refused')

  const admin = await start({ requireApiAccess: false })
  t.equal((await admin.inject({ method: 'GET', url: '/health' })).statusCode, 200, 'the admin CLI may start, to make the first key')

  await keys.create('backend', ['login', 'users'])
  const app = await start()
  t.equal((await app.inject({ method: 'GET', url: '/ready' })).statusCode, 200, 'with a usable key in the database it starts')
})

t.test('outside production a missing BOOTSTRAP_API_KEY is fine', async (t) => {
  const { db } = await migratedDatabase(t)
  const config = await testConfig(t, { BOOTSTRAP_API_KEY: undefined })
  const app = await buildApp({ config, database: db })
  t.teardown(async () => { await app.close() })
  await t.resolves(app.ready())
})

t.test('the server prints one line naming BOOTSTRAP_API_KEY and exits 1', async (t) => {
  const { url, twilio } = await production(t)
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER], {
    env: { PATH: process.env.PATH ?? '', ...FAST_ARGON2, ...twilio.env, NODE_ENV: 'production', SMS_PROVIDER: 'twilio', DATABASE_URL: url, SECRET_KEY: Buffer.alloc(32, 7).toString('base64'), PORT: '0', HOST: '127.0.0.1', DATA_DIR: t.testdir(), LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stderr = ''
  child.stderr.on('data', (chunk) => { stderr += String(chunk) })
  t.teardown(() => { child.kill('SIGKILL') })
  const [code] = await once(child, 'exit')
  t.equal(code, 1)
  t.match(stderr, /^configuration error: BOOTSTRAP_API_KEY: is required when NODE_ENV=production[^\n]*\n$/)
})
