import fp from 'fastify-plugin'
import Fastify, { LogController, type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify'
import { randomUUID } from 'node:crypto'
import type { DestinationStream } from 'pino'
import type { Config } from './lib/config.js'
import { BODY_LIMIT_BYTES } from './lib/limits.js'
import { lazySchemaCompilers, type LazySchemaCompilers } from './lib/lazy-schema-compilers.js'
import type { Database } from './db/database.js'
import type { MessageSender } from './senders/message-sender.js'
import configPlugin from './plugins/external/config.js'
import databasePlugin from './plugins/external/database.js'
import metricsPlugin from './plugins/external/metrics.js'
import rateLimitPlugin from './plugins/external/rate-limit.js'
import senderPlugin from './plugins/external/sender.js'
import swaggerPlugin from './plugins/external/swagger.js'
import apiKeysPlugin from './plugins/app/api-keys.js'
import devicesPlugin from './plugins/app/devices.js'
import authPlugin from './plugins/app/auth.js'
import errorHandlerPlugin, { frameworkErrors } from './plugins/app/error-handler.js'
import eventsPlugin from './plugins/app/events.js'
import loginsPlugin from './plugins/app/logins.js'
import notifierPlugin from './plugins/app/notifier.js'
import passwordsPlugin from './plugins/app/passwords.js'
import phonesPlugin from './plugins/app/phones.js'
import policyPlugin from './plugins/app/policy.js'
import sendGuardPlugin from './plugins/app/send-guard.js'
import smsBudgetPlugin from './plugins/app/sms-budget.js'
import secondFactorsPlugin from './plugins/app/second-factors.js'
import supportPlugin from './plugins/app/support.js'
import totpSettingsPlugin from './plugins/app/totp-settings.js'
import usersPlugin from './plugins/app/users.js'
import healthRoutes from './routes/health.js'
import deviceRoutes from './routes/devices.js'
import loginRoutes from './routes/logins.js'
import phoneRoutes from './routes/phones.js'
import policyRoutes from './routes/policy.js'
import supportRoutes from './routes/support.js'
import totpRoutes from './routes/totp.js'
import userRoutes from './routes/users.js'
import webhookRoutes from './routes/webhooks.js'

export interface AppOptions {
  config: Config
  /** An already open database (tests, CLI). Otherwise the app opens one from the configuration. */
  database?: Database | undefined
  /** Another SMS/voice sender than the configured one. */
  sender?: MessageSender | undefined
  /** false for the admin CLI, which makes the first API key: see the api-keys plugin. */
  requireApiAccess?: boolean | undefined
}

/** Secrets that could reach a log line through a request or an error; replaced, never printed. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-twilio-signature"]',
  'req.headers.cookie',
  '*.password', '*.code', '*.recoveryCode', '*.phoneNumber', '*.deviceToken', '*.secret', '*.authToken',
  'body', '*.body'
]

export function serverOptions (config: Config, logStream?: DestinationStream, compilers: LazySchemaCompilers = lazySchemaCompilers()): FastifyServerOptions {
  return {
    logger: {
      level: config.LOG_LEVEL,
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      ...(logStream === undefined ? {} : { stream: logStream })
    },
    // One access line per request, written by the onResponse hook below, instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT_BYTES,
    // X-Forwarded-For is believed only from the configured proxies: anyone else could name any IP.
    trustProxy: config.TRUSTED_PROXIES.length === 0 ? false : config.TRUSTED_PROXIES,
    // Creating an embedded database (PGlite's initdb) takes 10-30 s on a small machine.
    pluginTimeout: 120_000,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    ajv: {
      // Contract section 0: unknown fields are refused, not dropped, and "123" is not a number.
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false }
    },
    // Schemas compile at their route's first use, not at start (issue 6: start to ready).
    schemaController: compilers.schemaController,
    routerOptions: { ignoreTrailingSlash: true },
    // Malformed URLs and over-long path parameters are answered in problem+json too (contract section 0).
    frameworkErrors
  }
}

/** The whole service as one plugin: it never listens (src/server.ts does). */
const app: FastifyPluginAsync<AppOptions> = async (fastify, opts) => {
  await fastify.register(errorHandlerPlugin)
  await fastify.register(configPlugin, { config: opts.config })
  await fastify.register(databasePlugin, { database: opts.database })
  await fastify.register(metricsPlugin)
  await fastify.register(senderPlugin, { sender: opts.sender })
  await fastify.register(rateLimitPlugin)
  await fastify.register(swaggerPlugin)

  await fastify.register(eventsPlugin)
  await fastify.register(policyPlugin)
  await fastify.register(passwordsPlugin)
  await fastify.register(apiKeysPlugin, { requireApiAccess: opts.requireApiAccess })
  await fastify.register(authPlugin)
  await fastify.register(sendGuardPlugin)
  await fastify.register(smsBudgetPlugin)
  await fastify.register(notifierPlugin)
  await fastify.register(secondFactorsPlugin)
  await fastify.register(usersPlugin)
  await fastify.register(phonesPlugin)
  await fastify.register(totpSettingsPlugin)
  await fastify.register(devicesPlugin)
  await fastify.register(loginsPlugin)
  await fastify.register(supportPlugin)

  fastify.addHook('onSend', async (request, reply) => { reply.header('x-request-id', request.id) })
  // The access line: the route template, never the raw URL or query, so no value a caller sent is logged.
  fastify.addHook('onResponse', async (request, reply) => {
    request.log.info({
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      statusCode: reply.statusCode,
      durationMs: Math.round(reply.elapsedTime * 10) / 10
    }, 'request')
  })

  await fastify.register(healthRoutes)
  await fastify.register(userRoutes)
  await fastify.register(phoneRoutes)
  await fastify.register(totpRoutes)
  await fastify.register(loginRoutes)
  await fastify.register(deviceRoutes)
  await fastify.register(policyRoutes)
  await fastify.register(supportRoutes)
  await fastify.register(webhookRoutes)
}

export default app

export async function buildApp (opts: AppOptions & { logStream?: DestinationStream }): Promise<FastifyInstance> {
  const fastify = Fastify(serverOptions(opts.config, opts.logStream))
  // Unwrapped so that the services are reachable on the returned instance (tests, CLI).
  await fastify.register(fp(app, { name: 'studio-pro-auth' }), opts)
  return fastify
}
