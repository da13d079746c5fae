// `npm run migrate`: applies pending migrations without starting the service, e.g. as a
// release step. The service does the same at start, so this is optional.
import { createDatabase } from '../db/database.js'
import { runMigrations } from '../db/migrate.js'
import { loadConfigOrExit } from '../lib/config.js'

async function main (): Promise<number> {
  const config = await loadConfigOrExit()
  const db = await createDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR })
  try {
    const { applied } = await runMigrations(db)
    process.stdout.write(applied.length === 0
      ? 'No pending migrations: the database schema is up to date.\n'
      : `Applied ${applied.length} migration(s):\n${applied.map((name) => `  ${name}\n`).join('')}`)
  } finally {
    await db.close()
  }
  return 0
}

// Explicit exits: a driver's idle timer must not keep a finished release step waiting.
main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`Migration failed: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
