import t from 'tap'
import { randomBytes } from 'node:crypto'
import { createEvents } from '../../../src/plugins/app/events.js'
import { createLogins } from '../../../src/plugins/app/logins.js'
import { createPasswords, type Passwords } from '../../../src/plugins/app/passwords.js'
import { createPolicy } from '../../../src/plugins/app/policy.js'
import { createUsers } from '../../../src/plugins/app/users.js'
import { createSecrets } from '../../../src/lib/secrets.js'
import { ApiError } from '../../../src/lib/errors.js'
import type { Devices } from '../../../src/plugins/app/devices.js'
import type { Notifier } from '../../../src/plugins/app/notifier.js'
import type { PhoneCode } from '../../../src/second-factor/phone-code.js'
import type { RecoveryCode } from '../../../src/second-factor/recovery-code.js'
import { migratedDatabase } from '../../helpers/database.js'
import { STRONG_PASSWORD } from '../../helpers/app.js'

// Timing cannot be asserted in a unit test on a shared machine; what makes the
// times equal can: exactly one argon2 verification per attempt, whether or not
// the email exists.
t.test('unknown emails cost one argon2 verification, like wrong passwords', async (t) => {
  const { db } = await migratedDatabase(t)
  const real = createPasswords({ memoryCost: 1024, timeCost: 1, parallelism: 1 })
  const calls: string[] = []
  const counting: Passwords = {
    ...real,
    verify: async (hash, secret) => { calls.push('verify'); return await real.verify(hash, secret) },
    verifyDummy: async (secret) => { calls.push('dummy'); await real.verifyDummy(secret) }
  }
  const events = createEvents({ prisma: db.prisma })
  const policy = createPolicy({ prisma: db.prisma })
  const users = createUsers({ prisma: db.prisma, passwords: counting, events, policy, factors: [] })
  const unused = {} as unknown
  const logins = createLogins({
    prisma: db.prisma,
    secrets: createSecrets(randomBytes(32)),
    passwords: counting,
    users,
    policy,
    devices: unused as Devices,
    events,
    notifier: unused as Notifier,
    phoneCode: unused as PhoneCode,
    recoveryCode: unused as RecoveryCode,
    supportContact: 'support@studiopro.com'
  })
  const context = { ip: '198.51.100.7', userAgent: null }
  await users.create({ email: 'known@studio.example', password: STRONG_PASSWORD }, context)

  const answers: string[] = []
  for (const email of ['known@studio.example', 'unknown@studio.example']) {
    calls.length = 0
    try {
      await logins.start({ email, password: 'wrong-password-9' }, context)
    } catch (err) {
      t.ok(err instanceof ApiError)
      answers.push(JSON.stringify({ code: (err as ApiError).code, detail: (err as ApiError).detail, status: (err as ApiError).status }))
    }
    t.equal(calls.length, 1, `${email}: one argon2 verification, no more, no less`)
  }
  t.equal(answers.length, 2)
  t.equal(answers[0], answers[1], 'the same error for both')
})
