// `npm run admin -- <command>` (in the image: `node dist/cli/admin.js <command>`): what an
// operator does by hand. The support commands go through the same services as the HTTP
// routes (the app is built, never listening), so they write the same security events and
// send the same notices; the `keys` and `reencrypt` commands are those of keys.ts and reencrypt.ts.
import { userInfo } from 'node:os'
import { parseArgs } from 'node:util'
import type { FastifyInstance } from 'fastify'
import type { Database } from '../db/database.js'
import { type Config, loadConfigOrExit } from '../lib/config.js'
import { ApiError } from '../lib/errors.js'
import type { RequestContext } from '../lib/request-context.js'
import { isMain } from './is-main.js'
import { Failure, KEYS_USAGE, UsageError, parseKeysCommand, runKeys, type KeysCommand } from './keys.js'
import { runReencrypt } from './reencrypt.js'

export const USAGE = `Studio Pro Auth administration.

Usage:
  npm run --silent admin -- keys create --name NAME --scopes SCOPE[,SCOPE...]
  npm run --silent admin -- keys list
  npm run --silent admin -- keys revoke NAME|ID
  npm run --silent admin -- user EMAIL|ID
  npm run --silent admin -- unlock EMAIL|ID --reason REASON
  npm run --silent admin -- reset-2fa EMAIL|ID --reason REASON
  npm run --silent admin -- reencrypt
In the container: docker compose exec auth node dist/cli/admin.js <command>

keys       API keys for callers of the service; a new key is printed once, on the last line.
           Scopes: login, users, admin, * (see npm run keys -- --help).
user       shows a user as GET /v1/users/{id} does (no secrets).
unlock     unlocks the account and clears its failure counters (POST /v1/users/{id}/unlock).
reset-2fa  removes the phones, the authenticator app and the recovery code; the user
           enrols again at the next login (DELETE /v1/users/{id}/two-factor). The old primary phone is told.
reencrypt  after a key rotation, rewrites stored secrets under SECRET_KEY (npm run reencrypt).

unlock and reset-2fa write a security event with the reason, as the HTTP routes do.
Exit codes: 0 done, 1 failed (the reason on stderr), 2 bad command line.
The configuration is the service's (DATABASE_URL, SECRET_KEY, Twilio ...).
`

type Command =
  | { kind: 'help' }
  | { kind: 'keys', command: KeysCommand }
  | { kind: 'user', target: string }
  | { kind: 'unlock' | 'reset-2fa', target: string, reason: string }
  | { kind: 'reencrypt' }

const REASON_MAX = 500

export function parseAdminCommand (argv: string[]): Command {
  const [command, ...rest] = argv
  if (command === undefined) throw new UsageError('a command is required')
  if (command === 'help' || command === '--help' || command === '-h') return { kind: 'help' }
  // keys has its own parser: the same options and messages as npm run keys.
  if (command === 'keys') {
    const parsed = parseKeysCommand(rest)
    if (parsed.kind === 'help') return { kind: 'help' }
    return { kind: 'keys', command: parsed }
  }
  let parsed
  try {
    parsed = parseArgs({ args: rest, options: { reason: { type: 'string' } }, allowPositionals: true, strict: true })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const { values, positionals } = parsed
  const one = () => {
    if (positionals.length !== 1 || positionals[0]!.trim() === '') throw new UsageError(`${command} needs exactly one EMAIL or ID`)
    return positionals[0]!.trim()
  }
  switch (command) {
    case 'user':
      if (values.reason !== undefined) throw new UsageError('user takes no --reason')
      return { kind: 'user', target: one() }
    case 'unlock':
    case 'reset-2fa': {
      const target = one()
      const reason = values.reason?.trim()
      if (reason === undefined || reason === '') throw new UsageError(`${command} needs --reason REASON: it is kept in the security events`)
      if (reason.length > REASON_MAX) throw new UsageError(`--reason is longer than ${REASON_MAX} characters`)
      return { kind: command, target, reason }
    }
    case 'reencrypt':
      if (positionals.length > 0 || values.reason !== undefined) throw new UsageError('reencrypt takes no argument')
      return { kind: 'reencrypt' }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`)
  }
}

export interface AdminIo {
  out (text: string): void
  err (text: string): void
}

export interface AdminDeps {
  /** Default: the environment, as the service reads it. */
  config?: Config
  /** An open, migrated database (tests); default: the configured one, opened and closed here. */
  database?: Database
}

/** Who did it, in the events: the CLI and the operating-system account that ran it. */
function cliContext (): RequestContext {
  let user = 'unknown'
  try { user = userInfo().username } catch {}
  return { ip: null, userAgent: `admin-cli (${user})` }
}

async function resolveUserId (app: FastifyInstance, target: string): Promise<string> {
  if (target.includes('@')) {
    const [user] = await app.users.findByEmail(target)
    if (user === undefined) throw new Failure(`no user with email ${target}`)
    return user.id
  }
  return (await app.users.view(target)).id
}

async function execute (command: Exclude<Command, { kind: 'help' }>, app: FastifyInstance, config: Config, io: AdminIo): Promise<number> {
  switch (command.kind) {
    case 'keys':
      io.out(await runKeys(command.command, config, app.db))
      return 0
    case 'user': {
      const userId = await resolveUserId(app, command.target)
      io.out(JSON.stringify(await app.users.view(userId), null, 2) + '\n')
      return 0
    }
    case 'unlock': {
      const userId = await resolveUserId(app, command.target)
      const user = await app.support.unlock(userId, command.reason, cliContext())
      io.out(`Unlocked ${user.email} (${user.id}); its failure counters are cleared.\n`)
      return 0
    }
    case 'reset-2fa': {
      const userId = await resolveUserId(app, command.target)
      await app.support.resetTwoFactor(userId, command.reason, cliContext())
      const user = await app.users.view(userId)
      io.out(`Removed the second factors of ${user.email} (${user.id}); they enrol again at the next login.\n`)
      return 0
    }
    case 'reencrypt':
      return await runReencrypt(config, app.db, io.out, io.err)
  }
}

/** The whole CLI without the process: parse, build the app, run, and the exit code. */
export async function runAdmin (argv: string[], io: AdminIo, deps: AdminDeps = {}): Promise<number> {
  let command: Command
  try {
    command = parseAdminCommand(argv)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    io.err(`admin: ${err.message}\n\n${USAGE}`)
    return 2
  }
  if (command.kind === 'help') {
    io.out(argv[0] === 'keys' ? KEYS_USAGE : USAGE)
    return 0
  }

  const loaded = deps.config ?? await loadConfigOrExit()
  // The service's own log lines go to stderr, so stdout is the answer only; info lines
  // (migrations, one access line per request) are noise for a one-shot command.
  const config = { ...loaded, LOG_LEVEL: loaded.LOG_LEVEL === 'info' ? 'warn' : loaded.LOG_LEVEL }
  // Loaded only now: the app, its drivers and the Prisma client take seconds to load.
  const { buildApp } = await import('../app.js')
  const app = await buildApp({ config, database: deps.database, requireApiAccess: false, logStream: process.stderr })
  try {
    await app.ready()
    return await execute(command, app, config, io)
  } catch (err) {
    if (err instanceof Failure) {
      io.err(`admin: ${err.message}\n`)
      return 1
    }
    if (err instanceof ApiError) {
      io.err(`admin: ${err.code}: ${err.detail ?? err.message}\n`)
      return 1
    }
    throw err
  } finally {
    await app.close()
  }
}

if (isMain(import.meta.url)) {
  const io: AdminIo = { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) }
  // Explicit exits: a database driver's or Redis client's timer must not keep the command waiting.
  runAdmin(process.argv.slice(2), io).then((code) => process.exit(code), (err: unknown) => {
    process.stderr.write(`admin: failed: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  })
}
