import { createHash } from 'node:crypto'
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import pg from 'pg'
import { createTestDatabase } from '../helpers/database.js'
import { createDatabase, type Database } from '../../src/db/database.js'
import { DEFAULT_MIGRATIONS_DIR, MIGRATION_LOCK_KEY, runMigrations } from '../../src/db/migrate.js'

const MIGRATIONS = (await readdir(DEFAULT_MIGRATIONS_DIR, { withFileTypes: true }))
  .filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort()

async function open (t: Test, url: string): Promise<Database> {
  const db = await createDatabase({ databaseUrl: url, dataDir: tmpdir(), poolSize: 2 })
  t.teardown(async () => { await db.close() })
  return db
}

async function query<T extends pg.QueryResultRow> (url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query<T>(sql, params)).rows
  } finally {
    await client.end()
  }
}

async function copyOfMigrations (t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'spa-migrations-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  await cp(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true })
  return dir
}

t.test('the migrations folder is found next to the module and holds the initial migration', async (t) => {
  t.ok(MIGRATIONS.includes('20261128000000_init'))
  t.match(await readFile(join(DEFAULT_MIGRATIONS_DIR, 'migration_lock.toml'), 'utf8'), /^provider = "postgresql"$/m)
})

t.test('applies every migration once; running again is a no-op', async (t) => {
  const { url } = await createTestDatabase(t)
  const db = await open(t, url)
  const messages: string[] = []
  const log = { info (_obj: object, msg: string) { messages.push(msg) } }

  t.same(await runMigrations(db, log), { applied: MIGRATIONS })
  const before = await query(url, 'SELECT * FROM _prisma_migrations ORDER BY migration_name')
  t.same(await runMigrations(db, log), { applied: [] })
  t.same(await query(url, 'SELECT * FROM _prisma_migrations ORDER BY migration_name'), before, 'history untouched')
  t.ok(messages.includes('applying migration') && messages.includes('database schema is up to date'), 'progress is logged')
})

t.test('_prisma_migrations has Prisma\'s layout and rows', async (t) => {
  const { url } = await createTestDatabase(t)
  await runMigrations(await open(t, url))

  const columns = await query<{ name: string, type: string, nullable: string, default: string | null }>(url, `
    SELECT column_name AS name, format_type(a.atttypid, a.atttypmod) AS type, is_nullable AS nullable, column_default AS default
    FROM information_schema.columns c
    JOIN pg_attribute a ON a.attrelid = '_prisma_migrations'::regclass AND a.attname = c.column_name
    WHERE c.table_name = '_prisma_migrations' AND c.table_schema = current_schema()
    ORDER BY c.ordinal_position`)
  // As the schema engine creates it (sql-schema-connector, postgres flavour).
  t.same(columns, [
    { name: 'id', type: 'character varying(36)', nullable: 'NO', default: null },
    { name: 'checksum', type: 'character varying(64)', nullable: 'NO', default: null },
    { name: 'finished_at', type: 'timestamp with time zone', nullable: 'YES', default: null },
    { name: 'migration_name', type: 'character varying(255)', nullable: 'NO', default: null },
    { name: 'logs', type: 'text', nullable: 'YES', default: null },
    { name: 'rolled_back_at', type: 'timestamp with time zone', nullable: 'YES', default: null },
    { name: 'started_at', type: 'timestamp with time zone', nullable: 'NO', default: 'now()' },
    { name: 'applied_steps_count', type: 'integer', nullable: 'NO', default: '0' }
  ])
  const [pk] = await query<{ columns: string }>(url, `
    SELECT pg_get_constraintdef(oid) AS columns FROM pg_constraint
    WHERE conrelid = '_prisma_migrations'::regclass AND contype = 'p'`)
  t.equal(pk?.columns, 'PRIMARY KEY (id)')

  const rows = await query<{ id: string, checksum: string, migration_name: string, logs: string | null, started_at: Date, finished_at: Date | null, rolled_back_at: Date | null, applied_steps_count: number }>(
    url, 'SELECT * FROM _prisma_migrations ORDER BY migration_name')
  t.equal(rows.length, MIGRATIONS.length)
  for (const [i, row] of rows.entries()) {
    const name = MIGRATIONS[i]!
    t.equal(row.migration_name, name)
    t.match(row.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a v4 UUID, as Prisma writes')
    // Prisma's checksum: SHA-256 of the file's bytes, lower-case hex, no normalisation.
    const bytes = await readFile(join(DEFAULT_MIGRATIONS_DIR, name, 'migration.sql'))
    t.equal(row.checksum, createHash('sha256').update(bytes).digest('hex'))
    t.equal(row.logs, null)
    t.equal(row.rolled_back_at, null)
    t.equal(row.applied_steps_count, 1)
    t.ok(row.finished_at !== null && row.finished_at >= row.started_at, 'finished after it started')
  }
})

t.test('an applied migration whose file changed stops the start', async (t) => {
  const { url } = await createTestDatabase(t)
  const db = await open(t, url)
  const dir = await copyOfMigrations(t)
  await runMigrations(db, undefined, dir)
  const file = join(dir, MIGRATIONS[0]!, 'migration.sql')
  const original = await readFile(file, 'utf8')

  // git may check a file out with CRLF line endings: Prisma accepts that, and so do we.
  await writeFile(file, original.replaceAll('\n', '\r\n'))
  t.same(await runMigrations(db, undefined, dir), { applied: [] }, 'line endings alone are not a change')

  await writeFile(file, original.replace('"masked" TEXT NOT NULL', '"masked" TEXT'))
  await t.rejects(runMigrations(db, undefined, dir), /20261128000000_init changed after being applied/)

  await writeFile(file, original + '\n-- a comment is a change too\n')
  await t.rejects(runMigrations(db, undefined, dir), /changed after being applied/)
})

t.test('a migration recorded as failed stops the start', async (t) => {
  const { url } = await createTestDatabase(t)
  const db = await open(t, url)
  await runMigrations(db)
  // What `prisma migrate deploy` leaves behind when a script fails half-way.
  await query(url, `INSERT INTO _prisma_migrations (id, checksum, migration_name, logs, started_at)
    VALUES ('00000000-0000-4000-8000-000000000000', repeat('0', 64), '20261201000000_broken', 'syntax error', now())`)
  await t.rejects(runMigrations(db), /20261201000000_broken .*syntax error.*prisma migrate resolve/s)

  // Once resolved as rolled back, it no longer blocks (and is not in our folder to re-apply).
  await query(url, 'UPDATE _prisma_migrations SET rolled_back_at = now() WHERE migration_name = $1', ['20261201000000_broken'])
  t.same(await runMigrations(db), { applied: [] })
})

t.test('a failing migration is rolled back whole and not recorded', async (t) => {
  const { url } = await createTestDatabase(t)
  const db = await open(t, url)
  const dir = await copyOfMigrations(t)
  await mkdir(join(dir, '29991231000000_bad'))
  await writeFile(join(dir, '29991231000000_bad', 'migration.sql'), 'CREATE TABLE "half_done" ("id" TEXT);\nSELECT * FROM no_such_table;\n')

  await t.rejects(runMigrations(db, undefined, dir), /Migration 29991231000000_bad failed and was rolled back: .*no_such_table/)
  t.same((await query(url, 'SELECT migration_name FROM _prisma_migrations ORDER BY 1')).map((r) => r.migration_name), MIGRATIONS,
    'the earlier migrations stay applied, the failed one is not recorded')
  t.same(await query(url, "SELECT to_regclass('half_done') AS t"), [{ t: null }], 'its first statement was undone')

  await rm(join(dir, '29991231000000_bad'), { recursive: true })
  t.same(await runMigrations(db, undefined, dir), { applied: [] }, 'and the next start goes ahead')
})

t.test('a database with tables but no migration history is refused', async (t) => {
  const { url } = await createTestDatabase(t)
  await query(url, 'CREATE TABLE somebody_elses (id INTEGER)')
  await t.rejects(runMigrations(await open(t, url)), /already has tables \(somebody_elses\) but no _prisma_migrations/)
  t.same(await query(url, "SELECT to_regclass('users') AS t"), [{ t: null }])
})

t.test('concurrent starts on an empty database apply each migration exactly once', async (t) => {
  const { url } = await createTestDatabase(t)
  const dbs = await Promise.all([1, 2, 3, 4].map(async () => await open(t, url)))
  const results = await Promise.all(dbs.map(async (db) => await runMigrations(db)))
  t.same(results.map((r) => r.applied).filter((applied) => applied.length > 0), [MIGRATIONS], 'one instance applied them')
  t.equal(results.filter((r) => r.applied.length === 0).length, 3, 'the others found nothing to do')
  const counts = await query<{ migration_name: string, n: number }>(url,
    'SELECT migration_name, count(*)::int AS n FROM _prisma_migrations GROUP BY 1 ORDER BY 1')
  t.same(counts, MIGRATIONS.map((name) => ({ migration_name: name, n: 1 })))
  t.same(await query(url, "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'"), [{ n: 0 }], 'the lock was released')
})

t.test('waits for whoever holds Prisma Migrate\'s advisory lock', async (t) => {
  const { url } = await createTestDatabase(t)
  const holder = new pg.Client({ connectionString: url })
  await holder.connect()
  t.teardown(async () => { await holder.end() })
  await holder.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY])
  t.equal(MIGRATION_LOCK_KEY, 72707369, 'the key prisma migrate deploy uses')

  const messages: string[] = []
  let settled = false
  const run = runMigrations(await open(t, url), { info (_obj, msg) { messages.push(msg) } })
    .finally(() => { settled = true })
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.notOk(settled, 'still waiting while the lock is held')
  t.match(messages, ['another process is migrating the database; waiting for it to finish'])
  t.same(await query(url, "SELECT to_regclass('_prisma_migrations') AS t"), [{ t: null }], 'nothing done yet')

  await holder.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY])
  t.same(await run, { applied: MIGRATIONS })
})
