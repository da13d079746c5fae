import { createHash } from 'node:crypto'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { PGlite } from '@electric-sql/pglite'
import { PrismaClient, type Prisma } from '../generated/prisma/client.js'
import { DB_CONNECT_TIMEOUT_MS, DB_QUERY_TIMEOUT_MS } from '../lib/limits.js'

/** One connection used for migrations: it holds the advisory lock for as long as it lives. */
export interface SqlConnection {
  query<T = Record<string, unknown>> (sql: string, params?: unknown[]): Promise<{ rows: T[] }>
  /** Runs a script of several statements (simple query protocol). */
  exec (sql: string): Promise<void>
  release (): Promise<void>
}

/** What pg.Pool knows about its connections; the metrics read it at scrape time. */
export interface PoolStats { total: number, idle: number, waiting: number }

export interface Database {
  readonly kind: 'postgres' | 'pglite'
  /** Only a PostgreSQL pool has these; the embedded database is one in-process connection. */
  readonly poolStats?: () => PoolStats
  readonly prisma: PrismaClient
  /**
   * One statement straight on the driver, past the Prisma client's request pipeline, which
   * costs ~0.2 ms of CPU per raw statement against ~0.07 ms here (bench/raw-statement-cost.ts,
   * README "Performance"). For the hottest statement only: everything else uses `prisma`.
   */
  rows<T> (statement: Prisma.Sql): Promise<T[]>
  connect (): Promise<SqlConnection>
  ping (): Promise<void>
  close (): Promise<void>
}

export interface DatabaseOptions {
  databaseUrl?: string | undefined
  dataDir: string
  poolSize?: number
}

// Each driver is imported only by the branch that uses it: a PostgreSQL deployment does not
// load the embedded database (PGlite and its adapter) at start, nor PGlite the pg pool.
export async function createDatabase (options: DatabaseOptions): Promise<Database> {
  if (options.databaseUrl !== undefined) return await createPostgres(options.databaseUrl, options.poolSize ?? 10)
  return createPglite(join(options.dataDir, 'pglite'))
}

/** Prepared statements a connection keeps; `rows` serves a handful of fixed texts, this is a guard. */
const MAX_PREPARED_STATEMENTS = 64
const statementNames = new Map<string, { name: string }>()
/** `{ name }` for pg's query config, or nothing (unnamed) once the guard is reached. */
function nameOf (text: string): { name?: string } {
  let named = statementNames.get(text)
  if (named === undefined && statementNames.size < MAX_PREPARED_STATEMENTS) {
    named = { name: 'spa_' + createHash('sha256').update(text).digest('hex').slice(0, 24) }
    statementNames.set(text, named)
  }
  return named ?? {}
}

async function createPostgres (connectionString: string, max: number): Promise<Database> {
  const [{ default: pg }, { PrismaPg }] = await Promise.all([import('pg'), import('@prisma/adapter-pg')])
  // Without these a database that stops answering (a dropped network, not a refused
  // connection) would hold every request open forever. Migrations use their own client below,
  // without a query timeout: they may wait minutes for another instance's lock.
  const pool = new pg.Pool({
    connectionString,
    max,
    connectionTimeoutMillis: DB_CONNECT_TIMEOUT_MS,
    query_timeout: DB_QUERY_TIMEOUT_MS,
    statement_timeout: DB_QUERY_TIMEOUT_MS
  })
  // An idle client that loses its server must not crash the process; the next query reports it.
  pool.on('error', () => {})
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) })
  return {
    kind: 'postgres',
    prisma,
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    // Prepared per connection under a name drawn from its text: PostgreSQL then parses the
    // statement once and can reuse its plan, where an unnamed one was planned on every run
    // (0.7 ms for the right-code statement, fourteen times its execution).
    rows: async <T>(statement: Prisma.Sql) => (await pool.query({ ...nameOf(statement.text), text: statement.text, values: statement.values })).rows as T[],
    async connect () {
      const client = new pg.Client({ connectionString, connectionTimeoutMillis: DB_CONNECT_TIMEOUT_MS })
      client.on('error', () => {})
      await client.connect()
      return {
        query: async (sql, params) => await client.query(sql, params) as never,
        exec: async (sql) => { await client.query(sql) },
        release: async () => { await client.end() }
      }
    },
    async ping () { await pool.query('SELECT 1') },
    async close () {
      await prisma.$disconnect()
      await pool.end().catch(() => {})
    }
  }
}

function processAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * PGlite is a whole PostgreSQL inside this process: a second process opening the same
 * directory (the keys CLI beside a running service) silently damages it. A lock file
 * with the owner's pid keeps it to one; a lock left by a dead process is taken over.
 */
async function lockDirectory (dir: string): Promise<() => Promise<void>> {
  const file = join(dir, 'studio-pro-auth.lock')
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(file, String(process.pid), { flag: 'wx' })
      return async () => { await rm(file, { force: true }) }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const owner = Number((await readFile(file, 'utf8').catch(() => '')).trim())
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && processAlive(owner)) {
        throw new Error(`the embedded database in ${dir} is in use by process ${owner}; stop it first, or set DATABASE_URL`)
      }
      await rm(file, { force: true })
    }
  }
  throw new Error(`cannot lock the embedded database in ${dir}`)
}

async function createPglite (dir: string): Promise<Database> {
  const [{ PGlite }, { PrismaPGlite }] = await Promise.all([import('@electric-sql/pglite'), import('pglite-prisma-adapter')])
  await mkdir(dir, { recursive: true })
  const unlock = await lockDirectory(dir)
  let pglite: PGlite
  try {
    pglite = await PGlite.create(dir)
  } catch (err) {
    await unlock()
    throw err
  }
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(pglite) })
  return {
    kind: 'pglite',
    prisma,
    rows: async <T>(statement: Prisma.Sql) => (await pglite.query<T>(statement.text, statement.values)).rows,
    async connect () {
      // PGlite is one in-process connection: there is nobody to race, the lock is a formality.
      return {
        query: async (sql, params) => await pglite.query(sql, params) as never,
        exec: async (sql) => { await pglite.exec(sql) },
        release: async () => {}
      }
    },
    async ping () { await pglite.query('SELECT 1') },
    async close () {
      await prisma.$disconnect()
      await pglite.close()
      await unlock()
    }
  }
}
