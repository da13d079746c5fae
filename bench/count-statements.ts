// Counts the SQL statements each hot path sends (`npx tsx bench/count-statements.ts`): the
// number of round trips is what bounds verify, send and recovery next to the bare UPDATE.
import pg from 'pg'
import { buildTestApp, enrolledUser, startLogin, STRONG_PASSWORD } from '../test/helpers/app.js'

const statements: string[] = []
const original = pg.Client.prototype.query as (...args: unknown[]) => unknown
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  const first = args[0] as string | { text?: string }
  statements.push((typeof first === 'string' ? first : first?.text ?? '?').replace(/\s+/g, ' ').slice(0, 110))
  return original.apply(this, args)
} as typeof pg.Client.prototype.query

const teardowns: Array<() => unknown> = []
const host = { teardown: (fn: () => unknown) => { teardowns.unshift(fn) } }

async function main () {
  const ctx = await buildTestApp(host, { env: { RESEND_COOLDOWN_SECONDS: '0' } })
  const user = await enrolledUser(ctx, 1)
  const counted = async (name: string, fn: () => Promise<{ statusCode: number }>) => {
    statements.length = 0
    const response = await fn()
    process.stdout.write(`${name}: ${response.statusCode}, ${statements.length} statements\n${statements.map((s) => '    ' + s).join('\n')}\n`)
  }
  await counted('login', async () => await ctx.request('POST', '/v1/logins', { email: user.email, password: STRONG_PASSWORD }))
  const login = await startLogin(ctx, user)
  await counted('send', async () => await ctx.request('POST', `/v1/logins/${login.challengeId}/send`, { channel: 'sms' }))
  await counted('verify-wrong', async () => await ctx.request('POST', `/v1/logins/${login.challengeId}/verify`, { code: '000000' }))
  const code = ctx.twilio.lastCodeFor(user.number) as string
  await counted('verify', async () => await ctx.request('POST', `/v1/logins/${login.challengeId}/verify`, { code }))
  const again = await startLogin(ctx, user)
  await counted('recovery', async () => await ctx.request('POST', `/v1/logins/${again.challengeId}/recovery`, { recoveryCode: user.recoveryCode }))
  for (const fn of teardowns) await fn()
}
main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1) })
