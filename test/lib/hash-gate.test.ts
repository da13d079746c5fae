import t from 'tap'
import { ApiError } from '../../src/lib/errors.js'
import { createHashGate } from '../../src/lib/hash-gate.js'

/** A job that runs until `finish()` is called, recording when it started. */
function job (log: string[], name: string) {
  let finish!: () => void
  const done = new Promise<void>((resolve) => { finish = resolve })
  return {
    finish: () => finish(),
    work: async () => { log.push(name); await done; return name }
  }
}

t.test('runs at most `concurrency` jobs and starts the waiters in arrival order', async (t) => {
  const gate = createHashGate({ concurrency: 2, queueMax: 10, maxWaitMs: 5_000 })
  const log: string[] = []
  const jobs = ['a', 'b', 'c', 'd'].map((name) => job(log, name))
  const results = jobs.map((j) => gate.run(j.work))
  await new Promise((resolve) => setImmediate(resolve))
  t.same(log, ['a', 'b'], 'two run, two wait')
  t.equal(gate.inFlight, 2)
  t.equal(gate.queued, 2)
  jobs[1]!.finish()
  await results[1]
  await new Promise((resolve) => setImmediate(resolve))
  t.same(log, ['a', 'b', 'c'], 'the first waiter takes the freed slot')
  for (const j of jobs) j.finish()
  t.same(await Promise.all(results), ['a', 'b', 'c', 'd'])
  t.equal(gate.inFlight, 0)
  t.equal(gate.queued, 0)
})

t.test('a full queue refuses at once with 503 overloaded and Retry-After', async (t) => {
  const gate = createHashGate({ concurrency: 1, queueMax: 1, maxWaitMs: 5_000 })
  const log: string[] = []
  const running = job(log, 'running')
  const waiting = job(log, 'waiting')
  const first = gate.run(running.work)
  const second = gate.run(waiting.work)
  const started = Date.now()
  const refused = await gate.run(async () => 'never').catch((err: unknown) => err)
  t.ok(Date.now() - started < 50, 'no waiting')
  t.ok(refused instanceof ApiError)
  t.match(refused, { code: 'overloaded', status: 503, extensions: { retryAfter: 5 } })
  t.same(log, ['running'], 'the refused job never ran')
  running.finish()
  waiting.finish()
  t.same(await Promise.all([first, second]), ['running', 'waiting'])
})

t.test('a waiter gives up after maxWaitMs, leaves the queue, and the slot still frees', async (t) => {
  const gate = createHashGate({ concurrency: 1, queueMax: 5, maxWaitMs: 100, shareWhenOverloaded: 1 })
  const log: string[] = []
  const running = job(log, 'running')
  const first = gate.run(running.work)
  const started = Date.now()
  const refused = await gate.run(async () => 'late').catch((err: unknown) => err)
  const waited = Date.now() - started
  t.match(refused, { code: 'overloaded', extensions: { retryAfter: 1 } })
  t.ok(waited >= 90 && waited < 1_000, `waited ${waited} ms`)
  t.equal(gate.queued, 0, 'the timed-out waiter left the queue')
  running.finish()
  await first
  t.equal(await gate.run(async () => 'next'), 'next', 'the gate is usable afterwards')
  t.equal(gate.inFlight, 0)
})

t.test('a failing job frees its slot and passes its error through', async (t) => {
  const gate = createHashGate({ concurrency: 1, queueMax: 0, maxWaitMs: 100 })
  await t.rejects(gate.run(async () => { throw new Error('boom') }), /boom/)
  t.equal(gate.inFlight, 0)
  t.equal(await gate.run(async () => 1), 1)
})

t.test('refuseIfFull throws only when a run would be refused at once', async (t) => {
  const gate = createHashGate({ concurrency: 1, queueMax: 1, maxWaitMs: 3_000, shareWhenOverloaded: 1 })
  const log: string[] = []
  t.doesNotThrow(() => { gate.refuseIfFull() }, 'an idle gate admits')
  const running = job(log, 'running')
  const first = gate.run(running.work)
  t.doesNotThrow(() => { gate.refuseIfFull() }, 'a free queue place still admits')
  const waiting = job(log, 'waiting')
  const second = gate.run(waiting.work)
  t.throws(() => { gate.refuseIfFull() }, { code: 'overloaded', extensions: { retryAfter: 3 } })
  running.finish()
  await first
  t.doesNotThrow(() => { gate.refuseIfFull() }, 'admits again once a slot frees')
  waiting.finish()
  await second
})

t.test('whenRoom waits until the queue is at most half full, then calls each listener once', async (t) => {
  const gate = createHashGate({ concurrency: 1, queueMax: 4, maxWaitMs: 5_000 })
  let calls = 0
  gate.whenRoom(() => { calls++ })
  t.equal(calls, 1, 'at once while a slot is free')

  const log: string[] = []
  const jobs = ['a', 'b', 'c', 'd', 'e'].map((name) => job(log, name))
  const results = jobs.map((j) => gate.run(j.work))
  t.equal(gate.queued, 4)
  t.equal(gate.places, 0, 'no slot, no place in the queue')
  calls = 0
  gate.whenRoom(() => { calls++ })
  t.equal(calls, 0, 'not while the queue is full')
  const finish = async (name: string) => {
    jobs.find((_, i) => 'abcde'[i] === name)!.finish()
    await results['abcde'.indexOf(name)]
    await new Promise((resolve) => setImmediate(resolve))
  }
  await finish('a')
  t.equal(gate.queued, 3)
  t.equal(gate.places, 1)
  t.equal(calls, 0, 'one free place is not room yet: the next caller would fill it')
  await finish('b')
  t.equal(gate.queued, 2)
  t.equal(calls, 1, 'half the queue free is')
  await finish('c')
  t.equal(calls, 1, 'a listener is called once')
  await finish('d')
  await finish('e')
  t.equal(gate.places, 5, 'a free slot and an empty queue of four')
})

t.test('whenRoom with no queue waits for the slot; a waiter giving up also makes room', async (t) => {
  const noQueue = createHashGate({ concurrency: 1, queueMax: 0, maxWaitMs: 5_000 })
  const running = job([], 'running')
  const first = noQueue.run(running.work)
  let calls = 0
  noQueue.whenRoom(() => { calls++ })
  t.equal(calls, 0)
  running.finish()
  await first
  t.equal(calls, 1, 'called when the slot is free')

  const gate = createHashGate({ concurrency: 1, queueMax: 1, maxWaitMs: 50 })
  const holding = job([], 'holding')
  const held = gate.run(holding.work)
  const waiter = gate.run(async () => 'late').catch((err: unknown) => err)
  let roomCalls = 0
  gate.whenRoom(() => { roomCalls++ })
  t.equal(roomCalls, 0, 'slot taken, queue full')
  t.match(await waiter, { code: 'overloaded' }, 'the waiter gives up after maxWaitMs')
  t.equal(roomCalls, 1, 'and its place in the queue is room')
  holding.finish()
  await held
})

t.test('retryAfterSeconds is what a refusal carries', async (t) => {
  const gate = createHashGate({ concurrency: 1, queueMax: 0, maxWaitMs: 2_500 })
  t.equal(gate.retryAfterSeconds, 3)
  const running = job([], 'running')
  const first = gate.run(running.work)
  t.throws(() => { gate.refuseIfFull() }, { extensions: { retryAfter: 3 } })
  running.finish()
  await first
})

t.test('while it refuses, each hash is followed by a rest as long as itself; otherwise none', async (t) => {
  const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))
  const gate = createHashGate({ concurrency: 1, queueMax: 1, maxWaitMs: 1_000, shareWhenOverloaded: 0.5 })

  // Not refusing: the slot passes on the moment a hash ends.
  let endedAt = 0
  const calm = gate.run(async () => { await sleep(150); endedAt = performance.now() })
  const nextCalm = await gate.run(async () => performance.now())
  await calm
  t.ok(nextCalm - endedAt < 60, `the next started ${Math.round(nextCalm - endedAt)} ms after, no rest`)

  // Refusing: a third caller is turned away, and the slot rests after the running hash.
  let answeredAt = 0
  const busy = gate.run(async () => { await sleep(150); return performance.now() }).then((at) => { answeredAt = performance.now(); return at })
  const waiting = gate.run(async () => performance.now())
  await t.rejects(gate.run(async () => 0), { code: 'overloaded' }, 'the queue is full')
  const busyEnded = await busy
  t.ok(answeredAt - busyEnded < 60, 'the hash\'s own caller is answered at once, not after the rest')
  t.equal(gate.places, 0, 'during the rest the slot is still taken')
  const waitingStarted = await waiting
  const rest = waitingStarted - busyEnded
  t.ok(rest >= 130, `the waiter started ${Math.round(rest)} ms after the hash ended: a rest as long as the hash`)
  t.ok(rest < 1_000, 'and no longer than that by much')
})
