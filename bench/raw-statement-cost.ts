// What one raw statement costs in this process through the Prisma client and straight on a pg
// pool (`npx tsx bench/raw-statement-cost.ts`): the figures behind Database.rows. The statement
// is the shape of a right code's (an UPDATE ... FROM users with an array parameter) matching no row.
import pg from 'pg'
import { buildTestApp, enrolledUser, startLogin } from '../test/helpers/app.js'
const teardowns: Array<() => unknown> = []
const host = { teardown: (fn: () => unknown) => { teardowns.unshift(fn) } }
const ctx = await buildTestApp(host, {})
const user = await enrolledUser(ctx, 1)
const login = await startLogin(ctx, user)
const prisma = ctx.db.prisma
const { Prisma } = await import('../src/generated/prisma/client.js')
const pool = new pg.Pool({ connectionString: ctx.config.DATABASE_URL, max: 10 })
const N = 4000
async function measure (name: string, fn: (i: number) => Promise<unknown>) {
  for (let i = 0; i < 400; i++) await fn(i)
  const c0 = process.cpuUsage(); const t0 = performance.now()
  await Promise.all(Array.from({ length: 10 }, async (_, w) => { for (let i = w; i < N; i += 10) await fn(i) }))
  const c = process.cpuUsage(c0); const wall = performance.now() - t0
  console.log(`${name}: ${(N / wall * 1000).toFixed(0)}/s, node CPU ${((c.user + c.system) / 1000 / N).toFixed(3)} ms/call`)
}
const q = () => Prisma.sql`UPDATE otp_challenges AS c SET completed_at = ${new Date()}::timestamptz FROM users AS u WHERE c.id = ${login.challengeId} AND u.id = c.user_id AND c.code_hash = ${'nope'} AND COALESCE(${null}::text, c.channel) = ANY(${['sms', 'voice']}::text[]) RETURNING c.user_id`
// Three rounds: the first pays for the JIT and the pool's connections.
for (let round = 0; round < 3; round++) {
  await measure('prisma.$queryRaw', async () => await prisma.$queryRaw(q()))
  await measure('pool.query', async () => { const s = q(); return (await pool.query(s.text, s.values)).rows })
}
await pool.end()
for (const fn of teardowns) await fn()
process.exit(0)
