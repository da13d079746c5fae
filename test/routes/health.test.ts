import { createServer } from 'node:net'
import { test } from 'tap'
import { READY_CHECK_TIMEOUT_MS } from '../../src/lib/limits.js'
import { buildTestApp } from '../helpers/app.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'

/** A port nobody listens on: bound, then released. */
async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

test('/ready reports the database check, and no redis entry without REDIS_URL', async (t) => {
  const ctx = await buildTestApp(t)
  const ready = await ctx.app.inject({ method: 'GET', url: '/ready' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ready', checks: { database: 'ok' } })
})

test('/ready checks the configured Redis too', async (t) => {
  const ctx = await buildTestApp(t, { env: { REDIS_URL: 'redis://127.0.0.1:6379' } })
  const ready = await ctx.app.inject({ method: 'GET', url: '/ready' })
  t.equal(ready.statusCode, 200, ready.body)
  t.same(ready.json(), { status: 'ready', checks: { database: 'ok', redis: 'ok' } })
})

test('a Redis on a closed port makes /ready answer 503 at once, naming the failed check', async (t) => {
  const ctx = await buildTestApp(t, { env: { REDIS_URL: `redis://127.0.0.1:${await closedPort()}` } })
  const started = Date.now()
  const ready = await ctx.app.inject({ method: 'GET', url: '/ready' })
  const took = Date.now() - started
  t.equal(ready.statusCode, 503)
  t.match(ready.headers['content-type'], /^application\/problem\+json/)
  t.equal(ready.headers['retry-after'], '5')
  t.match(ready.json(), { code: 'unavailable', checks: { database: 'ok', redis: 'failed' } })
  t.ok(took < READY_CHECK_TIMEOUT_MS, `answered in ${took} ms, before the check timeout`)
  t.equal((await ctx.app.inject({ method: 'GET', url: '/health' })).statusCode, 200, 'liveness does not depend on Redis')
})

test('a Redis that stops answering makes /ready 503 within the check timeout, and 200 again when it is back', async (t) => {
  const proxy = await startTcpProxy(t, { host: '127.0.0.1', port: 6379 })
  const ctx = await buildTestApp(t, { env: { REDIS_URL: `redis://127.0.0.1:${proxy.port}` } })
  t.equal((await ctx.app.inject({ method: 'GET', url: '/ready' })).statusCode, 200)
  proxy.hang()
  const started = Date.now()
  const ready = await ctx.app.inject({ method: 'GET', url: '/ready' })
  const took = Date.now() - started
  t.equal(ready.statusCode, 503)
  t.match(ready.json(), { checks: { database: 'ok', redis: 'failed' } })
  t.ok(took < READY_CHECK_TIMEOUT_MS + 500, `answered in ${took} ms`)

  proxy.restore()
  const deadline = Date.now() + 10_000
  let status = 0
  while (Date.now() < deadline) {
    status = (await ctx.app.inject({ method: 'GET', url: '/ready' })).statusCode
    if (status === 200) break
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  t.equal(status, 200, 'ready again once Redis answers')
})
