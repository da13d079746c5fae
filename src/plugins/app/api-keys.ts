import fp from 'fastify-plugin'
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import type { PrismaClient } from '../../generated/prisma/client.js'
import { ConfigError } from '../../lib/config.js'

export const SCOPES = ['login', 'users', 'admin', '*'] as const
export type Scope = typeof SCOPES[number]

export interface ApiCaller { clientId: string, name: string, scopes: string[] }

export interface ApiKeys {
  create (name: string, scopes: Scope[]): Promise<{ id: string, key: string }>
  list (): Promise<Array<{ id: string, name: string, scopes: string[], createdAt: Date, revokedAt: Date | null }>>
  revoke (name: string): Promise<boolean>
  authenticate (key: string): Promise<ApiCaller | null>
}

// Keys carry 256 random bits, so a plain SHA-256 is as strong as a slow hash and
// lets every request find its client with one indexed lookup.
function keyHash (key: string): string {
  return createHash('sha256').update(key).digest('hex')
}

export function createApiKeys ({ prisma, bootstrapKey }: { prisma: PrismaClient, bootstrapKey?: string | undefined }): ApiKeys {
  const bootstrapHash = bootstrapKey === undefined ? null : Buffer.from(keyHash(bootstrapKey), 'hex')
  return {
    async create (name, scopes) {
      const key = `spa_${randomBytes(32).toString('base64url')}`
      const id = randomUUID()
      await prisma.apiClient.create({ data: { id, name, keyHash: keyHash(key), scopes } })
      return { id, key }
    },
    async list () {
      return await prisma.apiClient.findMany({
        orderBy: { createdAt: 'asc' },
        select: { id: true, name: true, scopes: true, createdAt: true, revokedAt: true }
      })
    },
    async revoke (name) {
      const { count } = await prisma.apiClient.updateMany({ where: { name, revokedAt: null }, data: { revokedAt: new Date() } })
      return count === 1
    },
    async authenticate (key) {
      const hash = keyHash(key)
      if (bootstrapHash !== null && timingSafeEqual(bootstrapHash, Buffer.from(hash, 'hex'))) {
        return { clientId: 'bootstrap', name: 'bootstrap', scopes: ['*'] }
      }
      const client = await prisma.apiClient.findUnique({ where: { keyHash: hash } })
      if (client === null || client.revokedAt !== null) return null
      return { clientId: client.id, name: client.name, scopes: client.scopes }
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance { apiKeys: ApiKeys }
}

export interface ApiKeysPluginOptions {
  /** false for the admin CLI: it is how the first key is made, so it must start without one. */
  requireApiAccess?: boolean | undefined
}

export default fp<ApiKeysPluginOptions>(async (fastify, opts) => {
  const { config } = fastify
  // A production service nobody can call is a misconfiguration, not a state to start in. This
  // needs the database (a key made with the admin CLI is enough), so it is checked here, not in config.ts.
  if (opts.requireApiAccess !== false && config.NODE_ENV === 'production' && config.BOOTSTRAP_API_KEY === undefined) {
    const usable = await fastify.prisma.apiClient.count({ where: { revokedAt: null } })
    if (usable === 0) {
      throw new ConfigError('BOOTSTRAP_API_KEY', 'is required when NODE_ENV=production and the database holds no API key yet; set it, or make a key with the admin CLI (keys create)')
    }
  }
  fastify.decorate('apiKeys', createApiKeys({ prisma: fastify.prisma, bootstrapKey: fastify.config.BOOTSTRAP_API_KEY }))
}, { name: 'api-keys', dependencies: ['database'] })
