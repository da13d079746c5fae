// The ceilings the service is measured against, each run as its own process:
//   argon2 <seconds> <memoryCost> <timeCost> <parallelism> <concurrency>
//       argon2id verifies per second with the service's parameters on the same thread pool
//       (start it with the same --require ./dist/thread-pool.cjs preload as the service).
//   bare-update <databaseUrl> <port> [prisma|pool]
//       a bare Fastify route doing one Prisma conditional UPDATE ... RETURNING on the same
//       database and pool size as the service: the ceiling for the verify path. With `pool`
//       the same statement skips the Prisma client, as the right code's statement does.
import argon2 from 'argon2'
import Fastify from 'fastify'
import { createDatabase } from '../src/db/database.js'
import { Prisma } from '../src/generated/prisma/client.js'

async function argon2Ceiling (seconds: number, memoryCost: number, timeCost: number, parallelism: number, concurrency: number) {
  const hash = await argon2.hash('a benchmark password', { type: argon2.argon2id, memoryCost, timeCost, parallelism })
  const until = Date.now() + seconds * 1000
  let done = 0
  const started = process.hrtime.bigint()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (Date.now() < until) {
      await argon2.verify(hash, 'a wrong benchmark password')
      done++
    }
  }))
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9
  process.stdout.write(JSON.stringify({ verifies: done, seconds: elapsed, perSecond: done / elapsed, threadPool: Number(process.env.UV_THREADPOOL_SIZE ?? 4), concurrency }) + '\n')
}

async function bareUpdate (databaseUrl: string, port: number, via: 'prisma' | 'pool') {
  const db = await createDatabase({ databaseUrl, dataDir: '/tmp' })
  await db.prisma.$executeRawUnsafe('CREATE TABLE IF NOT EXISTS bench_counters (id int PRIMARY KEY, used int NOT NULL DEFAULT 0)')
  await db.prisma.$executeRawUnsafe('INSERT INTO bench_counters (id) SELECT g FROM generate_series(1, 1000) g ON CONFLICT DO NOTHING')
  const app = Fastify({ logger: false })
  app.post<{ Params: { id: string } }>('/bare/:id', async (request, reply) => {
    const statement = Prisma.sql`
      UPDATE bench_counters SET used = used + 1 WHERE id = ${Number(request.params.id)}::int AND used < 1000000000 RETURNING used`
    // The baseline goes through the Prisma client; `pool` is the same statement on the
    // driver directly, the way the service runs a right code's statement (Database.rows).
    const rows = via === 'pool' ? await db.rows<{ used: number }>(statement) : await db.prisma.$queryRaw<Array<{ used: number }>>(statement)
    if (rows.length === 0) return await reply.code(404).send({ code: 'not_found' })
    return { used: rows[0]?.used }
  })
  await app.listen({ port, host: '127.0.0.1' })
  process.stdout.write('ready\n')
  process.on('SIGTERM', () => { app.close().then(() => db.close()).finally(() => process.exit(0)) })
}

const [mode, ...args] = process.argv.slice(2)
if (mode === 'argon2') {
  const [seconds, m, t, p, c] = args.map(Number) as [number, number, number, number, number]
  argon2Ceiling(seconds, m, t, p, c).catch((err) => { console.error(err); process.exit(1) })
} else if (mode === 'bare-update') {
  bareUpdate(args[0] as string, Number(args[1]), args[2] === 'pool' ? 'pool' : 'prisma').catch((err) => { console.error(err); process.exit(1) })
} else {
  console.error('usage: baselines.ts argon2 ... | bare-update ...')
  process.exit(2)
}
