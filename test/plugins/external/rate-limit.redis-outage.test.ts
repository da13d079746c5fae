// A private redis-server that this test starts and kills: limits keep working from
// memory while it is down (logged once), and are shared again once it is back.
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { Writable } from 'node:stream'
import { buildApp } from '../../../src/app.js'
import { buildTestApp, email, TEST_API_KEY } from '../../helpers/app.js'
import { freePort } from '../../helpers/free-port.js'

async function startRedis (port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => { if (chunk.toString().includes('Ready to accept connections')) resolve() })
    child.on('exit', (code) => { reject(new Error(`redis-server exited ${code}`)) })
  })
  child.stdout?.resume()
  return child
}

async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  await new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGKILL') })
}

t.test('Redis down: limits fall back to memory and are logged once; Redis back: shared again', async (t) => {
  const port = await freePort()
  let redis = await startRedis(port)
  t.teardown(async () => { await stop(redis) })
  const lines: Array<{ msg: string, level: number }> = []
  const logStream = new Writable({ write (chunk, _enc, done) { lines.push(JSON.parse(chunk.toString())); done() } })
  const first = await buildTestApp(t, { env: { REDIS_URL: `redis://127.0.0.1:${port}`, RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: '2', LOG_LEVEL: 'info' }, logStream })
  const second = await buildApp({ config: first.config, database: first.db })
  t.teardown(async () => { await second.close() })
  const login = async (app: typeof second, ip: string) => (await app.inject({
    method: 'POST',
    url: '/v1/logins',
    headers: { authorization: `Bearer ${TEST_API_KEY}` },
    payload: { email: email(), password: 'Wrong-password-1', context: { ip } }
  })).statusCode

  t.same([await login(first.app, '203.0.113.1'), await login(second, '203.0.113.1'), await login(first.app, '203.0.113.1')], [401, 401, 429], 'with Redis both instances share one budget')

  await stop(redis)
  await new Promise((resolve) => setTimeout(resolve, 300))
  const during = []
  for (let i = 0; i < 3; i++) during.push(await login(first.app, '203.0.113.2'))
  t.same(during, [401, 401, 429], 'Redis down: the limit still holds on this instance, from memory')
  t.same([await login(second, '203.0.113.2'), await login(second, '203.0.113.2'), await login(second, '203.0.113.2')], [401, 401, 429], 'and per instance')
  const warnings = lines.filter((line) => /rate limits fall back/.test(line.msg))
  t.equal(warnings.length, 1, 'the outage is logged once, however many requests meet it')

  redis = await startRedis(port)
  const deadline = Date.now() + 10_000
  while (!lines.some((line) => /rate limits are shared again/.test(line.msg)) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.ok(lines.some((line) => /rate limits are shared again/.test(line.msg)), 'the return of Redis is logged')
  // Let the second instance reconnect too.
  await new Promise((resolve) => setTimeout(resolve, 2_500))
  t.same([await login(first.app, '203.0.113.3'), await login(second, '203.0.113.3'), await login(first.app, '203.0.113.3')], [401, 401, 429], 'Redis back: the budget is shared again')
})
