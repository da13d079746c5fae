// Where a right code's time goes (`npx tsx bench/profile-verify.ts [challenges]`): the app runs
// in this process as `npm start` runs it (info logs to a file descriptor, every hook and limit on),
// bench/load.ts drives right codes at it over HTTP from its own process, and the V8 profiler
// samples this process meanwhile. Prints self time by package or source file, and the top functions.
// BENCH_SCENARIO=login profiles password logins instead (each hands an SMS to the fake Twilio),
// with the tests' cheap argon2 so that what shows is everything a login costs besides its hash.
import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { buildTestApp, enrolledUser, startLogin, STRONG_PASSWORD, TEST_API_KEY, type TestApp } from '../test/helpers/app.js'
import { OUT_OF_REACH_LIMITS } from './out-of-reach-limits.js'
import type { LoadResult, LoadSpec } from './load.js'

const CHALLENGES = Number(process.argv[2] ?? 2000)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const SCENARIO = process.env.BENCH_SCENARIO === 'login' ? 'login' : 'verify'

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }

function where (url: string): string {
  if (url === '') return '(native / v8)'
  const modules = url.lastIndexOf('node_modules/')
  if (modules >= 0) {
    const rest = url.slice(modules + 'node_modules/'.length).split('/')
    return rest[0]?.startsWith('@') === true ? `${rest[0]}/${rest[1]}` : rest[0] ?? url
  }
  if (url.startsWith('node:')) return url
  const src = url.indexOf('/src/')
  return src >= 0 ? url.slice(src + 1) : url
}

async function loadRun (spec: LoadSpec): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), 'spa-profile-'))
  const file = join(dir, 'spec.json')
  writeFileSync(file, JSON.stringify(spec))
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/load.ts', file], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  await new Promise((resolve) => child.on('exit', resolve))
  return JSON.parse(out.trim().split('\n').at(-1) as string) as LoadResult
}

async function main (): Promise<void> {
  const teardowns: Array<() => unknown> = []
  const host = { teardown: (fn: () => unknown) => { teardowns.unshift(fn) } }
  const logFile = join(mkdtempSync(join(tmpdir(), 'spa-profile-log-')), 'service.log')
  const ctx: TestApp = await buildTestApp(host, {
    env: { LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info', RESEND_COOLDOWN_SECONDS: '0', ...OUT_OF_REACH_LIMITS },
    logStream: pino.destination({ dest: logFile, sync: process.env.BENCH_LOG_SYNC !== '0' })
  })
  const address = await ctx.app.listen({ port: 0, host: '127.0.0.1' })

  process.stderr.write(`seeding ${CHALLENGES} challenges\n`)
  const challenges: Array<{ challengeId: string, code: string, email: string }> = []
  for (let i = 0; i < CHALLENGES; i++) {
    const user = await enrolledUser(ctx, i)
    const login = await startLogin(ctx, user)
    challenges.push({ challengeId: login.challengeId, code: ctx.twilio.lastCodeFor(user.number) as string, email: user.email })
  }
  const auth = { authorization: `Bearer ${TEST_API_KEY}` }
  const spec = (list: typeof challenges): LoadSpec => ({
    url: address, connections: CONNECTIONS, amount: list.length,
    requests: list.map((c) => SCENARIO === 'login'
      ? { method: 'POST', path: '/v1/logins', body: { email: c.email, password: STRONG_PASSWORD }, headers: auth }
      : { method: 'POST', path: `/v1/logins/${c.challengeId}/verify`, body: { code: c.code }, headers: auth })
  })
  // A fifth warms the JIT and the pool up, unprofiled.
  const warm = Math.floor(CHALLENGES / 5)
  await loadRun(spec(challenges.slice(0, warm)))

  if (process.env.BENCH_PAUSE_S !== undefined) {
    // Time to attach strace or perf to this pid for the measured run only.
    process.stderr.write(`pid ${process.pid}: measured run in ${process.env.BENCH_PAUSE_S} s\n`)
    await new Promise((resolve) => setTimeout(resolve, Number(process.env.BENCH_PAUSE_S) * 1000))
  }
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 200 })
  if (process.env.BENCH_PROFILE !== '0') await session.post('Profiler.start')
  // Each round reopens the same challenges (their codes stay live for ten minutes), so a few
  // hundred seeded challenges give thousands of measured right codes.
  const measured = challenges.slice(warm)
  const ids = measured.map((c) => c.challengeId)
  let cpuMicros = 0
  const rounds: LoadResult[] = []
  for (let round = 0; round < ROUNDS; round++) {
    await ctx.db.prisma.otpChallenge.updateMany({ where: { id: { in: ids } }, data: { completedAt: null } })
    const cpu0 = process.cpuUsage()
    rounds.push(await loadRun(spec(measured)))
    const used = process.cpuUsage(cpu0)
    cpuMicros += used.user + used.system
  }
  const result = {
    requests: rounds.reduce((n, r) => n + r.requests, 0),
    rps: Math.round(rounds.reduce((n, r) => n + r.requests, 0) / rounds.reduce((s, r) => s + r.seconds, 0)),
    p50: Math.max(...rounds.map((r) => r.p50)),
    p99: Math.max(...rounds.map((r) => r.p99)),
    statusCodes: rounds.reduce<Record<string, number>>((all, r) => {
      for (const [code, n] of Object.entries(r.statusCodes)) all[code] = (all[code] ?? 0) + n
      return all
    }, {})
  }
  const cpu = { user: cpuMicros, system: 0 }
  if (process.env.BENCH_PROFILE === '0') {
    process.stdout.write(`${result.requests} ${SCENARIO === 'login' ? 'logins' : 'right codes'} at ${CONNECTIONS} connections: ${result.rps} req/s, p99 ${result.p99} ms, status ${JSON.stringify(result.statusCodes)}; process CPU ${((cpu.user + cpu.system) / 1000 / result.requests).toFixed(3)} ms per request\n`)
    for (const fn of teardowns) await fn()
    return
  }
  const { profile } = await session.post('Profiler.stop') as { profile: { nodes: ProfileNode[], samples: number[] } }

  const hits = new Map<number, number>()
  for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1)
  const byPlace = new Map<string, number>()
  const byFunction = new Map<string, number>()
  let total = 0
  for (const node of profile.nodes) {
    const n = hits.get(node.id) ?? 0
    if (n === 0 || node.callFrame.functionName === '(idle)') continue
    total += n
    const place = node.callFrame.url === '' ? node.callFrame.functionName : where(node.callFrame.url)
    byPlace.set(place, (byPlace.get(place) ?? 0) + n)
    const fn = `${node.callFrame.functionName || '(anonymous)'} ${where(node.callFrame.url)}:${node.callFrame.lineNumber + 1}`
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + n)
  }
  // Inclusive time of the service's own functions (their synchronous part: an await ends a stack).
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]))
  const inclusive = new Map<number, number>()
  const subtree = (id: number): number => {
    const known = inclusive.get(id)
    if (known !== undefined) return known
    const node = nodes.get(id) as ProfileNode
    const sum = (hits.get(id) ?? 0) + (node.children ?? []).reduce((acc, child) => acc + subtree(child), 0)
    inclusive.set(id, sum)
    return sum
  }
  const ownCode = new Map<string, number>()
  for (const node of profile.nodes) {
    if (!node.callFrame.url.includes('/src/') || node.callFrame.url.includes('node_modules')) continue
    const fn = `${node.callFrame.functionName || '(anonymous)'} ${where(node.callFrame.url)}:${node.callFrame.lineNumber + 1}`
    // A recursive or re-entered function is counted once per distinct stack position.
    ownCode.set(fn, (ownCode.get(fn) ?? 0) + subtree(node.id))
  }
  const cpuMs = (cpu.user + cpu.system) / 1000
  const top = (map: Map<string, number>, n: number) => [...map].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([name, count]) => `  ${(100 * count / total).toFixed(1).padStart(5)}%  ${name}`).join('\n')
  process.stdout.write(`${result.requests} ${SCENARIO === 'login' ? 'logins' : 'right codes'} at ${CONNECTIONS} connections: ${result.rps} req/s, p50 ${result.p50} ms, p99 ${result.p99} ms, ` +
    `status ${JSON.stringify(result.statusCodes)}\nprocess CPU ${(cpuMs / result.requests).toFixed(3)} ms per request\n` +
    `\nbusy samples by place:\n${top(byPlace, 25)}\n\ntop functions:\n${top(byFunction, 30)}\n\nthe service's functions, inclusive:\n${top(ownCode, 25)}\n`)
  for (const fn of teardowns) await fn()
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1) })
