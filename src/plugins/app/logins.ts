import fp from 'fastify-plugin'
import { randomUUID } from 'node:crypto'
import { Prisma, type OtpChallenge, type Phone, type PrismaClient, type User } from '../../generated/prisma/client.js'
import { lockAccount } from '../../lib/account-lock.js'
import { ApiError } from '../../lib/errors.js'
import {
  ACCOUNT_CODE_LOCKOUT_MS, CHALLENGE_TTL_MS, MAX_ACCOUNT_CODE_FAILURES,
  PASSWORD_FAILURES_BEFORE_THROTTLE, PASSWORD_THROTTLE_BASE_MS, PASSWORD_THROTTLE_MAX_MS
} from '../../lib/limits.js'
import { recoveryKit } from '../../lib/recovery-codes.js'
import type { RequestContext } from '../../lib/request-context.js'
import type { Secrets } from '../../lib/secrets.js'
import { challengeState } from '../../second-factor/challenge-state.js'
import { AMR, type Method } from '../../second-factor/method.js'
import type { PhoneCode, SendResult } from '../../second-factor/phone-code.js'
import type { RecoveryCode } from '../../second-factor/recovery-code.js'
import type { Totp } from '../../second-factor/totp.js'
import type { Channel } from '../../senders/message-sender.js'
import type { Devices } from './devices.js'
import type { Metrics } from '../external/metrics.js'
import type { Events } from './events.js'
import type { Notifier } from './notifier.js'
import type { Passwords } from './passwords.js'
import type { Policy, PolicyService } from './policy.js'
import { normaliseEmail, type Users } from './users.js'

export interface Delivery { channel: Channel, phone: { masked: string }, resendAvailableAt: string }

export type LoginResult =
  | { status: 'authenticated', userId: string, amr: string[], enrollmentDueBy?: string }
  | { status: 'challenge_required', challengeId: string, expiresAt: string, methods: Method[], delivery: Delivery | null, deliveryError?: 'delivery_failed' }
  | { status: 'enrollment_required', userId: string }

/** What the backend polls to learn whether the code arrived: Twilio's status callbacks update `delivery.status`. */
export interface ChallengeStatus {
  challengeId: string
  status: 'open' | 'completed' | 'closed' | 'expired'
  expiresAt: string
  delivery: null | { channel: Channel, phone: { masked: string }, status: string, errorCode: string | null, updatedAt: string }
}

export interface Authenticated { status: 'authenticated', userId: string, amr: string[], deviceToken?: string, deviceTokenExpiresAt?: string }

export interface Logins {
  start (input: { email: string, password: string, deviceToken?: string | undefined }, context: RequestContext): Promise<LoginResult>
  send (challengeId: string, input: { channel: Channel, phoneId?: string | undefined }, context: RequestContext): Promise<Delivery>
  verify (challengeId: string, input: { code: string, method?: Method | undefined, rememberDevice?: boolean | undefined }, context: RequestContext): Promise<Authenticated>
  recover (challengeId: string, input: { recoveryCode: string }, context: RequestContext): Promise<Authenticated & { recoveryCode: string, recoveryKit: string }>
  status (challengeId: string): Promise<ChallengeStatus>
}

export interface LoginsDeps {
  prisma: PrismaClient
  secrets: Secrets
  passwords: Passwords
  users: Users
  policy: PolicyService
  devices: Devices
  events: Events
  notifier: Notifier
  phoneCode: PhoneCode
  recoveryCode: RecoveryCode
  totp: Totp
  supportContact: string
  /** Counts second-factor checks by method and outcome. */
  metrics?: Pick<Metrics, 'verifications'> | undefined
}

/** A send refused before the provider was called (budgets, number checks): the login itself goes on. */
const REFUSED_SENDS = new Set(['send_limit_reached', 'invalid_phone_number', 'phone_country_not_allowed'])

/** The enrolled methods the user's policy lets them use; the recovery code always stays. */
export function allowedMethods (policy: Policy, enrolled: Method[]): Method[] {
  return enrolled.filter((method) => method === 'recovery' || policy.allowedMethods.includes(method))
}

function phoneChannels (policy: Policy): Channel[] {
  return (['sms', 'voice'] as const).filter((channel) => policy.allowedMethods.includes(channel))
}

function retryAfterSeconds (until: Date, now = Date.now()): number {
  return Math.max(1, Math.ceil((until.getTime() - now) / 1000))
}

export function createLogins (deps: LoginsDeps): Logins {
  const { prisma, secrets, passwords, users, policy, devices, events, notifier, phoneCode, recoveryCode, totp } = deps

  const locked = () => new ApiError('account_locked', `This account is locked. To unlock it, contact ${deps.supportContact}.`)

  /** Counts a wrong password for this email, known or not; from the fifth on, each one doubles the wait. */
  async function passwordFailed (emailIndex: string): Promise<void> {
    const now = new Date()
    await prisma.$executeRaw`
      INSERT INTO login_throttles (email_index, failures, blocked_until, updated_at)
      VALUES (${emailIndex}, 1, NULL, ${now})
      ON CONFLICT (email_index) DO UPDATE SET
        failures = login_throttles.failures + 1,
        blocked_until = CASE
          WHEN login_throttles.failures + 1 >= ${PASSWORD_FAILURES_BEFORE_THROTTLE}::int
          THEN ${now}::timestamptz + make_interval(secs => LEAST(
            ${PASSWORD_THROTTLE_BASE_MS}::float8 * power(2, LEAST(login_throttles.failures + 1 - ${PASSWORD_FAILURES_BEFORE_THROTTLE}::int, 20)),
            ${PASSWORD_THROTTLE_MAX_MS}::float8) / 1000)
          ELSE NULL END,
        updated_at = ${now}`
  }

  /** A wrong code also counts against the account, across challenges; a full count pauses code checks. */
  async function codeFailed (userId: string): Promise<Date | null> {
    const until = new Date(Date.now() + ACCOUNT_CODE_LOCKOUT_MS)
    const rows = await prisma.$queryRaw<Array<{ code_failures: number }>>`
      UPDATE users SET
        code_failures = CASE WHEN code_failures + 1 >= ${MAX_ACCOUNT_CODE_FAILURES}::int THEN 0 ELSE code_failures + 1 END,
        code_locked_until = CASE WHEN code_failures + 1 >= ${MAX_ACCOUNT_CODE_FAILURES}::int THEN ${until}::timestamptz ELSE code_locked_until END
      WHERE id = ${userId}
      RETURNING code_failures`
    return rows[0]?.code_failures === 0 ? until : null
  }

  async function openChallenge (challengeId: string): Promise<OtpChallenge & { user: User }> {
    const challenge = await prisma.otpChallenge.findFirst({ where: { id: challengeId, purpose: 'login' }, include: { user: true } })
    if (challenge === null) throw new ApiError('not_found', 'no such login challenge')
    if (challenge.user.lockedAt !== null) throw locked()
    const state = challengeState(challenge)
    if (state === 'expired') throw new ApiError('challenge_expired', 'this login has expired; start again with the password')
    if (state !== 'open') throw new ApiError('challenge_closed', 'this login is over; start again with the password')
    return challenge
  }

  function assertNotPaused (user: User): void {
    if (user.codeLockedUntil !== null && user.codeLockedUntil > new Date()) {
      throw new ApiError('too_many_attempts', 'too many wrong codes for this account; wait before trying again', { retryAfter: retryAfterSeconds(user.codeLockedUntil) })
    }
  }

  function sendRefused (result: Exclude<SendResult, { sent: true }>): ApiError {
    switch (result.reason) {
      case 'too_soon': return new ApiError('resend_too_soon', 'a code was sent moments ago; wait before asking for another', { retryAfter: result.retryAfterSeconds })
      case 'limit': return new ApiError('send_limit_reached', 'no more codes can be sent for this login; use another method or start again')
      case 'expired': return new ApiError('challenge_expired', 'this login has expired; start again with the password')
      default: return new ApiError('challenge_closed', 'this login is over; start again with the password')
    }
  }

  async function sendTo (challenge: Pick<OtpChallenge, 'id' | 'userId' | 'ip'>, organizationId: string | null, phone: Phone, channel: Channel, context: RequestContext): Promise<Delivery> {
    // The per-IP budget counts the address the login began from, even for a later resend.
    const result = await phoneCode.send(challenge.id, challenge.userId, channel, phone, { organizationId, clientIp: challenge.ip })
    if (!result.sent) throw sendRefused(result)
    await events.record('challenge.sent', challenge.userId, context, { challengeId: challenge.id, channel, phone: phone.masked })
    return { channel, phone: { masked: phone.masked }, resendAvailableAt: result.resendAvailableAt.toISOString() }
  }

  async function forgetCodeFailures (user: Pick<User, 'id' | 'codeFailures'>): Promise<void> {
    // As read with the challenge: most users have no wrong code to forget, and skipping the
    // write saves a round trip on every right code. A wrong code racing in just now stays counted.
    if (user.codeFailures > 0) await prisma.user.update({ where: { id: user.id }, data: { codeFailures: 0 } })
  }

  function authenticated (userId: string, method: Method): Authenticated {
    return { status: 'authenticated', userId, amr: ['pwd', AMR[method]] }
  }

  /** A right SMS or voice code, the common case, in one round trip; null sends the request down the full path. */
  async function verifyInOneStatement (challengeId: string, input: { code: string, method: Channel | undefined, rememberDevice?: boolean | undefined }, context: RequestContext): Promise<Authenticated | null> {
    const completed = await phoneCode.completeLogin(challengeId, input.code, {
      method: input.method,
      policy: policy.inSql,
      also: (row) => events.asInsertFrom('login.succeeded', context, { from: row.from, userId: row.userId, details: Prisma.sql`jsonb_build_object('method', ${row.channel})` })
    })
    if (completed === null) return null
    const { userId, channel } = completed
    events.announce('login.succeeded', userId, context, { method: channel })
    deps.metrics?.verifications.inc({ method: input.method ?? channel, outcome: 'accepted' })
    const done = authenticated(userId, channel)
    if (input.rememberDevice !== true) return done
    const remembered = await devices.remember(userId, completed.rememberDeviceDays, context)
    return remembered === null ? done : { ...done, ...remembered }
  }

  return {
    async status (challengeId) {
      const challenge = await prisma.otpChallenge.findFirst({ where: { id: challengeId, purpose: 'login' } })
      if (challenge === null) throw new ApiError('not_found', 'no such login challenge')
      // The latest code delivery: after a failed SMS and a call, the call is what the user waits for.
      const delivery = await prisma.delivery.findFirst({ where: { challengeId, kind: 'code' }, orderBy: { createdAt: 'desc' } })
      return {
        challengeId,
        status: challengeState(challenge),
        expiresAt: challenge.expiresAt.toISOString(),
        delivery: delivery === null
          ? null
          : { channel: delivery.channel === 'voice' ? 'voice' : 'sms', phone: { masked: delivery.masked }, status: delivery.status, errorCode: delivery.errorCode, updatedAt: delivery.updatedAt.toISOString() }
      }
    },

    async start (input, context) {
      const email = normaliseEmail(input.email)
      const emailIndex = secrets.blindIndex('email', email)
      const throttle = await prisma.loginThrottle.findUnique({ where: { emailIndex } })
      if (throttle?.blockedUntil != null && throttle.blockedUntil > new Date()) {
        throw new ApiError('too_many_attempts', 'too many wrong passwords for this account; wait before trying again', { retryAfter: retryAfterSeconds(throttle.blockedUntil) })
      }
      const user = await prisma.user.findUnique({
        where: { email },
        include: { phones: { orderBy: { slot: 'asc' } }, recoveryCode: { select: { id: true } }, totp: { select: { enabledAt: true } } }
      })
      if (user === null) {
        await passwords.verifyDummy(input.password)
        await passwordFailed(emailIndex)
        throw new ApiError('invalid_credentials', 'email or password is wrong')
      }
      if (!await passwords.verify(user.passwordHash, input.password)) {
        await passwordFailed(emailIndex)
        await events.record('login.failed', user.id, context, { reason: 'password' })
        throw new ApiError('invalid_credentials', 'email or password is wrong')
      }
      if (throttle !== null) await prisma.loginThrottle.deleteMany({ where: { emailIndex } })
      if (user.lockedAt !== null) throw locked()
      assertNotPaused(user)

      const totpEnabled = user.totp?.enabledAt != null
      const userPolicy = await policy.forUser(user)
      const methods = allowedMethods(userPolicy, users.methodsFor({ phones: user.phones, totpEnabled, hasRecoveryCode: user.recoveryCode !== null }))
      if (!methods.some((method) => method !== 'recovery')) {
        const verdict = await policy.requirement(user, false, userPolicy)
        if (verdict.required) {
          const dueBy = verdict.enrollmentDueBy
          if (dueBy !== null && dueBy > new Date()) {
            // Contract section 6: within the grace period the password alone still lets the user in.
            await events.record('login.succeeded', user.id, context, { method: 'password', enrollmentDueBy: dueBy.toISOString() })
            return { status: 'authenticated', userId: user.id, amr: ['pwd'], enrollmentDueBy: dueBy.toISOString() }
          }
          await events.record('login.succeeded', user.id, context, { method: 'password', enrollmentRequired: true })
          return { status: 'enrollment_required', userId: user.id }
        }
        await events.record('login.succeeded', user.id, context, { method: 'password' })
        return { status: 'authenticated', userId: user.id, amr: ['pwd'] }
      }

      // Someone else's, revoked, expired or made-up tokens all fall through to the challenge: the answer tells nothing.
      if (input.deviceToken !== undefined && await devices.use(user.id, input.deviceToken, userPolicy.rememberDeviceDays)) {
        await events.record('login.succeeded', user.id, context, { method: 'device' })
        return { status: 'authenticated', userId: user.id, amr: ['pwd', 'device'] }
      }

      const challenge = await prisma.otpChallenge.create({
        data: {
          id: randomUUID(),
          userId: user.id,
          purpose: 'login',
          expiresAt: new Date(Date.now() + CHALLENGE_TTL_MS),
          ip: context.ip,
          userAgent: context.userAgent
        }
      })
      const base = { status: 'challenge_required' as const, challengeId: challenge.id, expiresAt: challenge.expiresAt.toISOString(), methods }
      const primary = user.phones.find((phone) => phone.primary) ?? user.phones[0]
      const channels = phoneChannels(userPolicy)
      const preferred: Channel = primary?.channel === 'voice' ? 'voice' : 'sms'
      const channel = channels.includes(preferred) ? preferred : channels[0]
      // An authenticator app the policy allows is the preferred method: no SMS is sent (and
      // paid for) unless the user asks for one with `send`.
      if (primary === undefined || channel === undefined || methods.includes('totp')) return { ...base, delivery: null }
      try {
        return { ...base, delivery: await sendTo(challenge, user.organizationId, primary, channel, context) }
      } catch (err) {
        if (err instanceof ApiError && REFUSED_SENDS.has(err.code)) {
          // Contract section 6: over a send budget the login goes on with nothing sent,
          // so TOTP and the recovery code still work; `send` then answers the refusal.
          await events.record('challenge.send_refused', user.id, context, { challengeId: challenge.id, phone: primary.masked, reason: err.code })
          return { ...base, delivery: null }
        }
        if (!(err instanceof ApiError) || err.code !== 'delivery_failed') throw err
        // The challenge is still good: the backend can offer a resend, the other channel or the recovery code.
        await events.record('challenge.send_failed', user.id, context, { challengeId: challenge.id, phone: primary.masked })
        return { ...base, delivery: null, deliveryError: 'delivery_failed' }
      }
    },

    async send (challengeId, input, context) {
      const challenge = await openChallenge(challengeId)
      assertNotPaused(challenge.user)
      if (!phoneChannels(await policy.forUser(challenge.user)).includes(input.channel)) {
        throw new ApiError('invalid_request', `channel: ${input.channel} is not allowed by this user's organization policy`)
      }
      const phones = await prisma.phone.findMany({ where: { userId: challenge.userId }, orderBy: { slot: 'asc' } })
      const phone = input.phoneId !== undefined
        ? phones.find((p) => p.id === input.phoneId)
        : phones.find((p) => p.id === challenge.phoneId) ?? phones.find((p) => p.primary) ?? phones[0]
      if (phone === undefined) throw new ApiError('not_found', input.phoneId !== undefined ? `no phone ${input.phoneId} for this user` : 'the user has no phone')
      return await sendTo(challenge, challenge.user.organizationId, phone, input.channel, context)
    },

    async verify (challengeId, input, context) {
      if (input.method === undefined || input.method === 'sms' || input.method === 'voice') {
        const done = await verifyInOneStatement(challengeId, { ...input, method: input.method }, context)
        if (done !== null) return done
      }
      const challenge = await openChallenge(challengeId)
      assertNotPaused(challenge.user)
      // Without a method: the channel the code went by, or the authenticator app when nothing was sent.
      const method = input.method ?? (challenge.channel === 'voice'
        ? 'voice'
        : challenge.channel === null && await totp.enabledFor(challenge.userId) ? 'totp' : 'sms')
      if (method !== 'sms' && method !== 'voice' && method !== 'totp') {
        throw new ApiError('invalid_request', `method: ${method} is not available for this user`)
      }
      const userPolicy = await policy.forUser(challenge.user)
      if (!userPolicy.allowedMethods.includes(method)) {
        throw new ApiError('invalid_request', `method: ${method} is not allowed by this user's organization policy`)
      }
      const used: Method = method === 'totp' ? 'totp' : challenge.channel === 'voice' ? 'voice' : 'sms'
      // The login's event is written by the statement that accepts the code: one round trip, and
      // no accepted code without its record.
      const loginRecord = events.asInsert('login.succeeded', challenge.userId, context, { method: used })
      // Every code method answers the same CodeCheck: a wrong TOTP code spends the challenge's
      // attempts and the account's code-failure count exactly as a wrong SMS code does.
      const check = method === 'totp' ? await totp.check(challenge, input.code, loginRecord) : await phoneCode.check(challenge, input.code, loginRecord)
      deps.metrics?.verifications.inc({ method, outcome: check.outcome })
      switch (check.outcome) {
        case 'unavailable':
          throw new ApiError('invalid_request', 'method: totp is not available for this user')
        case 'accepted': {
          loginRecord.announce()
          await forgetCodeFailures(challenge.user)
          const done = authenticated(challenge.userId, used)
          if (input.rememberDevice !== true) return done
          const remembered = await devices.remember(challenge.userId, userPolicy.rememberDeviceDays, context)
          return remembered === null ? done : { ...done, ...remembered }
        }
        case 'expired':
          throw new ApiError('challenge_expired', 'this login has expired; start again with the password')
        case 'closed':
          throw new ApiError('challenge_closed', 'this login is over; start again with the password')
        case 'wrong': {
          await events.record('code.failed', challenge.userId, context, { challengeId, method, attemptsRemaining: check.attemptsRemaining })
          const pausedUntil = await codeFailed(challenge.userId)
          if (pausedUntil !== null) {
            await events.record('code.lockout', challenge.userId, context, { until: pausedUntil.toISOString() })
            throw new ApiError('too_many_attempts', 'too many wrong codes for this account; wait before trying again', { retryAfter: retryAfterSeconds(pausedUntil) })
          }
          throw new ApiError('invalid_code', 'the code is wrong', { attemptsRemaining: check.attemptsRemaining })
        }
      }
    },

    async recover (challengeId, input, context) {
      const challenge = await openChallenge(challengeId)
      const userId = challenge.userId
      const check = await recoveryCode.check(userId, input.recoveryCode, challenge.createdAt)
      deps.metrics?.verifications.inc({ method: 'recovery', outcome: check.outcome })
      switch (check.outcome) {
        case 'refused':
          if (check.locked) throw locked()
          throw new ApiError('too_many_attempts', 'another recovery code for this account is being checked; try again in a moment', { retryAfter: 1 })
        case 'already_used':
          throw new ApiError('challenge_closed', 'this recovery code was just used')
        case 'wrong':
          await events.record('recovery.failed', userId, context, { challengeId, attemptsRemaining: check.attemptsRemaining })
          if (check.lock) {
            if (await lockAccount(prisma, userId, 'too_many_recovery_failures')) {
              await events.record('account.locked', userId, context, { reason: 'too_many_recovery_failures' })
            }
            throw locked()
          }
          throw new ApiError('invalid_recovery_code', 'the recovery code is wrong', { attemptsRemaining: check.attemptsRemaining })
        case 'accepted': {
          await prisma.otpChallenge.updateMany({ where: { id: challengeId, completedAt: null }, data: { completedAt: new Date() } })
          await forgetCodeFailures(challenge.user)
          await events.record('login.succeeded', userId, context, { method: 'recovery' })
          await events.record('recovery.used', userId, context, { challengeId })
          const issued = await recoveryCode.issue(userId)
          await events.record('recovery_code.regenerated', userId, context)
          const primary = await prisma.phone.findFirst({ where: { userId, primary: true } })
          await notifier.notify(userId, primary, 'recovery_code_used')
          return {
            ...authenticated(userId, 'recovery'),
            recoveryCode: issued.code,
            recoveryKit: recoveryKit({ email: challenge.user.email, code: issued.code, issuedAt: issued.createdAt, supportContact: deps.supportContact })
          }
        }
      }
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance { logins: Logins }
}

export default fp(async (fastify) => {
  fastify.decorate('logins', createLogins({
    prisma: fastify.prisma,
    secrets: fastify.secrets,
    passwords: fastify.passwords,
    users: fastify.users,
    policy: fastify.policy,
    devices: fastify.devices,
    events: fastify.events,
    notifier: fastify.notifier,
    phoneCode: fastify.secondFactors.phoneCode,
    recoveryCode: fastify.secondFactors.recoveryCode,
    totp: fastify.secondFactors.totp,
    supportContact: fastify.config.SUPPORT_CONTACT,
    metrics: fastify.metrics
  }))
}, { name: 'logins', dependencies: ['database', 'passwords', 'users', 'policy', 'devices', 'events', 'notifier', 'second-factors', 'metrics'] })
