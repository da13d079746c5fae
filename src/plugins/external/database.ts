import fp from 'fastify-plugin'
import { createDatabase, type Database } from '../../db/database.js'
import { runMigrations } from '../../db/migrate.js'
import type { PrismaClient } from '../../generated/prisma/client.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: Database
    prisma: PrismaClient
  }
}

export interface DatabasePluginOptions {
  /** A database opened by the caller (tests, CLI); it is then also closed by the caller. */
  database?: Database | undefined
}

export default fp<DatabasePluginOptions>(async (fastify, opts) => {
  let db = opts.database
  if (db === undefined) {
    const owned = await createDatabase({ databaseUrl: fastify.config.DATABASE_URL, dataDir: fastify.config.DATA_DIR })
    fastify.addHook('onClose', async () => { await owned.close() })
    db = owned
  }
  const { applied } = await runMigrations(db, fastify.log)
  if (applied.length > 0) fastify.log.info({ applied }, 'migrations applied')
  fastify.decorate('db', db)
  fastify.decorate('prisma', db.prisma)
}, { name: 'database', dependencies: ['config'] })
