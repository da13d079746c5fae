// Every test file gets its own PostgreSQL database, so files can run in parallel and a
// failed run leaves nothing a later one could trip over (tap teardowns drop them).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { createDatabase, type Database } from '../../src/db/database.js'
import { runMigrations } from '../../src/db/migrate.js'

/** The part of a tap Test these helpers use. */
export interface TeardownHost {
  teardown (fn: () => void | Promise<void>): void
}

export const ADMIN_URL = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

export function databaseUrl (name: string): string {
  const url = new URL(ADMIN_URL)
  url.pathname = `/${name}`
  return url.toString()
}

async function admin<T> (fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5_000 })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

/** An empty database, dropped when the test ends (tap runs teardowns in reverse order of registration). */
export async function createTestDatabase (t: TeardownHost): Promise<{ url: string, name: string }> {
  // Names are interpolated into SQL below: keep them to [a-z0-9_].
  const name = `spa_test_${process.pid}_${randomBytes(6).toString('hex')}`
  await admin(async (client) => { await client.query(`CREATE DATABASE "${name}"`) })
  t.teardown(async () => {
    await admin(async (client) => { await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`) })
  })
  return { url: databaseUrl(name), name }
}

/** A fresh database with every migration applied, opened the way the service opens it. */
export async function migratedDatabase (t: TeardownHost): Promise<{ url: string, db: Database }> {
  const { url } = await createTestDatabase(t)
  // createDatabase wants a data directory even though a URL makes it unused.
  const dataDir = await mkdtemp(join(tmpdir(), 'spa-test-'))
  t.teardown(async () => { await rm(dataDir, { recursive: true, force: true }) })
  const db = await createDatabase({ databaseUrl: url, dataDir })
  // Registered after the DROP, so it runs before it.
  t.teardown(async () => { await db.close() })
  await runMigrations(db)
  return { url, db }
}
