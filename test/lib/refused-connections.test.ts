import t from 'tap'
import { createServer, type Server } from 'node:http'
import { createRefusedConnections } from '../../src/lib/refused-connections.js'
import { oneConnection } from '../helpers/one-connection.js'

/** A server that answers every request with its path, pausing the connection after `/refuse`. */
async function server (t: Tap.Test, maxPauseMs: number) {
  let roomListener: (() => void) | undefined
  let roomRequests = 0
  let places = 1_000
  const refused = createRefusedConnections({
    whenRoom: (listener) => { roomRequests++; roomListener = listener },
    places: () => places,
    maxPauseMs
  })
  const http: Server = createServer((req, res) => {
    if (req.url === '/refuse') refused.pauseAfter(res)
    res.end(req.url)
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    refused.resumeAll()
    http.closeAllConnections()
    await new Promise((resolve) => http.close(resolve))
  })
  const port = (http.address() as { port: number }).port
  return {
    port,
    refused,
    roomRequests: () => roomRequests,
    closeConnections () { http.closeAllConnections() },
    setPlaces (n: number) { places = n },
    announceRoom () { const listener = roomListener; roomListener = undefined; listener?.() }
  }
}

const tick = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))

t.test('a refused connection is not read again until there is room, while other connections are', async (t) => {
  const s = await server(t, 60_000)
  const flood = oneConnection(s.port)
  const other = oneConnection(s.port)
  t.teardown(() => { flood.close(); other.close() })

  const refusal = await flood.send('POST', '/refuse', { password: 'x' })
  t.equal(refusal.body, '/refuse', 'the refusal itself is answered at once')
  let nextAnswered = false
  const next = flood.send('POST', '/next').then((a) => { nextAnswered = true; return a })
  await tick(150)
  t.equal(s.refused.paused, 1)
  t.notOk(nextAnswered, 'the next request on the refused connection waits')
  const meanwhile = await other.send('GET', '/other')
  t.equal(meanwhile.body, '/other', 'another connection is answered meanwhile')
  t.notOk(nextAnswered, 'and the refused one still waits')

  s.announceRoom()
  const answer = await next
  t.equal(answer.body, '/next', 'once there is room its request is read and answered')
  t.equal(answer.localPort, refusal.localPort, 'on the same connection')
  t.equal(s.refused.paused, 0)
})

t.test('a pause never outlasts maxPauseMs, the Retry-After the client was given', async (t) => {
  const s = await server(t, 300)
  const flood = oneConnection(s.port)
  t.teardown(() => { flood.close() })
  const refusal = await flood.send('POST', '/refuse')
  const next = await flood.send('GET', '/next')
  t.equal(next.body, '/next', 'answered without any room announced')
  t.ok(next.at - refusal.at >= 140, `waited ${next.at - refusal.at} ms, at least half the pause`)
  t.ok(next.at - refusal.at < 2_000, 'and not much longer than the pause')
  t.equal(s.refused.paused, 0)
})

t.test('many connections paused together wait for one room announcement and all resume on it', async (t) => {
  const s = await server(t, 60_000)
  const clients = Array.from({ length: 5 }, () => oneConnection(s.port))
  t.teardown(() => { for (const c of clients) c.close() })
  await Promise.all(clients.map(async (c) => await c.send('POST', '/refuse')))
  await tick(50)
  t.equal(s.refused.paused, 5)
  t.equal(s.roomRequests(), 1, 'one listener for all of them')
  const next = Promise.all(clients.map(async (c) => await c.send('GET', '/next')))
  s.announceRoom()
  t.same((await next).map((a) => a.body), Array(5).fill('/next'))
  t.equal(s.refused.paused, 0)
})

t.test('room for two reads the two longest paused connections again; the others wait their pause out', async (t) => {
  const s = await server(t, 1_500)
  const clients = Array.from({ length: 4 }, () => oneConnection(s.port))
  t.teardown(() => { for (const c of clients) c.close() })
  for (const c of clients) {
    await c.send('POST', '/refuse')
    await tick(20) // paused one after another, in this order
  }
  t.equal(s.refused.paused, 4)
  const sent = Date.now()
  const next = clients.map(async (c) => await c.send('GET', '/next'))
  s.setPlaces(2)
  s.announceRoom()
  const [first, second] = await Promise.all(next.slice(0, 2))
  t.ok(first!.at - sent < 500 && second!.at - sent < 500, 'the two longest paused are answered at once')
  t.equal(s.refused.paused, 2, 'the other two are still paused')
  const [third, fourth] = await Promise.all(next.slice(2))
  t.ok(third!.at - sent >= 500 && fourth!.at - sent >= 500, 'they are answered when their pause ends')
  t.equal(s.refused.paused, 0)
})

t.test('a connection refused again and again, or closed while paused, leaves nothing behind', async (t) => {
  const s = await server(t, 20)
  const flood = oneConnection(s.port)
  for (let i = 0; i < 15; i++) {
    const refusal = await flood.send('POST', '/refuse')
    t.equal(refusal.status, 200)
  }
  await tick(60)
  t.equal(s.refused.paused, 0, 'every pause ended')
  const warnings: Error[] = []
  const onWarning = (warning: Error) => { warnings.push(warning) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  for (let i = 0; i < 12; i++) {
    await flood.send('POST', '/refuse')
    s.announceRoom()
  }
  await tick(60)
  t.same(warnings.map((w) => w.name), [], 'no close listener piled up on the socket')

  flood.close()

  // A paused connection is not read, so its client's close is seen only when the pause ends.
  const short = await server(t, 300)
  const leaving = oneConnection(short.port)
  await leaving.send('POST', '/refuse')
  await tick(50)
  leaving.close()
  await tick(500)
  t.equal(short.refused.paused, 0, 'a connection its client closed is let go when its pause ends')

  // One the server closes (shutdown's closeIdleConnections) is let go at once.
  const long = await server(t, 60_000)
  const closing = oneConnection(long.port)
  await closing.send('POST', '/refuse')
  await tick(50)
  t.equal(long.refused.paused, 1)
  long.closeConnections()
  await tick(50)
  t.equal(long.refused.paused, 0, 'a connection the server closed is forgotten')
  closing.close()
})

t.test('resumeAll reads every paused connection at once (shutdown)', async (t) => {
  const s = await server(t, 60_000)
  const flood = oneConnection(s.port)
  t.teardown(() => { flood.close() })
  await flood.send('POST', '/refuse')
  const next = flood.send('GET', '/next')
  await tick(50)
  s.refused.resumeAll()
  t.equal((await next).body, '/next')
})

t.test('app.inject responses have no connection to pause', async (t) => {
  const refused = createRefusedConnections({ whenRoom: () => { t.fail('no pause, so no wait for room') }, maxPauseMs: 1000 })
  const { default: Fastify } = await import('fastify')
  const app = Fastify()
  app.post('/refuse', async (_request, reply) => { refused.pauseAfter(reply.raw); return 'refused' })
  t.teardown(async () => { await app.close() })
  const answer = await app.inject({ method: 'POST', url: '/refuse' })
  t.equal(answer.body, 'refused')
  await tick(20)
  t.equal(refused.paused, 0)
})
