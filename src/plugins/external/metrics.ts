import fp from 'fastify-plugin'
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/**
 * One Prometheus registry per app instance (tests build many apps in one process,
 * so the prom-client global registry is never used). Services receive the
 * `Metrics` object and count what they do; the `/metrics` route renders it.
 */
export interface Metrics {
  readonly registry: Registry
  /** Codes handed to the provider, by channel and outcome (sent, failed, refused). */
  readonly codesSent: Counter<'channel' | 'outcome'>
  /** Second-factor checks, by method and outcome (accepted, wrong, closed, expired...). */
  readonly verifications: Counter<'method' | 'outcome'>
  /** Accounts locked or paused, by reason. */
  readonly lockouts: Counter<'reason'>
  /** HTTP latency by route template (never the raw URL: ids would explode cardinality). */
  readonly httpDuration: Histogram<string>
}

export function createMetrics (): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  return {
    registry,
    codesSent: new Counter({ name: 'spa_codes_sent_total', help: 'One-time codes handed to the SMS/voice provider', labelNames: ['channel', 'outcome'], registers: [registry] }),
    verifications: new Counter({ name: 'spa_verifications_total', help: 'Second-factor checks', labelNames: ['method', 'outcome'], registers: [registry] }),
    lockouts: new Counter({ name: 'spa_lockouts_total', help: 'Accounts locked or paused', labelNames: ['reason'], registers: [registry] }),
    httpDuration: secondsHistogram(registry, 'spa_http_request_duration_seconds', 'HTTP request latency', ['method', 'route', 'status'])
  }
}

/** A histogram helper for timings in seconds with buckets suited to HTTP and provider calls. */
export function secondsHistogram (registry: Registry, name: string, help: string, labelNames: string[]): Histogram<string> {
  return new Histogram({ name, help, labelNames, buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] })
}

declare module 'fastify' {
  interface FastifyInstance { metrics: Metrics }
}

export default fp(async (fastify) => {
  const metrics = createMetrics()
  fastify.decorate('metrics', metrics)
  fastify.addHook('onResponse', async (request, reply) => {
    // Unmatched URLs share one label so scanners cannot grow the series count.
    const route = request.routeOptions.url ?? 'unmatched'
    metrics.httpDuration.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000)
  })
}, { name: 'metrics' })
