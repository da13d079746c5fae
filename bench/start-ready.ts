// `tsx bench/start-ready.ts [runs]`: only the start-to-ready part of `npm run bench`, for
// quick before/after comparisons. Starts the BUILT service (run `npm run build` first) the
// way the bench does, on a fresh PostgreSQL database whose migrations the first (unmeasured)
// start applies, then measures `runs` starts: spawn to the first 200 from /ready, and the
// CPU time and RSS at that moment. Prints each run and the medians. BENCH_DIST=<dir>[,<dir>...]
// starts other builds (one line of medians each).
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { startFakeTwilio } from '../test/helpers/fake-twilio.js'
import { freePort } from '../test/helpers/free-port.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const RUNS = Number(process.argv[2] ?? 7)
/**
 * The builds to start (copies of dist/ inside the checkout, so node_modules resolves), comma
 * separated: with several, the runs alternate between them so that other load on the machine
 * falls on each alike.
 */
const DISTS = (process.env.BENCH_DIST ?? 'dist').split(',')
const ADMIN_URL = process.env.BENCH_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

async function admin (sql: string) {
  const client = new pg.Client({ connectionString: ADMIN_URL })
  await client.connect()
  try { await client.query(sql) } finally { await client.end() }
}

function rssMb (pid: number): number {
  const match = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/)
  return Math.round(Number(match?.[1] ?? 0) / 1024 * 10) / 10
}

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100
/** User + system CPU time of a process: unlike wall time, barely moved by other load on the machine. */
function cpuMs (pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
  return Math.round((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS * 1000)
}

async function start (dist: string, env: Record<string, string>): Promise<{ readyMs: number, rss: number, cpu: number }> {
  const port = await freePort()
  const started = process.hrtime.bigint()
  const child = spawn(process.execPath, ['--require', `./${dist}/thread-pool.cjs`, `${dist}/server.js`], {
    cwd: ROOT,
    env: { ...process.env, MALLOC_ARENA_MAX: '2', ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'ignore', 'inherit']
  })
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`service exited ${child.exitCode} before it was ready`)
      try {
        if ((await fetch(`http://127.0.0.1:${port}/ready`)).status === 200) break
      } catch {}
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    return { readyMs: Number(process.hrtime.bigint() - started) / 1e6, rss: rssMb(child.pid as number), cpu: cpuMs(child.pid as number) }
  } finally {
    child.kill('SIGTERM')
    await new Promise((resolve) => child.once('exit', resolve))
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number

const name = `spa_bench_start_${process.pid}_${randomBytes(4).toString('hex')}`
const url = new URL(ADMIN_URL)
url.pathname = `/${name}`
await admin(`CREATE DATABASE "${name}"`)
const dataDir = mkdtempSync(join(tmpdir(), 'spa-bench-start-'))
const twilio = await startFakeTwilio()
try {
  const env = {
    NODE_ENV: 'production',
    DATABASE_URL: url.toString(),
    DATA_DIR: dataDir,
    SECRET_KEY: randomBytes(32).toString('base64'),
    BOOTSTRAP_API_KEY: 'bench-bootstrap-key-' + randomBytes(12).toString('hex'),
    LOG_LEVEL: 'info',
    ...twilio.env,
    ...(process.env.BENCH_REDIS_URL === undefined ? {} : { REDIS_URL: process.env.BENCH_REDIS_URL })
  }
  await start(DISTS[0] as string, env) // applies the migrations: not measured
  const runs = new Map(DISTS.map((dist) => [dist, [] as Array<{ readyMs: number, rss: number, cpu: number }>]))
  for (let i = 0; i < RUNS; i++) {
    for (const dist of DISTS) {
      const run = await start(dist, env)
      runs.get(dist)?.push(run)
      process.stderr.write(`${dist} run ${i + 1}: ready in ${run.readyMs.toFixed(0)} ms (CPU ${run.cpu} ms), RSS ${run.rss} MB\n`)
    }
  }
  for (const [dist, list] of runs) {
    process.stdout.write(JSON.stringify({ dist, runs: RUNS, medianReadyMs: Math.round(median(list.map((r) => r.readyMs))), medianCpuMs: median(list.map((r) => r.cpu)), medianRssMb: median(list.map((r) => r.rss)) }) + '\n')
  }
} finally {
  await twilio.close()
  rmSync(dataDir, { recursive: true, force: true })
  await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
}
