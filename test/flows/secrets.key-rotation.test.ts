// Phone numbers at rest: no table holds a number in clear, and a key rotation
// (SECRET_KEY new, SECRET_KEY_PREVIOUS old, then `reencrypt`) loses nothing.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { buildApp } from '../../src/app.js'
import { ENCRYPTED_COLUMNS, reEncryptSecrets } from '../../src/lib/re-encrypt.js'
import { createSecrets } from '../../src/lib/secrets.js'
import { Secret } from 'otpauth'
import { awayFromStepEdge, buildTestApp, enrolledUser, phoneNumber, startLogin, STRONG_PASSWORD, TEST_API_KEY, totpCode, totpUser } from '../helpers/app.js'

/** Every row of every table of the service, as JSON text. */
async function dumpAllRows (ctx: Awaited<ReturnType<typeof buildTestApp>>): Promise<string> {
  const tables = await ctx.db.prisma.$queryRawUnsafe<Array<{ name: string }>>(
    "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() AND tablename NOT LIKE '\\_%'")
  if (tables.length < 8) throw new Error(`expected the service's tables, found ${tables.map((x) => x.name).join(', ')}`)
  let text = ''
  for (const { name } of tables) {
    const rows = await ctx.db.prisma.$queryRawUnsafe<Array<{ row: string }>>(`SELECT row_to_json(x)::text AS row FROM "${name}" x`)
    text += rows.map((r) => r.row).join('\n')
  }
  return text
}

t.test('no table holds a phone number in clear: verified, pending, or sent to', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 1)
  await startLogin(ctx, user)
  // A pending verification too: its number waits in otp_challenges.
  const pending = await ctx.request('POST', `/v1/users/${user.id}/phones`, { phoneNumber: phoneNumber(2) })
  t.equal(pending.statusCode, 202)
  const everything = await dumpAllRows(ctx)
  t.ok(everything.length > 1000, 'the dump has the rows')
  for (const number of [phoneNumber(1), phoneNumber(2)]) {
    const national = number.slice(2)
    t.notOk(everything.includes(national), `${number}'s digits appear nowhere`)
    t.notOk(everything.includes(national.slice(0, 6)), 'not even the first six digits')
  }
  const stored = await ctx.db.prisma.$queryRawUnsafe<Array<{ number_cipher: string }>>('SELECT number_cipher FROM phones')
  t.match(stored[0]?.number_cipher, new RegExp(`^v1\\.${ctx.app.secrets.keyId}\\.`), 'AES-GCM ciphertext tagged with the key id')
})

t.test('rotation: the previous key still decrypts, reencrypt moves everything to the new key', async (t) => {
  const ctx = await buildTestApp(t)
  const oldKey = ctx.config.SECRET_KEY
  const newKey = randomBytes(32)
  const user = await enrolledUser(ctx, 3)
  const pending = await ctx.request('POST', `/v1/users/${user.id}/phones`, { phoneNumber: phoneNumber(4) })
  t.equal(pending.statusCode, 202)
  const pendingCode = ctx.twilio.lastCodeFor(phoneNumber(4))
  await ctx.app.close()

  const login = async (app: Awaited<ReturnType<typeof buildApp>>) => await app.inject({
    method: 'POST', url: '/v1/logins', headers: { authorization: `Bearer ${TEST_API_KEY}` }, payload: { email: user.email, password: STRONG_PASSWORD }
  })

  // Without the old key, the new one cannot read what the old one wrote: the reason SECRET_KEY_PREVIOUS exists.
  const newOnly = createSecrets(newKey)
  const before = await ctx.db.prisma.$queryRawUnsafe<Array<{ number_cipher: string }>>('SELECT number_cipher FROM phones')
  t.throws(() => newOnly.decrypt(before[0]?.number_cipher ?? ''), /neither SECRET_KEY nor SECRET_KEY_PREVIOUS/)

  const rotating = await buildApp({ config: { ...ctx.config, SECRET_KEY: newKey, SECRET_KEY_PREVIOUS: oldKey }, database: ctx.db })
  t.teardown(async () => { await rotating.close() })
  ctx.twilio.reset()
  t.equal((await login(rotating)).json().status, 'challenge_required')
  t.equal(ctx.twilio.requests[0]?.to, phoneNumber(3), 'during the rotation the code still goes to the right number')

  const result = await reEncryptSecrets({ db: ctx.db, secrets: createSecrets(newKey, oldKey) })
  // The phone, the finished verification of that phone (it keeps its number) and the pending one.
  t.same(result, { updated: 3, failed: 0 }, 'the verified and the pending numbers were rewritten')
  t.same(await reEncryptSecrets({ db: ctx.db, secrets: createSecrets(newKey, oldKey) }), { updated: 0, failed: 0 }, 'a second run finds nothing to do')
  for (const spec of ENCRYPTED_COLUMNS) {
    const rows = await ctx.db.prisma.$queryRawUnsafe<Array<{ value: string }>>(`SELECT "${spec.column}" AS value FROM "${spec.table}" WHERE "${spec.column}" IS NOT NULL`)
    for (const row of rows) t.match(row.value, new RegExp(`^v1\\.${newOnly.keyId}\\.`), `${spec.table}.${spec.column} is under the new key`)
  }
  await rotating.close()

  // The old key is gone for good now.
  const rotated = await buildApp({ config: { ...ctx.config, SECRET_KEY: newKey, SECRET_KEY_PREVIOUS: undefined }, database: ctx.db })
  t.teardown(async () => { await rotated.close() })
  ctx.twilio.reset()
  t.equal((await login(rotated)).json().status, 'challenge_required')
  t.equal(ctx.twilio.requests[0]?.to, phoneNumber(3), 'after reencrypt the new key alone reaches the number')
  const again = await rotated.inject({ method: 'POST', url: `/v1/users/${user.id}/phones`, headers: { authorization: `Bearer ${TEST_API_KEY}` }, payload: { phoneNumber: phoneNumber(3) } })
  t.equal(again.json().code, 'phone_already_verified', 'the blind index was recomputed: the same number is still recognised')
  const verified = await rotated.inject({ method: 'POST', url: `/v1/users/${user.id}/phones/verify`, headers: { authorization: `Bearer ${TEST_API_KEY}` }, payload: { verificationId: pending.json().verificationId, code: pendingCode } })
  // Codes are keyed by SECRET_KEY too: a code sent before the rotation is void after it (10 minutes at most).
  t.equal(verified.json().code, 'invalid_code', 'a code sent under the old key does not survive the rotation')
})

t.test('a ciphertext no key can read is reported, not destroyed', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 5)
  const stranger = randomBytes(32)
  const result = await reEncryptSecrets({ db: ctx.db, secrets: createSecrets(stranger) })
  t.same(result, { updated: 0, failed: 2 }, 'the phone and its verification challenge')
  const rows = await ctx.db.prisma.phone.findMany({ where: { userId: user.id } })
  t.equal(ctx.app.secrets.decrypt(rows[0]?.numberCipher ?? ''), phoneNumber(5), 'the row is untouched')
})

t.test('TOTP secrets: never in clear in any table, and an enabled and a pending secret survive a key rotation', async (t) => {
  const ctx = await buildTestApp(t)
  const oldKey = ctx.config.SECRET_KEY
  const newKey = randomBytes(32)
  const user = await totpUser(ctx)
  const pending = (await ctx.request('POST', `/v1/users/${user.id}/totp`)).json()
  const secretBytes = (base32: string) => Buffer.from(Secret.fromBase32(base32).bytes)

  const everything = await dumpAllRows(ctx)
  for (const secret of [user.secret, pending.secret]) {
    t.notOk(everything.includes(secret), 'the base32 secret appears nowhere')
    t.notOk(everything.includes(secret.slice(0, 12)), 'not even its start')
    t.notOk(everything.toLowerCase().includes(secretBytes(secret).toString('hex')), 'nor its bytes in hex')
    t.notOk(everything.includes(secretBytes(secret).toString('base64')), 'nor in base64')
  }
  t.ok(ENCRYPTED_COLUMNS.some((c) => c.table === 'totp_factors' && c.column === 'secret_cipher'), 'the enabled secret is listed for re-encryption')
  t.ok(ENCRYPTED_COLUMNS.some((c) => c.table === 'totp_factors' && c.column === 'pending_secret_cipher'), 'so is the pending one')
  await ctx.app.close()

  const result = await reEncryptSecrets({ db: ctx.db, secrets: createSecrets(newKey, oldKey) })
  t.same(result, { updated: 2, failed: 0 }, 'both TOTP secrets were rewritten (the user has no phone)')
  const newOnly = createSecrets(newKey)
  const row = await ctx.db.prisma.totpFactor.findUniqueOrThrow({ where: { userId: user.id } })
  t.match(row.secretCipher, new RegExp(`^v1\\.${newOnly.keyId}\\.`))
  t.equal(newOnly.decrypt(row.secretCipher ?? ''), user.secret, 'the new key alone reads the enabled secret')
  t.equal(newOnly.decrypt(row.pendingSecretCipher ?? ''), pending.secret, 'and the pending one')

  const rotated = await buildApp({ config: { ...ctx.config, SECRET_KEY: newKey, SECRET_KEY_PREVIOUS: undefined }, database: ctx.db })
  t.teardown(async () => { await rotated.close() })
  const request = async (url: string, payload: object) => await rotated.inject({ method: 'POST', url, headers: { authorization: `Bearer ${TEST_API_KEY}` }, payload })
  const login = await request('/v1/logins', { email: user.email, password: STRONG_PASSWORD })
  await awayFromStepEdge()
  const verified = await request(`/v1/logins/${login.json().challengeId}/verify`, { code: totpCode(user.secret), method: 'totp' })
  t.equal(verified.statusCode, 200, 'the authenticator app still logs in after the rotation')
  const confirmed = await request(`/v1/users/${user.id}/totp/verify`, { enrollmentId: pending.enrollmentId, code: totpCode(pending.secret) })
  t.equal(confirmed.statusCode, 200, 'the pending enrolment can still be confirmed')
})
