import fp from 'fastify-plugin'
import type { Config } from '../../lib/config.js'
import { createSecrets, type Secrets } from '../../lib/secrets.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
    secrets: Secrets
  }
}

/** The configuration was validated once, before the app was built (src/lib/config.ts); this only shares it. */
export default fp<{ config: Config }>(async (fastify, opts) => {
  fastify.decorate('config', opts.config)
  fastify.decorate('secrets', createSecrets(opts.config.SECRET_KEY, opts.config.SECRET_KEY_PREVIOUS))
}, { name: 'config' })
