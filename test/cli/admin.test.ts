// The admin CLI against a test database: runAdmin() is the whole CLI minus the process, so
// most commands run in-process; one run goes through the real entry point for exit codes.
import t from 'tap'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { runAdmin, type AdminIo } from '../../src/cli/admin.js'
import { buildTestApp, createUser, enrolledUser, type TestApp } from '../helpers/app.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const KEY = /^spa_[A-Za-z0-9_-]{43}$/

t.setTimeout(300_000)

async function admin (ctx: TestApp | null, ...argv: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  const io: AdminIo = { out: (text) => { stdout += text }, err: (text) => { stderr += text } }
  const code = await runAdmin(argv, io, ctx === null ? {} : { config: ctx.config, database: ctx.db })
  return { code, stdout, stderr }
}

async function eventsOf (ctx: TestApp, userId: string, type: string) {
  return await ctx.db.prisma.securityEvent.findMany({ where: { userId, type } })
}

t.test('no command, an unknown one or a missing --reason: the usage text and exit 2, before any database', async (t) => {
  for (const argv of [[], ['frobnicate'], ['unlock', 'a@b.example'], ['unlock', '--reason', 'x'], ['user'], ['keys', 'create', '--name', 'x'], ['reencrypt', 'now']]) {
    const run = await admin(null, ...argv)
    t.equal(run.code, 2, `exit 2 for ${JSON.stringify(argv)}`)
    t.match(run.stderr, /^admin: .+\n\nStudio Pro Auth administration\.\n\nUsage:\n/)
    t.equal(run.stdout, '')
  }
  const help = await admin(null, 'help')
  t.equal(help.code, 0)
  t.match(help.stdout, /unlock EMAIL\|ID --reason REASON/)
})

t.test('keys create, list and revoke by id: the key works, then it does not', async (t) => {
  const ctx = await buildTestApp(t)
  const created = await admin(ctx, 'keys', 'create', '--name', 'backend', '--scopes', 'users')
  t.equal(created.code, 0, created.stderr)
  const key = created.stdout.trimEnd().split('\n').at(-1) ?? ''
  t.match(key, KEY, 'the key alone on the last line')
  t.equal((await ctx.request('GET', '/v1/users?email=nobody@studio.example', undefined, key)).statusCode, 200, 'the key works against the service')

  const listed = await admin(ctx, 'keys', 'list')
  t.equal(listed.code, 0)
  t.match(listed.stdout, /^NAME +SCOPES +CREATED +REVOKED +ID\nbackend +users +\S+ +- +[0-9a-f-]{36}\n/)
  t.notOk(listed.stdout.includes(key), 'list never shows a key')
  const id = /backend .* ([0-9a-f-]{36})\n/.exec(listed.stdout)?.[1] ?? ''

  const revoked = await admin(ctx, 'keys', 'revoke', id)
  t.equal(revoked.code, 0, revoked.stderr)
  t.match(revoked.stdout, /Revoked API key backend/)
  t.equal((await ctx.request('GET', '/v1/users?email=nobody@studio.example', undefined, key)).statusCode, 401, 'the revoked key is refused')
  const again = await admin(ctx, 'keys', 'revoke', id)
  t.equal(again.code, 1)
  t.match(again.stderr, /already revoked/)
  const duplicate = await admin(ctx, 'keys', 'create', '--name', 'backend', '--scopes', 'login')
  t.equal(duplicate.code, 1)
  t.match(duplicate.stderr, /already exists/)
})

t.test('user looks a user up by email or id, without secrets; unknown ones exit 1', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 1)
  for (const target of [user.email, user.id]) {
    const run = await admin(ctx, 'user', target)
    t.equal(run.code, 0, run.stderr)
    const shown = JSON.parse(run.stdout)
    t.match(shown, { id: user.id, email: user.email, twoFactor: { enabled: true, phones: [{ id: user.phoneId }] } })
    t.notOk(run.stdout.includes(user.number.slice(2)), 'the number only masked')
  }
  const unknown = await admin(ctx, 'user', 'nobody@studio.example')
  t.equal(unknown.code, 1)
  t.match(unknown.stderr, /^admin: no user with email nobody@studio\.example\n$/)
  const badId = await admin(ctx, 'user', '00000000-0000-4000-8000-000000000000')
  t.equal(badId.code, 1)
  t.match(badId.stderr, /not_found/)
})

t.test('unlock goes through the support service: the account opens and the event records the reason and the CLI', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await createUser(ctx)
  t.equal((await ctx.request('POST', `/v1/users/${user.id}/lock`, { reason: 'suspicious logins' })).statusCode, 200)

  const run = await admin(ctx, 'unlock', user.email, '--reason', 'ticket 4471: identity checked by phone')
  t.equal(run.code, 0, run.stderr)
  t.match(run.stdout, new RegExp(`Unlocked ${user.email.replace(/\./g, '\\.')}`))
  t.equal((await ctx.request('GET', `/v1/users/${user.id}`)).json().locked, false)
  const events = await eventsOf(ctx, user.id, 'account.unlocked')
  t.equal(events.length, 1, 'one account.unlocked event, as the HTTP route writes')
  t.same(events[0]?.details, { reason: 'ticket 4471: identity checked by phone' })
  t.match(events[0]?.userAgent, /^admin-cli \(.+\)$/, 'the event says the CLI did it')

  const missing = await admin(ctx, 'unlock', 'nobody@studio.example', '--reason', 'x')
  t.equal(missing.code, 1)
})

t.test('reset-2fa removes phones and recovery code, records two_factor.reset and tells the old phone', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 2)
  ctx.twilio.reset()
  const run = await admin(ctx, 'reset-2fa', user.id, '--reason', 'lost phone, verified in person')
  t.equal(run.code, 0, run.stderr)
  const after = (await ctx.request('GET', `/v1/users/${user.id}`)).json()
  t.same(after.twoFactor.phones, [])
  t.equal(after.twoFactor.recoveryCode, null)
  const events = await eventsOf(ctx, user.id, 'two_factor.reset')
  t.equal(events.length, 1)
  t.same(events[0]?.details, { reason: 'lost phone, verified in person' })
  t.equal(ctx.twilio.messagesTo(user.number).length, 1, 'the notice the HTTP route sends')
})

t.test('reencrypt runs the key-rotation rewrite', async (t) => {
  const ctx = await buildTestApp(t)
  await enrolledUser(ctx, 3)
  const run = await admin(ctx, 'reencrypt')
  t.equal(run.code, 0, run.stderr)
  t.match(run.stdout, /Re-encrypted \d+ value\(s\) under key \S+; 0 could not be decrypted\.\n$/)
})

t.test('the real entry point: exit 2 and the usage on stderr for an unknown command', async (t) => {
  const result = await new Promise<{ code: number, stdout: string, stderr: string }>((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'src/cli/admin.ts', 'frobnicate'], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr })
    })
  })
  t.equal(result.code, 2)
  t.match(result.stderr, /^admin: unknown command "frobnicate"\n\nStudio Pro Auth administration\./)
  t.equal(result.stdout, '')
})
