import { buildApp } from './app.js'
import { ConfigError, loadConfigOrExit } from './lib/config.js'

/** How long in-flight requests may take to finish after SIGTERM before the process gives up on them. */
const SHUTDOWN_GRACE_MS = 10_000

async function main (): Promise<void> {
  const config = await loadConfigOrExit()
  const app = await buildApp({ config })

  let closing = false
  const shutdown = (signal: string) => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'shutting down')
    const timer = setTimeout(() => {
      app.log.error('in-flight requests did not finish in time')
      process.exit(1)
    }, SHUTDOWN_GRACE_MS)
    timer.unref()
    // A keep-alive connection whose request was in flight at the signal turns idle only once
    // it is answered; Fastify closes idle connections once, at close time, so sweep until exit.
    const sweep = setInterval(() => { app.server.closeIdleConnections() }, 100)
    sweep.unref()
    app.close().then(() => process.exit(0), (err) => {
      app.log.error({ err }, 'shutdown failed')
      process.exit(1)
    })
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))

  await app.listen({ port: config.PORT, host: config.HOST })
  if (config.SMS_PROVIDER === 'console') {
    app.log.warn('SMS_PROVIDER=console: codes are written to this log instead of being sent (development only)')
  }
}

main().catch((err) => {
  // A setting only the database can judge (BOOTSTRAP_API_KEY) ends like any other bad setting: one line.
  if (err instanceof ConfigError) process.stderr.write(`configuration error: ${err.message}\n`)
  else process.stderr.write(`failed to start: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
