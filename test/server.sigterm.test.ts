// Issue 4 item 6: SIGTERM during a request. The real server runs as a child process; a
// user creation kept slow by expensive argon2 settings is in flight when the signal
// arrives. It must finish 2xx, new connections must be refused, and the process must
// exit 0 within the bound.
import t from 'tap'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { request as httpRequest } from 'node:http'
import { connect } from 'node:net'
import { fileURLToPath } from 'node:url'
import { createTestDatabase } from './helpers/database.js'
import { TEST_API_KEY, STRONG_PASSWORD } from './helpers/app.js'

const SERVER = fileURLToPath(new URL('../src/server.ts', import.meta.url))
/** From SIGTERM to exit, with the in-flight hash still to finish. */
const EXIT_BOUND_MS = 10_000

function refused (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(false) })
    socket.once('error', () => { resolve(true) })
  })
}

t.test('SIGTERM finishes the in-flight request, refuses new connections and exits 0', async (t) => {
  const { url } = await createTestDatabase(t)
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER], {
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: url,
      SMS_PROVIDER: 'console',
      DATA_DIR: t.testdir(),
      SECRET_KEY: randomBytes(32).toString('base64'),
      BOOTSTRAP_API_KEY: TEST_API_KEY,
      // Slow on purpose: the user creation below must still be hashing when SIGTERM arrives.
      ARGON2_MEMORY_COST: '65536',
      ARGON2_TIME_COST: '12',
      ARGON2_PARALLELISM: '1'
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => { stdout += String(chunk) })
  child.stderr.on('data', (chunk) => { stderr += String(chunk) })
  t.teardown(() => { child.kill('SIGKILL') })
  const exited = once(child, 'exit')

  const deadline = Date.now() + 60_000
  let port: number | undefined
  while (port === undefined && Date.now() < deadline && child.exitCode === null) {
    const match = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(stdout)
    if (match !== null) port = Number(match[1])
    else await new Promise((resolve) => setTimeout(resolve, 100))
  }
  if (port === undefined) throw new Error(`the server did not listen: ${stderr}`)
  const base = `http://127.0.0.1:${port}`

  let finished = false
  const payload = JSON.stringify({ email: `sigterm.${process.pid}@studio.example`, password: STRONG_PASSWORD })
  let bodySent!: () => void
  const sent = new Promise<void>((resolve) => { bodySent = resolve })
  const inFlight = new Promise<{ status: number, body: string }>((resolve, reject) => {
    const request = httpRequest(`${base}/v1/users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
    }, (response) => {
      let body = ''
      response.on('data', (chunk) => { body += String(chunk) })
      response.on('end', () => { finished = true; resolve({ status: response.statusCode ?? 0, body }) })
    })
    request.on('error', reject)
    request.on('finish', bodySent)
    request.end(payload)
  })
  // The access log is written when a request ends, so no log line says it has begun: once
  // the body is written, a short pause lets the server parse it and start the slow hash.
  await sent
  await new Promise((resolve) => setTimeout(resolve, 300))
  const signalled = Date.now()
  child.kill('SIGTERM')

  let wasRefused = false
  while (!wasRefused && !finished && Date.now() - signalled < EXIT_BOUND_MS) {
    wasRefused = await refused(port)
    if (!wasRefused) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.ok(wasRefused, 'a new connection is refused while the in-flight request is still running')
  t.notOk(finished, 'the refusal was seen before the in-flight request finished (it really was in flight)')

  const result = await inFlight
  t.equal(result.status, 201, `the in-flight request finished: ${result.body}`)
  const [code] = await exited
  const took = Date.now() - signalled
  t.equal(code, 0, `exit code 0 (stderr: ${stderr.slice(-500)}; stdout: ${code === 0 ? "…" : stdout.slice(-1500)})`)
  t.ok(took < EXIT_BOUND_MS, `exited ${took} ms after SIGTERM`)
  t.notMatch(stdout + stderr, /Cannot use a pool after calling end|shutdown failed|did not finish in time/, 'a clean shutdown log')
})
