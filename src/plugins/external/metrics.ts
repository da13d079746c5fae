import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { PoolStats } from '../../db/database.js'
import type { SenderMetrics } from '../../senders/instrumented-sender.js'

/**
 * One Prometheus registry per app instance (tests build many apps in one process,
 * so the prom-client global registry is never used). Services receive the
 * `Metrics` object and count what they do; the `/metrics` route renders it.
 */
export interface Metrics extends SenderMetrics {
  readonly registry: Registry
  /** Codes handed to the provider, by channel and outcome (sent, failed, refused). */
  readonly codesSent: Counter<'channel' | 'outcome'>
  /** Second-factor checks, by method and outcome (accepted, wrong, closed, expired...). */
  readonly verifications: Counter<'method' | 'outcome'>
  /** Accounts locked or paused, by reason. */
  readonly lockouts: Counter<'reason'>
  /** HTTP latency by route template (never the raw URL: ids would explode cardinality). */
  readonly httpDuration: Histogram<string>
  /** Reads the database pool on every scrape; unset (embedded database) reports nothing. */
  watchPool (stats: () => PoolStats): void
}

export function createMetrics (): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  let poolStats: (() => PoolStats) | undefined
  // A gauge read at scrape time: connections in the pool by state (total, idle, waiting clients).
  // eslint-disable-next-line no-new
  new Gauge({
    name: 'spa_db_pool_connections',
    help: 'PostgreSQL pool: open connections (total), idle ones, and queries waiting for one',
    labelNames: ['state'],
    registers: [registry],
    collect () {
      if (poolStats === undefined) return
      const stats = poolStats()
      this.set({ state: 'total' }, stats.total)
      this.set({ state: 'idle' }, stats.idle)
      this.set({ state: 'waiting' }, stats.waiting)
    }
  })
  return {
    watchPool (stats) { poolStats = stats },
    registry,
    codesSent: new Counter({ name: 'spa_codes_sent_total', help: 'One-time codes handed to the SMS/voice provider', labelNames: ['channel', 'outcome'], registers: [registry] }),
    verifications: new Counter({ name: 'spa_verifications_total', help: 'Second-factor checks', labelNames: ['method', 'outcome'], registers: [registry] }),
    lockouts: new Counter({ name: 'spa_lockouts_total', help: 'Accounts locked or paused', labelNames: ['reason'], registers: [registry] }),
    httpDuration: secondsHistogram(registry, 'spa_http_request_duration_seconds', 'HTTP request latency', ['method', 'route', 'status']),
    providerDuration: secondsHistogram(registry, 'spa_provider_request_duration_seconds', 'SMS/voice provider (Twilio) call latency', ['provider', 'operation', 'outcome']),
    providerErrors: new Counter({ name: 'spa_provider_errors_total', help: 'SMS/voice provider calls that failed, by reason', labelNames: ['provider', 'operation', 'reason'], registers: [registry] })
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
  const { poolStats } = fastify.db
  if (poolStats !== undefined) metrics.watchPool(poolStats)
  fastify.decorate('metrics', metrics)
  fastify.addHook('onResponse', async (request, reply) => {
    // Unmatched URLs share one label so scanners cannot grow the series count.
    const route = request.routeOptions.url ?? 'unmatched'
    metrics.httpDuration.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000)
  })
}, { name: 'metrics', dependencies: ['database'] })
