import fp from 'fastify-plugin'
import { createPhoneCode, type PhoneCode } from '../../second-factor/phone-code.js'
import { createRecoveryCode, type RecoveryCode } from '../../second-factor/recovery-code.js'
import { createTotp, type Totp } from '../../second-factor/totp.js'

export interface SecondFactors {
  phoneCode: PhoneCode
  recoveryCode: RecoveryCode
  totp: Totp
}

declare module 'fastify' {
  interface FastifyInstance { secondFactors: SecondFactors }
}

export default fp(async (fastify) => {
  fastify.decorate('secondFactors', {
    phoneCode: createPhoneCode({
      prisma: fastify.prisma,
      rows: fastify.db.rows,
      secrets: fastify.secrets,
      notifier: fastify.notifier,
      resendCooldownMs: fastify.config.RESEND_COOLDOWN_SECONDS * 1000
    }),
    recoveryCode: createRecoveryCode({ prisma: fastify.prisma, passwords: fastify.passwords, secrets: fastify.secrets }),
    totp: createTotp({ prisma: fastify.prisma, secrets: fastify.secrets })
  })
}, { name: 'second-factors', dependencies: ['database', 'notifier', 'passwords'] })
