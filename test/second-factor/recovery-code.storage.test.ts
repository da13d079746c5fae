// Recovery codes are stored as keyed HMAC, not argon2 (src/second-factor/recovery-code.ts
// says why); codes stored as argon2 by earlier versions must keep working until replaced.
import t from 'tap'
import { canonicalRecoveryCode } from '../../src/lib/recovery-codes.js'
import { buildTestApp, enrolledUser, startLogin } from '../helpers/app.js'

t.test('a new recovery code is stored as an HMAC that reveals nothing of the code', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 1)
  const row = await ctx.db.prisma.recoveryCode.findUniqueOrThrow({ where: { userId: user.id } })
  t.match(row.codeHash, /^hmac-sha256\$[0-9a-f]{64}$/)
  t.notOk(row.codeHash.includes(canonicalRecoveryCode(user.recoveryCode)))
  t.ok(await ctx.app.secondFactors.recoveryCode.matches(row.codeHash, user.recoveryCode.toLowerCase()), 'typed in lower case still matches')
  t.notOk(await ctx.app.secondFactors.recoveryCode.matches(row.codeHash, user.recoveryCode.replace(/.$/, (c) => c === '2' ? '3' : '2')), 'one symbol off does not')
  t.notOk(await ctx.app.secondFactors.recoveryCode.matches('hmac-sha256$' + '0'.repeat(64), user.recoveryCode), 'another hash does not')
})

t.test('a code stored as argon2id by an earlier version still logs in, and its replacement is an HMAC', async (t) => {
  const ctx = await buildTestApp(t)
  const user = await enrolledUser(ctx, 2)
  const legacy = await ctx.app.passwords.hash(canonicalRecoveryCode(user.recoveryCode))
  await ctx.db.prisma.recoveryCode.update({ where: { userId: user.id }, data: { codeHash: legacy } })

  const wrongLogin = await startLogin(ctx, user)
  const wrong = await ctx.request('POST', `/v1/logins/${wrongLogin.challengeId}/recovery`, { recoveryCode: 'AAAA-BBBB-CCCC-DDDD-EEEE' })
  t.equal(wrong.statusCode, 422, 'a wrong code against the legacy hash is wrong')
  t.equal(wrong.json().code, 'invalid_recovery_code')

  const login = await startLogin(ctx, user)
  const response = await ctx.request('POST', `/v1/logins/${login.challengeId}/recovery`, { recoveryCode: user.recoveryCode })
  t.equal(response.statusCode, 200, response.body)
  const row = await ctx.db.prisma.recoveryCode.findUniqueOrThrow({ where: { userId: user.id } })
  t.match(row.codeHash, /^hmac-sha256\$/, 'the new code is stored the new way')
  t.ok(await ctx.app.secondFactors.recoveryCode.matches(row.codeHash, response.json().recoveryCode))
})
