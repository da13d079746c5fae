// `npm run keys`, run as the operator runs it (a child process) against a fresh PostgreSQL
// database, and the keys it makes used against the service.
import t from 'tap'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildApp } from '../../src/app.js'
import { createDatabase } from '../../src/db/database.js'
import { testConfig } from '../helpers/app.js'
import { createTestDatabase } from '../helpers/database.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const KEY = /^spa_[A-Za-z0-9_-]{43}$/

interface Run { code: number, stdout: string, stderr: string }

/** The CLI from source, with a clean environment: only the database settings the test gives. */
function keys (env: Record<string, string>, ...args: string[]): Promise<Run> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) =>
    !/^(DATABASE_URL|DATA_DIR|SECRET_KEY|BOOTSTRAP_API_KEY|TWILIO_.*|SMS_PROVIDER|NODE_ENV)$/.test(name)))
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'src/cli/keys.ts', ...args], {
      cwd: ROOT,
      env: { ...inherited, NODE_ENV: 'test', ...env },
      timeout: 60_000
    }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
      resolve({ code, stdout, stderr })
    })
  })
}

function lastLine (text: string): string {
  return text.trimEnd().split('\n').at(-1) ?? ''
}

// Each run starts Node with tsx: a few seconds on a busy machine, so runs go in parallel where they can.
t.setTimeout(300_000)

t.test('usage errors exit 2 with the usage text; a bad setting exits 1', async (t) => {
  // An unreachable database: a usage error must be reported before any connection.
  const env = { DATABASE_URL: 'postgresql://nobody@127.0.0.1:1/none', DATA_DIR: tmpdir() }
  const [none, badScope, badOption, help, badConfig] = await Promise.all([
    keys(env),
    keys(env, 'create', '--name', 'backend', '--scopes', 'login,root'),
    keys(env, 'list', '--all'),
    keys(env, '--help'),
    keys({ DATABASE_URL: 'mysql://localhost/x', DATA_DIR: tmpdir() }, 'list')
  ])
  for (const [run, message] of [
    [none, /a command is required/],
    [badScope, /unknown scope root; the scopes are login, users, admin, \*/],
    [badOption, /Unknown option '--all'/]
  ] as const) {
    t.equal(run.code, 2, `exit code 2 for ${message}`)
    t.match(run.stderr, message)
    t.match(run.stderr, /Usage:\n {2}npm run --silent keys -- create --name NAME --scopes/)
    t.equal(run.stdout, '')
  }
  t.equal(help.code, 0)
  t.match(help.stdout, /Usage:/)
  t.equal(badConfig.code, 1)
  t.match(badConfig.stderr, /^configuration error: DATABASE_URL: must start with postgresql: or postgres:\/\/\n$/)
})

t.test('create, use, list and revoke a key', async (t) => {
  // An empty database: the CLI applies the migrations itself, as the service would.
  const { url } = await createTestDatabase(t)
  const dataDir = await mkdtemp(join(tmpdir(), 'spa-keys-'))
  t.teardown(async () => { await rm(dataDir, { recursive: true, force: true }) })
  const env = { DATABASE_URL: url, DATA_DIR: dataDir }

  // Two at once on an empty database: both apply the migrations, under the migration lock.
  const [backend, kiosk] = await Promise.all([
    keys(env, 'create', '--name', 'backend', '--scopes', 'login,users'),
    keys(env, 'create', '--name', 'kiosk', '--scopes', 'login')
  ])
  t.equal(backend.code, 0, backend.stderr)
  const backendKey = lastLine(backend.stdout)
  t.match(backendKey, KEY, 'the key is alone on the last line')
  t.ok(backend.stdout.endsWith(`\n${backendKey}\n`), 'and nothing follows it')
  t.equal(backend.stdout.split(backendKey).length, 2, 'the key is printed once')
  t.match(backend.stdout, /shown only this once/)

  t.equal(kiosk.code, 0, kiosk.stderr)
  const kioskKey = lastLine(kiosk.stdout)
  t.match(kioskKey, KEY)
  t.not(kioskKey, backendKey)

  const [duplicate, listed] = await Promise.all([
    keys(env, 'create', '--name', 'backend', '--scopes', 'admin'),
    keys(env, 'list')
  ])
  t.equal(duplicate.code, 1, 'a duplicate name is a failure')
  t.match(duplicate.stderr, /A key named backend already exists/)
  t.equal(duplicate.stdout, '', 'and prints no key')

  // The service, on the same database, with no bootstrap key.
  const config = await testConfig(t, { DATABASE_URL: url, BOOTSTRAP_API_KEY: undefined })
  const db = await createDatabase({ databaseUrl: url, dataDir })
  t.teardown(async () => { await db.close() })
  const app = await buildApp({ config, database: db })
  t.teardown(async () => { await app.close() })
  await app.ready()
  const lookUp = async (key: string) => await app.inject({
    method: 'GET', url: '/v1/users?email=x@y.zz', headers: { authorization: `Bearer ${key}` }
  })

  const allowed = await lookUp(backendKey)
  t.equal(allowed.statusCode, 200, allowed.body)
  t.same(allowed.json(), { items: [] })
  const forbidden = await lookUp(kioskKey)
  t.equal(forbidden.statusCode, 403, 'a login-only key cannot read users')
  t.equal(forbidden.json().code, 'forbidden')

  t.equal(listed.code, 0, listed.stderr)
  t.match(listed.stdout, /^NAME +SCOPES +CREATED +REVOKED +ID\n/)
  t.match(listed.stdout, /^backend +login,users +\d{4}-\d\d-\d\dT[\d:.]+Z +- +[0-9a-f-]{36}$/m)
  t.match(listed.stdout, /^kiosk +login +\d{4}-\d\d-\d\dT[\d:.]+Z +- +[0-9a-f-]{36}$/m)
  for (const key of [backendKey, kioskKey]) {
    const hash = createHash('sha256').update(key).digest('hex')
    t.notOk(listed.stdout.includes(key) || listed.stderr.includes(key), 'list never shows a key')
    t.notOk(listed.stdout.includes(hash) || listed.stdout.includes(hash.slice(0, 16)), 'nor its hash')
    t.notOk(listed.stdout.includes(key.slice(4, 20)), 'nor a part of it')
  }

  const revoked = await keys(env, 'revoke', 'backend')
  t.equal(revoked.code, 0, revoked.stderr)
  t.match(revoked.stdout, /Revoked API key backend/)
  const refused = await lookUp(backendKey)
  t.equal(refused.statusCode, 401, 'a revoked key stops working at once')
  t.equal(refused.json().code, 'unauthorized')
  t.equal((await lookUp(kioskKey)).statusCode, 403, 'other keys are untouched')

  const [unknown, afterRevoke] = await Promise.all([
    keys(env, 'revoke', 'nobody'),
    keys(env, 'list')
  ])
  t.equal(unknown.code, 1, 'revoking an unknown name is a failure')
  t.match(unknown.stderr, /No API key is named nobody/)
  t.match(afterRevoke.stdout, /^backend +login,users +\S+Z +\d{4}-\d\d-\d\dT[\d:.]+Z +[0-9a-f-]{36}$/m, 'list shows when it was revoked')
})
