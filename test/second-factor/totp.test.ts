// The TOTP module against RFC 6238 itself, with its clock injected: the appendix B vectors,
// the ±1 step window, single use of a step, and concurrent use of one code.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { Secret } from 'otpauth'
import { createTotp } from '../../src/second-factor/totp.js'
import { buildTestApp, createUser, totpCode, type TestApp } from '../helpers/app.js'

// RFC 6238 appendix B, SHA-1: the secret is the ASCII string "12345678901234567890".
const RFC_SECRET = Secret.fromLatin1('12345678901234567890').base32
const RFC_VECTORS: Array<[number, string]> = [
  [59, '94287082'], [1111111109, '07081804'], [1111111111, '14050471'],
  [1234567890, '89005924'], [2000000000, '69279037'], [20000000000, '65353130']
]

/** A mid-step instant near now (challenges expire in real time), and a module whose clock the test sets. */
function clockedTotp (ctx: TestApp) {
  const clock = { ms: Math.floor(Date.now() / 30_000) * 30_000 + 15_000 }
  const totp = createTotp({ prisma: ctx.db.prisma, secrets: ctx.app.secrets, now: () => clock.ms })
  return { clock, totp }
}

async function loginChallenge (ctx: TestApp, userId: string) {
  return await ctx.db.prisma.otpChallenge.create({
    data: { id: randomUUID(), userId, purpose: 'login', expiresAt: new Date(Date.now() + 15 * 60_000) }
  })
}

/** Enrols through the module at `atMs` (its code's step is then spent); returns the secret. */
async function enrolAt (ctx: TestApp, totp: ReturnType<typeof createTotp>, clock: { ms: number }, atMs: number): Promise<{ userId: string, secret: string }> {
  const user = await createUser(ctx)
  const saved = clock.ms
  clock.ms = atMs
  const pending = await totp.startEnrolment(user.id)
  const confirmed = await totp.confirm(user.id, { enrollmentId: pending.enrollmentId, code: totpCode(pending.secret, 0, atMs) })
  clock.ms = saved
  if (confirmed.outcome !== 'confirmed') throw new Error(`enrol: ${confirmed.outcome}`)
  return { userId: user.id, secret: pending.secret }
}

t.test('RFC 6238 appendix B (SHA-1): the module accepts each vector\'s code at its time, in its step, and nothing one digit off', async (t) => {
  const ctx = await buildTestApp(t)
  const { totp } = clockedTotp(ctx)
  for (const [seconds, eightDigits] of RFC_VECTORS) {
    const code = eightDigits.slice(-6)
    t.equal(totpCode(RFC_SECRET, 0, seconds * 1000), code, `T=${seconds}: six digits are the last six of ${eightDigits}`)
    t.equal(totp.matchStep(RFC_SECRET, code, seconds * 1000), Math.floor(seconds / 30), `T=${seconds}: ${code} is accepted for step ${Math.floor(seconds / 30)}`)
    const offByOne = code.slice(0, 5) + String((Number(code[5]) + 1) % 10)
    t.equal(totp.matchStep(RFC_SECRET, offByOne, seconds * 1000), null, `T=${seconds}: ${offByOne} is refused`)
  }
  t.equal(totp.matchStep(RFC_SECRET, '94287082', 59_000), null, 'eight digits are not six')
  t.equal(totp.matchStep(RFC_SECRET, '28708a', 59_000), null, 'non-digits are refused')
  t.equal(totp.matchStep(RFC_SECRET, '', 59_000), null, 'empty is refused')
})

t.test('the window is ±1 step: codes of the step before and after are accepted, two steps off are refused', async (t) => {
  const ctx = await buildTestApp(t)
  const { clock, totp } = clockedTotp(ctx)
  const { userId, secret } = await enrolAt(ctx, totp, clock, clock.ms - 10 * 60_000)
  const now = clock.ms

  for (const offset of [-2, 2]) {
    const check = await totp.check(await loginChallenge(ctx, userId), totpCode(secret, offset, now))
    t.match(check, { outcome: 'wrong', attemptsRemaining: 4 }, `a code ${offset} steps off is wrong`)
  }
  t.same(await totp.check(await loginChallenge(ctx, userId), totpCode(secret, -1, now)), { outcome: 'accepted' }, 'the previous step is accepted (a slow typist)')
  t.same(await totp.check(await loginChallenge(ctx, userId), totpCode(secret, 1, now)), { outcome: 'accepted' }, 'the next step is accepted (a phone clock ahead)')
  t.match(await totp.check(await loginChallenge(ctx, userId), totpCode(secret, 0, now)), { outcome: 'wrong' },
    'once a later step was used, the current one is refused too: steps only move forward')
  const row = await ctx.db.prisma.totpFactor.findUniqueOrThrow({ where: { userId } })
  t.equal(row.lastStep, BigInt(Math.floor(now / 30_000) + 1), 'last_step holds the latest accepted step')

  clock.ms = now + 30_000
  t.match(await totp.check(await loginChallenge(ctx, userId), totpCode(secret, 0, clock.ms)), { outcome: 'wrong' }, 'the same code 30 s later is still spent')
  clock.ms = now + 60_000
  t.same(await totp.check(await loginChallenge(ctx, userId), totpCode(secret, 0, clock.ms)), { outcome: 'accepted' }, 'a fresh step works again')
})

t.test('a code is accepted once: the same code on a second challenge is wrong', async (t) => {
  const ctx = await buildTestApp(t)
  const { clock, totp } = clockedTotp(ctx)
  const { userId, secret } = await enrolAt(ctx, totp, clock, clock.ms - 60_000)
  const code = totpCode(secret, 0, clock.ms)
  const first = await loginChallenge(ctx, userId)
  t.same(await totp.check(first, code), { outcome: 'accepted' })
  t.ok((await ctx.db.prisma.otpChallenge.findUniqueOrThrow({ where: { id: first.id } })).completedAt, 'the challenge is completed')
  const second = await loginChallenge(ctx, userId)
  t.same(await totp.check(second, code), { outcome: 'wrong', attemptsRemaining: 4 }, 'the replay spends an attempt of the new challenge')
})

t.test('the enrolment\'s confirming code is spent: it cannot log in afterwards', async (t) => {
  const ctx = await buildTestApp(t)
  const { clock, totp } = clockedTotp(ctx)
  const { userId, secret } = await enrolAt(ctx, totp, clock, clock.ms)
  t.match(await totp.check(await loginChallenge(ctx, userId), totpCode(secret, 0, clock.ms)), { outcome: 'wrong' })
})

t.test('one right code sent 10 times at once, to one challenge or to ten: accepted exactly once', async (t) => {
  const ctx = await buildTestApp(t)
  const { clock, totp } = clockedTotp(ctx)
  const { userId, secret } = await enrolAt(ctx, totp, clock, clock.ms - 60_000)

  const one = await loginChallenge(ctx, userId)
  const same = await Promise.all(Array.from({ length: 10 }, async () => await totp.check(one, totpCode(secret, -1, clock.ms))))
  t.equal(same.filter((c) => c.outcome === 'accepted').length, 1, 'one challenge: one acceptance')

  const challenges = await Promise.all(Array.from({ length: 10 }, async () => await loginChallenge(ctx, userId)))
  const spread = await Promise.all(challenges.map(async (c) => await totp.check(c, totpCode(secret, 0, clock.ms))))
  t.equal(spread.filter((c) => c.outcome === 'accepted').length, 1, 'ten challenges: one acceptance')
  const completed = await ctx.db.prisma.otpChallenge.count({ where: { id: { in: challenges.map((c) => c.id) }, completedAt: { not: null } } })
  t.equal(completed, 1, 'exactly one challenge completed')
})

t.test('a user without an enabled app: the method is unavailable, and a pending enrolment is no factor', async (t) => {
  const ctx = await buildTestApp(t)
  const { clock, totp } = clockedTotp(ctx)
  const user = await createUser(ctx)
  t.same(await totp.check(await loginChallenge(ctx, user.id), '123456'), { outcome: 'unavailable' })
  const pending = await totp.startEnrolment(user.id)
  t.same(await totp.check(await loginChallenge(ctx, user.id), totpCode(pending.secret, 0, clock.ms)), { outcome: 'unavailable' })
  t.equal(await totp.enabledFor(user.id), false)
  t.same(totp.availableFor({ phones: [], totpEnabled: true, hasRecoveryCode: false }), ['totp'])
  t.same(totp.availableFor({ phones: [{ id: 'p' }], totpEnabled: false, hasRecoveryCode: true }), [])
})

t.test('a pending enrolment expires, is replaced by a new one, and is confirmed once', async (t) => {
  const ctx = await buildTestApp(t)
  const { clock, totp } = clockedTotp(ctx)
  const user = await createUser(ctx)
  const first = await totp.startEnrolment(user.id)
  const second = await totp.startEnrolment(user.id)
  t.same(await totp.confirm(user.id, { enrollmentId: first.enrollmentId, code: totpCode(first.secret, 0, clock.ms) }), { outcome: 'not_found' }, 'the replaced enrolment is gone')
  t.same(await totp.confirm(user.id, { enrollmentId: second.enrollmentId, code: totpCode(first.secret, 0, clock.ms) }), { outcome: 'wrong', attemptsRemaining: 4 }, 'the old secret does not confirm the new one, and spends one of its five attempts')

  const saved = clock.ms
  clock.ms = second.expiresAt.getTime() + 1
  t.same(await totp.confirm(user.id, { enrollmentId: second.enrollmentId, code: totpCode(second.secret, 0, clock.ms) }), { outcome: 'expired' }, 'after 10 minutes it is void')
  clock.ms = saved

  const results = await Promise.all(Array.from({ length: 5 }, async () =>
    await totp.confirm(user.id, { enrollmentId: second.enrollmentId, code: totpCode(second.secret, 0, clock.ms) })))
  t.equal(results.filter((r) => r.outcome === 'confirmed').length, 1, 'five confirmations at once: one takes effect')
})

t.test('the secret is stored only as AES-GCM ciphertext under the current key', async (t) => {
  const ctx = await buildTestApp(t)
  const { clock, totp } = clockedTotp(ctx)
  const { userId, secret } = await enrolAt(ctx, totp, clock, clock.ms)
  const pending = await totp.startEnrolment(userId)
  const [row] = await ctx.db.prisma.$queryRawUnsafe<Array<{ row: string, secret_cipher: string, pending_secret_cipher: string }>>(
    'SELECT row_to_json(t)::text AS row, secret_cipher, pending_secret_cipher FROM totp_factors t WHERE user_id = $1', userId)
  for (const value of [row?.secret_cipher, row?.pending_secret_cipher]) t.match(value, new RegExp(`^v1\\.${ctx.app.secrets.keyId}\\.`))
  t.notOk(row?.row.includes(secret), 'no enabled secret in clear')
  t.notOk(row?.row.includes(pending.secret), 'no pending secret in clear')
  t.notOk(row?.row.toLowerCase().includes(Buffer.from(Secret.fromBase32(secret).bytes).toString('hex')), 'nor its bytes in hex')
  t.equal(ctx.app.secrets.decrypt(row?.secret_cipher ?? ''), secret)
})
