// `npx tsx bench/heap-profile.ts`: where the service's memory is after load (issue 6, RSS).
// Builds and starts the service the way bench/run.ts does (fresh PostgreSQL database, fake
// Twilio), drives a few thousand logins, sends, verifies, recoveries and wrong passwords, then
// asks the service for a heap snapshot through --heapsnapshot-signal (no debug route in the
// service). Prints RSS, the V8 heap by space before and after the snapshot's full GC, the
// largest anonymous mappings (native memory: argon2 blocks, malloc arenas), and what the live
// heap is made of: self size by constructor, and the largest retained objects with a path
// from the roots. HEAP_SERVICE_FLAGS adds node flags to the service, HEAP_LOGINS sets the load,
// HEAP_MALLOC_STATS=1 has gdb print glibc's malloc statistics and trim the malloc heap.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { startFakeTwilio, extractCode } from '../test/helpers/fake-twilio.js'
import { freePort } from '../test/helpers/free-port.js'
import { apiCall } from './api-call.js'
import { OUT_OF_REACH_LIMITS } from './out-of-reach-limits.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const ADMIN_URL = process.env.BENCH_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const API_KEY = 'heap-bootstrap-key-' + randomBytes(12).toString('hex')
const PASSWORD = 'Pirouette-Jete-1987!'
const USERS = 40
const LOGINS = Number(process.env.HEAP_LOGINS ?? 600)
const SERVICE_FLAGS = (process.env.HEAP_SERVICE_FLAGS ?? '').split(' ').filter((flag) => flag !== '')
const log = (line: string) => process.stderr.write(`[heap] ${line}\n`)

async function admin (sql: string) {
  const client = new pg.Client({ connectionString: ADMIN_URL })
  await client.connect()
  try { await client.query(sql) } finally { await client.end() }
}

async function pool (count: number, parallel: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, async () => {
    while (next < count) await fn(next++)
  }))
}

// --- memory readings ----------------------------------------------------------------------

const mb = (bytes: number) => Math.round(bytes / 1048576 * 10) / 10

function procStatus (pid: number) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024
  return { rss: mb(kb('VmRSS')), anon: mb(kb('RssAnon')), file: mb(kb('RssFile')) }
}

/** Resident anonymous mappings of 4 MB and more: malloc arenas, argon2's blocks, V8 spaces. */
function bigMappings (pid: number): string[] {
  const out: Array<{ rss: number, line: string }> = []
  let current: { range: string, name: string } | undefined
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line)
    if (head !== null) {
      current = { range: `${mb(parseInt(head[2]!, 16) - parseInt(head[1]!, 16))} MB mapped`, name: head[3] === '' ? '[anon]' : head[3]! }
      continue
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line)
    if (rss !== null && current !== undefined && Number(rss[1]) >= 4096 && !current.name.startsWith('/')) {
      out.push({ rss: Number(rss[1]) * 1024, line: `${String(mb(Number(rss[1]) * 1024)).padStart(7)} MB resident of ${current.range} ${current.name}` })
    }
  }
  return out.sort((a, b) => b.rss - a.rss).slice(0, 15).map((m) => m.line)
}

async function heapSpaces (base: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text()
  const out: Record<string, number> = {}
  for (const match of text.matchAll(/^nodejs_heap_space_size_(used|total)_bytes\{space="(\w+)"\} (\S+)$/gm)) {
    if (Number(match[3]) > 0) out[`${match[2]!}_${match[1]!}`] = mb(Number(match[3]))
  }
  for (const name of ['nodejs_heap_size_total_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_external_memory_bytes']) {
    const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)
    out[name.replace(/^nodejs_|_bytes$/g, '')] = mb(Number(match?.[1] ?? NaN))
  }
  return out
}

// --- heap snapshot analysis ---------------------------------------------------------------

interface Snapshot {
  snapshot: { meta: { node_fields: string[], node_types: [string[]], edge_fields: string[], edge_types: [string[]] }, node_count: number }
  nodes: number[]
  edges: number[]
  strings: string[]
}

function analyse (file: string) {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot
  const { meta } = snap.snapshot
  const nf = meta.node_fields.length
  const ef = meta.edge_fields.length
  const nType = meta.node_fields.indexOf('type')
  const nName = meta.node_fields.indexOf('name')
  const nSelf = meta.node_fields.indexOf('self_size')
  const nEdges = meta.node_fields.indexOf('edge_count')
  const eType = meta.edge_fields.indexOf('type')
  const eName = meta.edge_fields.indexOf('name_or_index')
  const eTo = meta.edge_fields.indexOf('to_node')
  const nodeTypes = meta.node_types[0]
  const edgeTypes = meta.edge_types[0]
  const weak = edgeTypes.indexOf('weak')
  const count = snap.nodes.length / nf

  const firstEdge = new Uint32Array(count + 1)
  for (let i = 0, e = 0; i < count; i++) { firstEdge[i] = e; e += snap.nodes[i * nf + nEdges]! * ef }
  firstEdge[count] = snap.edges.length
  const label = (i: number) => {
    const type = nodeTypes[snap.nodes[i * nf + nType]!]!
    const name = snap.strings[snap.nodes[i * nf + nName]!]!
    return type === 'object' || type === 'native' || type === 'closure' ? `${name} (${type})` : `(${type})${type === 'string' || type === 'concatenated string' ? '' : ' ' + name.slice(0, 40)}`
  }
  const edgeLabel = (e: number) => {
    const type = edgeTypes[snap.edges[e + eType]!]!
    const value = snap.edges[e + eName]!
    return type === 'element' || type === 'hidden' ? `[${value}]` : String(snap.strings[value] ?? value)
  }

  // Self size by constructor.
  const byName = new Map<string, { count: number, self: number }>()
  let total = 0
  for (let i = 0; i < count; i++) {
    const self = snap.nodes[i * nf + nSelf]!
    total += self
    const key = label(i)
    const entry = byName.get(key) ?? { count: 0, self: 0 }
    entry.count++
    entry.self += self
    byName.set(key, entry)
  }

  // Dominators (Cooper, Harvey & Kennedy) over strong edges, from the synthetic root (node 0).
  // Post-order numbers: the iteration below visits objects in reverse post-order.
  const order = new Int32Array(count).fill(-1)
  const byOrder = new Int32Array(count)
  // The depth-first tree gives each object one path from the roots to print.
  const parent = new Int32Array(count).fill(-1)
  const parentEdge = new Int32Array(count).fill(-1)
  {
    const stack = [0]
    const cursor = new Uint32Array(count)
    const seen = new Uint8Array(count)
    seen[0] = 1
    for (let i = 0; i < count; i++) cursor[i] = firstEdge[i]!
    let n = 0
    while (stack.length > 0) {
      const v = stack[stack.length - 1]!
      let pushed = false
      while (cursor[v]! < firstEdge[v + 1]!) {
        const e = cursor[v]!
        cursor[v] = e + ef
        if (snap.edges[e + eType] === weak) continue
        const w = snap.edges[e + eTo]! / nf
        if (seen[w] === 1) continue
        seen[w] = 1
        parent[w] = v
        parentEdge[w] = e
        stack.push(w)
        pushed = true
        break
      }
      if (!pushed) { stack.pop(); order[v] = n; byOrder[n] = v; n++ }
    }
  }
  // Predecessors over strong edges, reachable nodes only.
  const predCount = new Uint32Array(count + 1)
  for (let v = 0; v < count; v++) {
    if (order[v] === -1) continue
    for (let e = firstEdge[v]!; e < firstEdge[v + 1]!; e += ef) {
      if (snap.edges[e + eType] === weak) continue
      predCount[snap.edges[e + eTo]! / nf + 1]!++
    }
  }
  for (let i = 1; i <= count; i++) predCount[i]! += predCount[i - 1]!
  const preds = new Int32Array(predCount[count]!)
  const fill = predCount.slice(0, count)
  for (let v = 0; v < count; v++) {
    if (order[v] === -1) continue
    for (let e = firstEdge[v]!; e < firstEdge[v + 1]!; e += ef) {
      if (snap.edges[e + eType] === weak) continue
      const w = snap.edges[e + eTo]! / nf
      preds[fill[w]!++] = v
    }
  }
  const idom = new Int32Array(count).fill(-1)
  idom[0] = 0
  const reachable = order.reduce((sum, o) => sum + (o === -1 ? 0 : 1), 0)
  for (let changed = true; changed;) {
    changed = false
    for (let k = reachable - 2; k >= 0; k--) {
      const v = byOrder[k]!
      let dom = -1
      for (let p = predCount[v]!; p < predCount[v + 1]!; p++) {
        const u = preds[p]!
        if (idom[u] === -1) continue
        if (dom === -1) { dom = u; continue }
        let a = u
        let b = dom
        while (a !== b) {
          while (order[a]! < order[b]!) a = idom[a]!
          while (order[b]! < order[a]!) b = idom[b]!
        }
        dom = a
      }
      if (dom !== -1 && idom[v] !== dom) { idom[v] = dom; changed = true }
    }
  }
  const retained = new Float64Array(count)
  for (let k = 0; k < reachable; k++) {
    const v = byOrder[k]!
    retained[v]! += snap.nodes[v * nf + nSelf]!
    if (v !== 0) retained[idom[v]!]! += retained[v]!
  }
  const path = (v: number) => {
    const steps: string[] = []
    for (let at = v; parent[at]! > 0 && steps.length < 12; at = parent[at]!) steps.push(`${label(parent[at]!)} .${edgeLabel(parentEdge[at]!)}`)
    return steps.reverse().join(' → ')
  }
  // The largest retainers that are not merely the dominators of bigger ones already shown.
  const candidates = Array.from({ length: count }, (_, i) => i)
    .filter((i) => order[i] !== -1 && i !== 0 && retained[i]! > 256 * 1024 && !['synthetic', 'hidden', 'code'].includes(nodeTypes[snap.nodes[i * nf + nType]!]!))
    .sort((a, b) => retained[b]! - retained[a]!)
  return {
    totalMb: mb(total),
    nodes: count,
    byConstructor: [...byName.entries()].sort((a, b) => b[1].self - a[1].self).slice(0, 30)
      .map(([name, e]) => `${String(mb(e.self)).padStart(7)} MB ${String(e.count).padStart(8)}× ${name}`),
    largest: candidates.slice(0, 25).map((i) => `${String(mb(retained[i]!)).padStart(7)} MB retained by ${label(i)}\n          via ${path(i)}`)
  }
}

// --- the run ------------------------------------------------------------------------------

async function main () {
  log('building')
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] })
  const dbName = `spa_heap_${process.pid}_${randomBytes(4).toString('hex')}`
  await admin(`CREATE DATABASE "${dbName}"`)
  const dataDir = mkdtempSync(join(tmpdir(), 'spa-heap-data-'))
  const snapDir = mkdtempSync(join(tmpdir(), 'spa-heap-snap-'))
  const twilio = await startFakeTwilio()
  let child: ChildProcess | undefined
  try {
    const url = new URL(ADMIN_URL)
    url.pathname = `/${dbName}`
    const port = await freePort()
    // The same process settings as bench/run.ts, plus the snapshot signal.
    child = spawn(process.execPath, ['--require', './dist/thread-pool.cjs', `--heapsnapshot-signal=SIGUSR2`, `--diagnostic-dir=${snapDir}`, ...SERVICE_FLAGS, 'dist/server.js'], {
      cwd: ROOT,
      env: {
        ...process.env,
        // This script's own heap flags are not the service's.
        NODE_OPTIONS: '',
        MALLOC_ARENA_MAX: '2',
        // The allocator settings to try (MALLOC_*, LD_PRELOAD) come from this script's environment.
        ...Object.fromEntries(Object.entries(process.env).filter(([name]) => name.startsWith('MALLOC_') || name === 'LD_PRELOAD')),
        NODE_ENV: 'production',
        DATABASE_URL: url.toString(),
        DATA_DIR: dataDir,
        SECRET_KEY: randomBytes(32).toString('base64'),
        BOOTSTRAP_API_KEY: API_KEY,
        LOG_LEVEL: 'info',
        RESEND_COOLDOWN_SECONDS: '0',
        ...OUT_OF_REACH_LIMITS,
        ...twilio.env,
        PORT: String(port),
        HOST: '127.0.0.1'
      },
      stdio: ['ignore', 'ignore', 'inherit']
    })
    const pid = child.pid as number
    const base = `http://127.0.0.1:${port}`
    for (;;) {
      if (child.exitCode !== null) throw new Error(`service exited ${child.exitCode}`)
      try { if ((await fetch(`${base}/ready`)).status === 200) break } catch {}
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    const idle = { ...procStatus(pid), heap: await heapSpaces(base) }

    const call = async (method: string, path: string, body?: unknown) => await apiCall(base, API_KEY, method, path, body)
    let scanned = 0
    const lastCode = new Map<string, string>()
    const codeFor = (number: string) => {
      for (; scanned < twilio.requests.length; scanned++) {
        const r = twilio.requests[scanned]!
        const code = r.sid === null ? undefined : extractCode(r.body ?? r.twiml ?? '')
        if (code !== undefined) lastCode.set(r.to, code)
      }
      return lastCode.get(number) ?? '000000'
    }

    // Peaks between the readings: memory that is freed before the end still leaves the malloc heap grown.
    const peak = { rss: 0, heapTotal: 0, external: 0 }
    const sampler = setInterval(() => {
      heapSpaces(base).then((heap) => {
        peak.rss = Math.max(peak.rss, procStatus(pid).rss)
        peak.heapTotal = Math.max(peak.heapTotal, heap.heap_size_total!)
        peak.external = Math.max(peak.external, heap.external_memory!)
      }, () => {})
    }, 250)

    log(`enrolling ${USERS} users`)
    const users: Array<{ id: string, email: string, number: string, recoveryCode: string }> = []
    await pool(USERS, 8, async (i) => {
      const email = `heap.${randomBytes(6).toString('hex')}@studio.example`
      const user = await call('POST', '/v1/users', { email, password: PASSWORD })
      const number = `+1415555${String(1000 + i).padStart(4, '0')}`
      const started = await call('POST', `/v1/users/${user.json.id}/phones`, { phoneNumber: number, channel: 'sms' })
      const verified = await call('POST', `/v1/users/${user.json.id}/phones/verify`, { verificationId: started.json.verificationId, code: codeFor(number) })
      users.push({ id: user.json.id, email, number, recoveryCode: verified.json.recoveryCode })
    })

    // Logins with their follow-ups, at the bench's concurrency, then unknown emails and reads.
    log(`${LOGINS} logins, each followed by a send, a wrong code, and the right code or the recovery code`)
    const loginsStarted = Date.now()
    const statuses = new Map<string, number>()
    const count = (what: string, status: number) => statuses.set(`${what} ${status}`, (statuses.get(`${what} ${status}`) ?? 0) + 1)
    // A user's logins run one after another: a recovery login replaces their recovery code.
    await pool(USERS, USERS, async (u) => {
      const user = users[u]!
      for (let i = u; i < LOGINS; i += USERS) {
        const login = await call('POST', '/v1/logins', { email: user.email, password: PASSWORD })
        count('login', login.status)
        if (login.status !== 200) continue
        const id = login.json.challengeId as string
        count('send', (await call('POST', `/v1/logins/${id}/send`, { channel: 'sms' })).status)
        const code = codeFor(user.number)
        count('verify-wrong', (await call('POST', `/v1/logins/${id}/verify`, { code: code === '000000' ? '111111' : '000000' })).status)
        if (i % 2 === 0) {
          count('verify', (await call('POST', `/v1/logins/${id}/verify`, { code })).status)
        } else {
          const recovered = await call('POST', `/v1/logins/${id}/recovery`, { recoveryCode: user.recoveryCode })
          count('recovery', recovered.status)
          if (recovered.status === 200) user.recoveryCode = recovered.json.recoveryCode
        }
      }
    })
    const loginSeconds = (Date.now() - loginsStarted) / 1000
    log('wrong passwords for unknown emails, user reads, /health')
    await pool(LOGINS * 2, 50, async (i) => {
      if (i % 3 === 0) count('unknown-email', (await call('POST', '/v1/logins', { email: `flood.${randomBytes(8).toString('hex')}@studio.example`, password: 'not the right password' })).status)
      else if (i % 3 === 1) count('get-user', (await call('GET', `/v1/users/${users[i % USERS]!.id}`)).status)
      else count('health', (await call('GET', '/health')).status)
    })

    clearInterval(sampler)
    const afterLoad = { ...procStatus(pid), heap: await heapSpaces(base) }
    const mappings = bigMappings(pid)
    // How much of the malloc heap is free but still resident: glibc's own figures (on the
    // service's stderr) and the RSS once malloc_trim has handed free pages back, through gdb.
    let afterTrim: ReturnType<typeof procStatus> | undefined
    if (process.env.HEAP_MALLOC_STATS === '1') {
      execFileSync('gdb', ['-p', String(pid), '-batch', '-ex', 'call (void) malloc_stats()', '-ex', 'call (int) malloc_info(0, *(void **) &stderr)', '-ex', 'call (int) malloc_trim(0)'], { stdio: 'ignore' })
      afterTrim = procStatus(pid)
    }
    log('heap snapshot (a full GC first)')
    process.kill(pid, 'SIGUSR2')
    // The snapshot is written on the main thread: once /health answers again it is complete.
    let file: string | undefined
    for (let waited = 0; file === undefined && waited < 600; waited++) {
      await new Promise((resolve) => setTimeout(resolve, 500))
      const found = readdirSync(snapDir).find((name) => name.endsWith('.heapsnapshot'))
      if (found !== undefined) {
        await fetch(`${base}/health`)
        file = join(snapDir, found)
      }
    }
    if (file === undefined) throw new Error('no heap snapshot was written')
    const afterGc = { ...procStatus(pid), heap: await heapSpaces(base) }
    child.kill('SIGTERM')

    log(`analysing ${mb(statSync(file).size)} MB of snapshot`)
    const report = analyse(file)
    const lines = [
      `requests: ${[...statuses.entries()].map(([k, v]) => `${k}×${v}`).join(', ')}`,
      `logins with their follow-ups: ${(LOGINS / loginSeconds).toFixed(1)} per second`,
      `idle:          ${JSON.stringify(idle)}`,
      `after load:    ${JSON.stringify(afterLoad)}`,
      `peaks during load (sampled every 250 ms): ${JSON.stringify(peak)}`,
      ...(afterTrim === undefined ? [] : [`after malloc_trim(0): ${JSON.stringify(afterTrim)}`]),
      `after full GC: ${JSON.stringify(afterGc)}`,
      '',
      'largest resident anonymous mappings after load:',
      ...mappings.map((line) => '  ' + line),
      '',
      `live heap in the snapshot: ${report.totalMb} MB in ${report.nodes} objects; self size by constructor:`,
      ...report.byConstructor.map((line) => '  ' + line),
      '',
      'largest retainers (retained size, path from the roots):',
      ...report.largest.map((line) => '  ' + line)
    ]
    process.stdout.write(lines.join('\n') + '\n')
  } finally {
    if (child !== undefined && child.exitCode === null) child.kill('SIGKILL')
    await twilio.close()
    await admin(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`).catch(() => {})
    rmSync(dataDir, { recursive: true, force: true })
    rmSync(snapDir, { recursive: true, force: true })
  }
}

main().catch((err) => {
  process.stderr.write(`heap profile failed: ${err?.stack ?? err}\n`)
  process.exit(1)
})
