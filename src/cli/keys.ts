// `npm run keys -- create|list|revoke`: the API keys the Studio Pro backend uses to call
// the service (contract section 0). A key is shown once, when it is made, and stored only
// as a hash; it cannot be shown again, only revoked and replaced.
import { parseArgs } from 'node:util'
import type { Database } from '../db/database.js'
import { loadConfigOrExit, type Config } from '../lib/config.js'
import { isUniqueViolation } from '../lib/prisma-errors.js'
import { SCOPES, createApiKeys, type Scope } from '../plugins/app/api-keys.js'
import { isMain } from './is-main.js'

export const KEYS_USAGE = `Manage the API keys that callers of Studio Pro Auth send as "Authorization: Bearer <key>".

Usage:
  npm run --silent keys -- create --name NAME --scopes SCOPE[,SCOPE...]
  npm run --silent keys -- list
  npm run --silent keys -- revoke NAME|ID

create  makes a key and prints it alone on the last line. It is shown this once
        and stored only as a hash: put it in the caller's secret store right away.
list    shows every key's name, scopes, creation and revocation dates (never the key).
revoke  stops the key with that name (or id, as list shows it) from working, at once.

NAME    letters, digits, '.', '_' or '-', up to 64 characters, e.g. backend
SCOPE   login   POST /v1/logins and the login challenge routes
        users   users, phones and recovery codes
        admin   support: lock, unlock, reset two-factor, events
        *       everything (quote it in a shell: --scopes '*')

The database is the service's: DATABASE_URL, or the embedded one under DATA_DIR
(stop the service first when it uses the embedded database).
`

const USAGE = KEYS_USAGE

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/** A mistake in the command line: usage text and exit code 2. */
export class UsageError extends Error {}
/** A command that could not be carried out: its message and exit code 1. */
export class Failure extends Error {}

export type KeysCommand = Exclude<Command, { kind: 'help' }>

type Command =
  | { kind: 'help' }
  | { kind: 'create', name: string, scopes: Scope[] }
  | { kind: 'list' }
  | { kind: 'revoke', name: string }

export function parseKeysCommand (argv: string[]): Command {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      options: { name: { type: 'string' }, scopes: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true
    })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const { values, positionals } = parsed
  const [command, ...rest] = positionals
  if (values.help === true || command === 'help') return { kind: 'help' }
  if (command === undefined) throw new UsageError('a command is required: create, list or revoke')

  const noExtra = (allowed: string[]) => {
    const given = Object.keys(values).filter((option) => !allowed.includes(option))
    if (given.length > 0) throw new UsageError(`${command} takes no --${given[0]}`)
  }

  switch (command) {
    case 'create': {
      noExtra(['name', 'scopes'])
      if (rest.length > 0) throw new UsageError(`unexpected argument ${rest[0]}; give the name with --name`)
      const name = values.name?.trim()
      if (name === undefined || name === '') throw new UsageError('create needs --name NAME')
      if (!NAME.test(name)) throw new UsageError(`--name ${JSON.stringify(name)}: use letters, digits, '.', '_' or '-', up to 64 characters`)
      if (values.scopes === undefined) throw new UsageError('create needs --scopes, e.g. --scopes login,users')
      const scopes = [...new Set(values.scopes.split(',').map((scope) => scope.trim()).filter((scope) => scope !== ''))]
      if (scopes.length === 0) throw new UsageError('--scopes needs at least one scope')
      const unknown = scopes.filter((scope) => !(SCOPES as readonly string[]).includes(scope))
      if (unknown.length > 0) throw new UsageError(`unknown scope ${unknown.join(', ')}; the scopes are ${SCOPES.join(', ')}`)
      return { kind: 'create', name, scopes: scopes as Scope[] }
    }
    case 'list':
      noExtra([])
      if (rest.length > 0) throw new UsageError(`list takes no argument (got ${rest[0]})`)
      return { kind: 'list' }
    case 'revoke': {
      noExtra([])
      if (rest.length !== 1) throw new UsageError('revoke needs exactly one NAME or ID, e.g. revoke backend')
      return { kind: 'revoke', name: rest[0]! }
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}; use create, list or revoke`)
  }
}

function table (rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd() + '\n').join('')
}

/** Carries out a parsed command; the admin CLI (src/cli/admin.ts) runs its `keys` commands through here too. */
export async function runKeys (command: KeysCommand, config: Config, db: Database): Promise<string> {
  const keys = createApiKeys({ prisma: db.prisma, bootstrapKey: config.BOOTSTRAP_API_KEY })
  switch (command.kind) {
    case 'create': {
      let created
      try {
        created = await keys.create(command.name, command.scopes)
      } catch (err) {
        if (isUniqueViolation(err)) {
          throw new Failure(`A key named ${command.name} already exists (revoked keys keep their name); choose another name`)
        }
        throw err
      }
      return `Created API key ${command.name} with scope${command.scopes.length === 1 ? '' : 's'} ${command.scopes.join(', ')}.\n` +
        'Store it now in the caller\'s secret store: it is shown only this once and kept only as a hash.\n' +
        `${created.key}\n`
    }
    case 'list': {
      const list = await keys.list()
      const note = config.BOOTSTRAP_API_KEY === undefined ? '' : 'BOOTSTRAP_API_KEY is set as well: it works with scope * and is not stored.\n'
      if (list.length === 0) return `No API keys yet. Make one with: npm run keys -- create --name NAME --scopes login,users\n${note}`
      return table([
        ['NAME', 'SCOPES', 'CREATED', 'REVOKED', 'ID'],
        ...list.map((key) => [key.name, key.scopes.join(','), key.createdAt.toISOString(), key.revokedAt?.toISOString() ?? '-', key.id])
      ]) + note
    }
    case 'revoke': {
      // An id names its key as well as the name does; names cannot look like our UUIDs' exact strings by accident.
      const name = (await keys.list()).find((key) => key.id === command.name)?.name ?? command.name
      if (await keys.revoke(name)) return `Revoked API key ${name}: it no longer works.\n`
      const known = (await keys.list()).find((key) => key.name === name)
      throw new Failure(known === undefined
        ? `No API key is named ${command.name}; see npm run keys -- list`
        : `The API key ${command.name} was already revoked on ${known.revokedAt?.toISOString() ?? '?'}`)
    }
  }
}

async function main (argv: string[]): Promise<number> {
  let command: Command
  try {
    command = parseKeysCommand(argv)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`keys: ${err.message}\n\n${USAGE}`)
    return 2
  }
  if (command.kind === 'help') {
    process.stdout.write(USAGE)
    return 0
  }

  // A bad setting: the same one line and exit code 1 as the service's start.
  const config = await loadConfigOrExit()
  // Loaded only now: the database drivers and the Prisma client take seconds to load, and help
  // and usage errors need none of them.
  const { createDatabase } = await import('../db/database.js')
  const { runMigrations } = await import('../db/migrate.js')
  const db = await createDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR, poolSize: 1 })
  try {
    await runMigrations(db)
    process.stdout.write(await runKeys(command, config, db))
    return 0
  } catch (err) {
    if (!(err instanceof Failure)) throw err
    process.stderr.write(`keys: ${err.message}\n`)
    return 1
  } finally {
    await db.close()
  }
}

// Run only as a program: the admin CLI imports the parser and runner above.
if (isMain(import.meta.url)) {
  // Explicit exits: a database driver's idle timer must not keep the command waiting.
  main(process.argv.slice(2)).then((code) => process.exit(code), (err: unknown) => {
    process.stderr.write(`keys: failed: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  })
}
