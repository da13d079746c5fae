import { createHash, randomUUID } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Database, SqlConnection } from './database.js'

/**
 * The advisory lock key Prisma Migrate takes on PostgreSQL (schema engine, postgres flavour).
 * Taking the same one makes this runner and `prisma migrate deploy` wait for each other.
 */
export const MIGRATION_LOCK_KEY = 72707369

/** Same relative path from src/db (tsx) and from dist/db (compiled). */
export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('../../prisma/migrations', import.meta.url))

export interface MigrationLogger {
  info (obj: object, msg: string): void
}

// Another instance applying a long migration must not make ours give up, but a
// process stuck while holding the lock must not hang every start forever either.
const LOCK_WAIT_MS = 120_000

// Prisma refuses to start a migration history in a schema that already has tables;
// these PostGIS catalogue tables are the ones it does not count.
const IGNORED_TABLES = /^(spatial_ref_sys|geometry_columns)$/i

// Prisma's own DDL for its history table, so `prisma migrate status/resolve/deploy` can use ours.
const CREATE_HISTORY_TABLE = `CREATE TABLE _prisma_migrations (
    id                  VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum            VARCHAR(64) NOT NULL,
    finished_at         TIMESTAMPTZ,
    migration_name      VARCHAR(255) NOT NULL,
    logs                TEXT,
    rolled_back_at      TIMESTAMPTZ,
    started_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count INTEGER NOT NULL DEFAULT 0
)`

const silent: MigrationLogger = { info () {} }

interface MigrationFile {
  name: string
  script: string
  checksum: string
}

interface HistoryRow {
  id: string
  checksum: string
  migration_name: string
  logs: string | null
  started_at: Date | string
  finished_at: Date | string | null
  rolled_back_at: Date | string | null
}

/** Runs of runMigrations on one Database object, chained: PGlite has a single session, where the advisory lock is re-entrant and would not keep two runs apart. */
const running = new WeakMap<Database, Promise<unknown>>()

/**
 * Applies the pending migrations the way `prisma migrate deploy` does and records them in
 * `_prisma_migrations` in Prisma's format, so the Prisma CLI and this runner can take turns
 * on one database. Throws, applying nothing, when the recorded history is not trustworthy:
 * a failed migration, or an applied one whose file has changed since.
 */
export async function runMigrations (
  db: Database,
  log: MigrationLogger = silent,
  migrationsDir: string = DEFAULT_MIGRATIONS_DIR
): Promise<{ applied: string[] }> {
  // Read everything first: a broken migrations folder should fail before touching the database.
  const files = await readMigrations(migrationsDir)
  const previous = running.get(db) ?? Promise.resolve()
  const run = previous.catch(() => {}).then(async () => await migrateLocked(db, files, log))
  running.set(db, run)
  return await run
}

async function migrateLocked (db: Database, files: MigrationFile[], log: MigrationLogger): Promise<{ applied: string[] }> {
  const conn = await db.connect()
  try {
    await acquireLock(conn, log)
    try {
      return await migrate(conn, files, log)
    } finally {
      // With a dead connection the server has already dropped the lock; the original error matters more.
      await conn.query(`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY})`).catch(() => {})
    }
  } finally {
    await conn.release()
  }
}

async function acquireLock (conn: SqlConnection, log: MigrationLogger): Promise<void> {
  const { rows } = await conn.query<{ locked: boolean }>(`SELECT pg_try_advisory_lock(${MIGRATION_LOCK_KEY}) AS locked`)
  if (rows[0]?.locked === true) return
  log.info({ lockKey: MIGRATION_LOCK_KEY }, 'another process is migrating the database; waiting for it to finish')
  await conn.query(`SELECT set_config('lock_timeout', '${LOCK_WAIT_MS}', false)`)
  try {
    await conn.query(`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY})`)
  } catch (err) {
    if ((err as { code?: string }).code === '55P03') {
      throw new Error(
        `Gave up after ${LOCK_WAIT_MS / 1000} s waiting for the migration lock (pg_advisory_lock(${MIGRATION_LOCK_KEY})); ` +
        'another process holds it: find it in pg_locks and let it finish or end it', { cause: err })
    }
    throw err
  } finally {
    await conn.query('RESET lock_timeout').catch(() => {})
  }
}

async function migrate (conn: SqlConnection, files: MigrationFile[], log: MigrationLogger): Promise<{ applied: string[] }> {
  await ensureHistoryTable(conn)
  const { rows: history } = await conn.query<HistoryRow>(
    'SELECT id, checksum, migration_name, logs, started_at, finished_at, rolled_back_at FROM _prisma_migrations ORDER BY started_at'
  )
  const live = history.filter((row) => row.rolled_back_at === null)

  const failed = live.filter((row) => row.finished_at === null)
  if (failed.length > 0) {
    const details = failed.map((row) => {
      const logs = row.logs?.trim() ?? ''
      return `${row.migration_name} (started ${formatTime(row.started_at)})${logs === '' ? '' : `: ${logs}`}`
    })
    throw new Error(
      `Refusing to migrate: _prisma_migrations records failed migrations: ${details.join('; ')}. ` +
      'Repair the database, then mark each one with `prisma migrate resolve --rolled-back <name>` or `--applied <name>`')
  }

  const modified = files.filter((file) => live.some((row) =>
    row.migration_name === file.name && !scriptMatchesChecksum(file.script, row.checksum)))
  if (modified.length > 0) {
    throw new Error(
      `Refusing to migrate: ${modified.map((file) => file.name).join(', ')} changed after being applied ` +
      '(migration.sql no longer matches the checksum in _prisma_migrations). ' +
      'Restore the applied file and put the change in a new migration')
  }

  const pending = files.filter((file) => !live.some((row) => row.migration_name === file.name))
  if (pending.length === 0) {
    log.info({ migrations: files.length }, 'database schema is up to date')
    return { applied: [] }
  }
  const applied: string[] = []
  for (const file of pending) {
    const started = Date.now()
    log.info({ migration: file.name }, 'applying migration')
    await applyOne(conn, file)
    applied.push(file.name)
    log.info({ migration: file.name, ms: Date.now() - started }, 'applied migration')
  }
  return { applied }
}

async function ensureHistoryTable (conn: SqlConnection): Promise<void> {
  const { rows } = await conn.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema()`
  )
  const tables = rows.map((row) => row.name)
  if (tables.includes('_prisma_migrations')) return
  const foreign = tables.filter((name) => !IGNORED_TABLES.test(name))
  if (foreign.length > 0) {
    // Prisma's P3005: applying the history on top of unknown tables could only half-work.
    throw new Error(
      `Refusing to migrate: the database already has tables (${foreign.slice(0, 5).join(', ')}${foreign.length > 5 ? ', …' : ''}) ` +
      'but no _prisma_migrations history; use an empty database, or baseline it (https://pris.ly/d/migrate-baseline)')
  }
  await conn.exec(CREATE_HISTORY_TABLE)
}

/**
 * One transaction per migration, history row included: a failure leaves neither half-made
 * tables nor a "failed" row behind, so the next start simply tries again.
 */
async function applyOne (conn: SqlConnection, file: MigrationFile): Promise<void> {
  const id = randomUUID()
  await conn.query('BEGIN')
  try {
    await conn.query(
      `INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, applied_steps_count)
       VALUES ($1, $2, $3, clock_timestamp(), 0)`,
      [id, file.checksum, file.name]
    )
    await conn.exec(file.script)
    await conn.query(
      'UPDATE _prisma_migrations SET finished_at = clock_timestamp(), applied_steps_count = applied_steps_count + 1 WHERE id = $1',
      [id]
    )
    await conn.query('COMMIT')
  } catch (err) {
    await conn.query('ROLLBACK').catch(() => {})
    throw new Error(`Migration ${file.name} failed and was rolled back: ${(err as Error).message}`, { cause: err })
  }
}

async function readMigrations (dir: string): Promise<MigrationFile[]> {
  let entries
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch (err) {
    throw new Error(`Cannot read the migrations folder ${dir}: ${(err as Error).message}`, { cause: err })
  }
  await checkLockFile(dir)
  // Prisma orders by folder name; the timestamp prefix makes that chronological.
  const names = entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort(compareNames)
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
  return await Promise.all(names.map(async (name) => {
    const path = join(dir, name, 'migration.sql')
    let bytes: Buffer
    try {
      bytes = await readFile(path)
    } catch (err) {
      throw new Error(`Migration ${name} has no readable migration.sql (${path}): ${(err as Error).message}`, { cause: err })
    }
    let script: string
    try {
      script = decoder.decode(bytes)
    } catch (err) {
      throw new Error(`Migration ${name}: migration.sql is not valid UTF-8`, { cause: err })
    }
    return { name, script, checksum: sha256Hex(script) }
  }))
}

async function checkLockFile (dir: string): Promise<void> {
  let text: string
  try {
    text = await readFile(join(dir, 'migration_lock.toml'), 'utf8')
  } catch {
    return
  }
  const provider = /^\s*provider\s*=\s*"([^"]*)"/m.exec(text)?.[1]
  if (provider !== undefined && provider !== 'postgresql') {
    throw new Error(`The migrations in ${dir} were written for ${provider} (migration_lock.toml), not postgresql`)
  }
}

function compareNames (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function sha256Hex (text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex')
}

/**
 * Prisma's rule for "this file is the one that was applied": the SHA-256 of the script as
 * read, or of it with CRLF turned into LF, or LF into CRLF (git may have converted line
 * endings on checkout), compared as zero-padded hex, or unpadded for the short checksums an
 * old Prisma version wrote.
 */
function scriptMatchesChecksum (script: string, recorded: string): boolean {
  const variants = [script, script.replaceAll('\r\n', '\n'), script.replaceAll('\n', '\r\n')]
  return variants.some((variant) => {
    const digest = createHash('sha256').update(variant, 'utf8').digest()
    const rendered = recorded.length === 64 || recorded.length === 0
      ? digest.toString('hex')
      : [...digest].map((byte) => byte.toString(16)).join('')
    return rendered === recorded
  })
}

function formatTime (value: Date | string): string {
  return value instanceof Date ? value.toISOString() : String(value)
}
