import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import t from 'tap'
import { POOL_THREAD_NICE } from '../src/thread-pool.cjs'

// Runs in a child started the way `npm start` starts the service (the preload first), and
// reports each thread's nice value and CPU ticks before and after a few argon2 hashes.
const probe = `
const fs = require('node:fs')
const argon2 = require('argon2')
const threads = () => Object.fromEntries(fs.readdirSync('/proc/self/task').map((tid) => {
  const stat = fs.readFileSync('/proc/self/task/' + tid + '/stat', 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return [tid, { nice: Number(f[16]), ticks: Number(f[11]) + Number(f[12]) }]
}))
const before = threads()
Promise.all(Array.from({ length: 8 }, () => argon2.hash('a password to hash', { memoryCost: 19456, timeCost: 4, parallelism: 1 }))).then(() => {
  process.stdout.write(JSON.stringify({ pid: process.pid, size: process.env.UV_THREADPOOL_SIZE, before, after: threads() }))
})`

t.test('the thread pool runs its threads, and so every argon2 hash, at a lower priority than the event loop', { skip: existsSync('/proc/self/task') ? false : 'no /proc: per-thread priorities are Linux only' }, async (t) => {
  const out = execFileSync(process.execPath, ['--require', 'tsx/cjs', '--require', './src/thread-pool.cts', '-e', probe], { env: { ...process.env, UV_THREADPOOL_SIZE: '' } })
  const { pid, size, before, after } = JSON.parse(out.toString()) as { pid: number, size: string, before: Record<string, { nice: number, ticks: number }>, after: Record<string, { nice: number, ticks: number }> }
  const niced = Object.keys(after).filter((tid) => after[tid]!.nice === POOL_THREAD_NICE)
  t.equal(niced.length, Number(size), `all ${size} pool threads are niced`)
  t.equal(after[String(pid)]!.nice, 0, 'the event loop thread keeps its priority')
  const hashingTicks = niced.reduce((sum, tid) => sum + after[tid]!.ticks - (before[tid]?.ticks ?? 0), 0)
  const otherTicks = Object.keys(after).filter((tid) => !niced.includes(tid)).reduce((sum, tid) => sum + after[tid]!.ticks - (before[tid]?.ticks ?? 0), 0)
  t.ok(hashingTicks > otherTicks, `the hashes ran on the niced threads (${hashingTicks} ticks there, ${otherTicks} elsewhere)`)
})
