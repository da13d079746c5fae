import t from 'tap'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { createTestDatabase } from './helpers/database.js'
import { FAST_ARGON2 } from './helpers/app.js'

const SERVER = fileURLToPath(new URL('../src/server.ts', import.meta.url))

function start (env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER], {
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', ...FAST_ARGON2, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => { stdout += String(chunk) })
  child.stderr.on('data', (chunk) => { stderr += String(chunk) })
  return { child, out: () => stdout, err: () => stderr }
}

t.test('a bad setting stops the start with one line naming the variable', async (t) => {
  const server = start({ PORT: 'eighty', DATA_DIR: t.testdir() })
  const [code] = await once(server.child, 'exit')
  t.equal(code, 1)
  t.equal(server.err(), 'configuration error: PORT: must be a whole number from 0 to 65535\n')
})

t.test('production refuses the console provider before touching anything', async (t) => {
  const server = start({ NODE_ENV: 'production', SECRET_KEY: randomBytes(32).toString('base64'), SMS_PROVIDER: 'console', DATA_DIR: t.testdir() })
  const [code] = await once(server.child, 'exit')
  t.equal(code, 1)
  t.match(server.err(), /^configuration error: SMS_PROVIDER: .*\n$/)
})

t.test('SIGTERM lets the server finish and exit 0', async (t) => {
  const { url } = await createTestDatabase(t)
  const server = start({ PORT: '0', HOST: '127.0.0.1', DATABASE_URL: url, SMS_PROVIDER: 'console', DATA_DIR: t.testdir(), SECRET_KEY: randomBytes(32).toString('base64') })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const deadline = Date.now() + 60_000
  let address: string | undefined
  while (address === undefined && Date.now() < deadline && server.child.exitCode === null) {
    address = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(server.out())?.[1]
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.ok(address, `the server listened (stderr: ${server.err()})`)
  const health = await fetch(`${address}/health`)
  t.equal(health.status, 200)
  const ready = await fetch(`${address}/ready`)
  t.equal(ready.status, 200, 'migrations were applied at start and the database answers')
  server.child.kill('SIGTERM')
  const [code] = await once(server.child, 'exit')
  t.equal(code, 0)
})
