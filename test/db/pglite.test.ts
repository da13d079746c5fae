// Without DATABASE_URL the service runs on an embedded PGlite: the same migrations
// and the same Prisma client must work there.
import { readdir } from 'node:fs/promises'
import t from 'tap'
import { createDatabase } from '../../src/db/database.js'
import { DEFAULT_MIGRATIONS_DIR, runMigrations } from '../../src/db/migrate.js'

const MIGRATIONS = (await readdir(DEFAULT_MIGRATIONS_DIR, { withFileTypes: true }))
  .filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort()

t.test('migrates an embedded PGlite database and Prisma can use it', async (t) => {
  const dataDir = t.testdir()
  const db = await createDatabase({ dataDir })
  t.equal(db.kind, 'pglite')
  let closed = false
  t.teardown(async () => { if (!closed) await db.close() })

  // Two at once on one PGlite: it has a single session, where the advisory lock would not keep them apart.
  const results = await Promise.all([runMigrations(db), runMigrations(db)])
  // Either call may win; one applies everything, the other nothing.
  t.same(results.map((r) => r.applied).sort((a, b) => b.length - a.length), [MIGRATIONS, []])

  const conn = await db.connect()
  try {
    const { rows } = await conn.query<{ migration_name: string, applied_steps_count: number, finished_at: Date | null }>(
      'SELECT migration_name, applied_steps_count, finished_at FROM _prisma_migrations ORDER BY migration_name')
    t.same(rows.map((r) => [r.migration_name, r.applied_steps_count]), MIGRATIONS.map((name) => [name, 1]))
    t.ok(rows.every((r) => r.finished_at !== null))
    const { rows: locks } = await conn.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'")
    t.same(locks, [{ n: 0 }], 'the advisory lock was released')
  } finally {
    await conn.release()
  }

  const created = await db.prisma.apiClient.create({
    data: { id: 'client-1', name: 'studio-backend', keyHash: 'a'.repeat(64), scopes: ['users:read', 'users:write'] }
  })
  t.ok(created.createdAt instanceof Date, 'database default filled in')
  const read = await db.prisma.apiClient.findUnique({ where: { keyHash: 'a'.repeat(64) } })
  t.match(read, { id: 'client-1', name: 'studio-backend', scopes: ['users:read', 'users:write'], revokedAt: null })

  await db.close()
  closed = true

  // The data directory keeps both the schema and the history: a restart has nothing to apply.
  const again = await createDatabase({ dataDir })
  t.teardown(async () => { await again.close() })
  t.same(await runMigrations(again), { applied: [] })
  t.equal(await again.prisma.apiClient.count(), 1)
})

t.test('a second process cannot open the same embedded database', async (t) => {
  const dataDir = t.testdir()
  const { spawn } = await import('node:child_process')
  const { once } = await import('node:events')
  const holder = spawn(process.execPath, ['--import', 'tsx', '-e', `
    const { createDatabase } = await import(${JSON.stringify(new URL('../../src/db/database.ts', import.meta.url).href)})
    await createDatabase({ dataDir: ${JSON.stringify(dataDir)} })
    console.log('open')
    setInterval(() => {}, 1000)
  `], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { holder.kill('SIGKILL') })
  await once(holder.stdout, 'data')
  await t.rejects(createDatabase({ dataDir }), /in use by process \d+; stop it first, or set DATABASE_URL/)

  holder.kill('SIGKILL')
  await once(holder, 'exit')
  const db = await createDatabase({ dataDir })
  t.equal(db.kind, 'pglite', 'a lock left by a dead process is taken over')
  await db.close()
})
