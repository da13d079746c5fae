// The load generator, run as its own process so its CPU is not the orchestrator's
// (which hosts the fake Twilio). Reads a spec file, drives autocannon, prints one JSON line.
import { readFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import autocannon from 'autocannon'

export interface LoadRequest { method: 'GET' | 'POST', path: string, body?: unknown, headers?: Record<string, string> }

export interface LoadSpec {
  url: string
  connections: number
  /** Seconds; ignored when `requests` is consumed one by one (`amount`). */
  duration?: number
  /** Run exactly this many requests, cycling through `requests` in order. */
  amount?: number
  requests: LoadRequest[]
  /** Replace `{random}` in bodies with a fresh value per request (unknown emails for the flood). */
  randomize?: boolean
  timeoutSeconds?: number
  /** Requests per second across all connections, sent on time (a probe), instead of as fast as answered. */
  overallRate?: number
}

export interface LoadResult {
  requests: number
  seconds: number
  rps: number
  p50: number
  p99: number
  max: number
  errors: number
  timeouts: number
  non2xx: number
  statusCodes: Record<string, number>
}

async function main () {
  const spec = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as LoadSpec
  let next = 0
  const started = process.hrtime.bigint()
  // autocannon's own duration is counted in whole sampling ticks; the last response is exact.
  let last = started
  const instance = autocannon({
    url: spec.url,
    connections: spec.connections,
    ...(spec.amount !== undefined ? { amount: spec.amount } : { duration: spec.duration ?? 5 }),
    timeout: spec.timeoutSeconds ?? 10,
    ...(spec.overallRate !== undefined ? { overallRate: spec.overallRate } : {}),
    requests: [{
      setupRequest: (req) => {
        const item = spec.requests[next++ % spec.requests.length] as LoadRequest
        let body = item.body === undefined ? undefined : JSON.stringify(item.body)
        if (spec.randomize === true && body !== undefined) body = body.replace('{random}', randomBytes(8).toString('hex'))
        return {
          ...req,
          method: item.method,
          path: item.path,
          headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...item.headers },
          ...(body === undefined ? {} : { body })
        }
      }
    }]
  })
  // Without a callback autocannon's types give only the promise; the object is its emitter too.
  ;(instance as unknown as { on: (event: 'response', listener: () => void) => void }).on('response', () => { last = process.hrtime.bigint() })
  // A run by duration can be ended early and still report (the flood ends with what it floods).
  process.once('SIGUSR2', () => { (instance as unknown as { stop: () => void }).stop() })
  const result = await instance
  const seconds = Number(last - started) / 1e9
  const codes = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, s]) => [code, (s as { count: number }).count]))
  const done = Object.values(codes).reduce((a, b) => a + b, 0)
  const out: LoadResult = {
    requests: done,
    seconds: Math.round(seconds * 100) / 100,
    rps: Math.round(done / seconds * 10) / 10,
    p50: result.latency.p50,
    p99: result.latency.p99,
    max: result.latency.max,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    statusCodes: codes
  }
  process.stdout.write(JSON.stringify(out) + '\n')
}

main().catch((err) => { process.stderr.write(String(err?.stack ?? err) + '\n'); process.exit(1) })
