// Issue 2, section 5: at least 80 bits, easy to read aloud and type, groups of four,
// an alphabet without 0/O/1/I/L; case, spaces and dashes never make a right code wrong.
import t from 'tap'
import { RECOVERY_CODE_ALPHABET, RECOVERY_CODE_GROUP_LENGTH, RECOVERY_CODE_GROUPS } from '../../src/lib/limits.js'
import { canonicalRecoveryCode, generateRecoveryCode, recoveryKit } from '../../src/lib/recovery-codes.js'

const FORMAT = /^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{4}(?:-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{4})+$/

t.test('the alphabet has no look-alikes and no repeats', async (t) => {
  for (const confusing of '01OIL') t.notOk(RECOVERY_CODE_ALPHABET.includes(confusing), `no ${confusing}`)
  t.equal(new Set(RECOVERY_CODE_ALPHABET).size, RECOVERY_CODE_ALPHABET.length, 'no symbol twice')
  t.match(RECOVERY_CODE_ALPHABET, /^[A-Z2-9]+$/, 'upper-case letters and digits only')
})

t.test('a code carries at least 80 bits', async (t) => {
  const bits = RECOVERY_CODE_GROUPS * RECOVERY_CODE_GROUP_LENGTH * Math.log2(RECOVERY_CODE_ALPHABET.length)
  t.ok(bits >= 80, `${bits.toFixed(1)} bits`)
})

t.test('codes are groups of four joined by dashes', async (t) => {
  for (let i = 0; i < 200; i++) {
    const code = generateRecoveryCode()
    t.match(code, FORMAT)
    t.equal(code.split('-').length, RECOVERY_CODE_GROUPS)
    t.equal(code.replace(/-/g, '').length, RECOVERY_CODE_GROUPS * RECOVERY_CODE_GROUP_LENGTH)
  }
})

t.test('codes are unique and every symbol is used about equally often', async (t) => {
  const codes = new Set<string>()
  const counts = new Map<string, number>()
  const n = 5000
  for (let i = 0; i < n; i++) {
    const code = generateRecoveryCode()
    codes.add(code)
    for (const ch of code.replace(/-/g, '')) counts.set(ch, (counts.get(ch) ?? 0) + 1)
  }
  t.equal(codes.size, n, 'no repeats in 5000 codes')
  t.equal(counts.size, RECOVERY_CODE_ALPHABET.length, 'every symbol appears')
  const expected = (n * RECOVERY_CODE_GROUPS * RECOVERY_CODE_GROUP_LENGTH) / RECOVERY_CODE_ALPHABET.length
  // chi-square with 30 degrees of freedom: 70 is far beyond p = 0.0001
  const chi = [...counts.values()].reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0)
  t.ok(chi < 70, `chi-square ${chi.toFixed(1)} shows no bias`)
})

t.test('what a person types is canonicalised: case, spaces, dashes', async (t) => {
  const code = 'ABCD-EFGH-JKMN-PQRS-TUVW'
  for (const typed of ['abcd-efgh-jkmn-pqrs-tuvw', 'ABCD EFGH JKMN PQRS TUVW', 'abcdefghjkmnpqrstuvw', ' AbCd-EfGh -JKMN- pqrs tuvw\n']) {
    t.equal(canonicalRecoveryCode(typed), canonicalRecoveryCode(code), JSON.stringify(typed))
  }
  t.equal(canonicalRecoveryCode(code), 'ABCDEFGHJKMNPQRSTUVW')
  t.not(canonicalRecoveryCode('ABCD-EFGH-JKMN-PQRS-TUVX'), canonicalRecoveryCode(code), 'one symbol differs')
})

t.test('the kit has the email, the code, the date, how to use it and the support contact', async (t) => {
  const kit = recoveryKit({ email: 'ana@studio.example', code: 'ABCD-EFGH-JKMN-PQRS-TUVW', issuedAt: new Date('2025-03-04T23:59:00Z'), supportContact: 'help@studio.example' })
  t.match(kit, 'ana@studio.example')
  t.match(kit, 'ABCD-EFGH-JKMN-PQRS-TUVW')
  t.match(kit, '2025-03-04')
  t.match(kit, 'help@studio.example')
  t.match(kit, /once/i, 'says it is single-use')
  t.match(kit, /sign in/i, 'says how to use it')
  t.match(kit, /lost or replaced phone/i, 'says when to use it')
  t.ok(kit.split('\n').every((line) => line.length <= 80), 'prints on a page without wrapping')
})
