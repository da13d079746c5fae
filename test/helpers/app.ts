// The one way tests build the service: a fresh migrated PostgreSQL database, a fake
// Twilio reached through the real SDK, fast argon2, and `app.inject` for requests.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import type { DestinationStream } from 'pino'
import { buildApp } from '../../src/app.js'
import { parseConfig, type Config } from '../../src/lib/config.js'
import type { Database } from '../../src/db/database.js'
import { migratedDatabase, type TeardownHost } from './database.js'
import { startFakeTwilio, type FakeTwilio } from './fake-twilio.js'
import { Secret, TOTP } from 'otpauth'

export const TEST_API_KEY = 'test-bootstrap-key-0123456789abcdef'
export const STRONG_PASSWORD = 'Pirouette-Jete-1987!'

/** Cheapest argon2id settings: tests prove behaviour, `npm run bench` measures the real cost. */
export const FAST_ARGON2 = { ARGON2_MEMORY_COST: '1024', ARGON2_TIME_COST: '1', ARGON2_PARALLELISM: '1' }

/**
 * Per-IP and per-key limits far above what any test sends: every injected request comes
 * from 127.0.0.1. testConfig applies them unless a test passes its own values; the
 * tests of the limits themselves (test/flows/abuse.*.test.ts) set the real ones.
 */
export const WIDE_LIMITS = {
  RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: '100000',
  RATE_LIMIT_SEND_PER_IP_PER_MINUTE: '100000',
  RATE_LIMIT_VERIFY_PER_IP_PER_MINUTE: '100000',
  RATE_LIMIT_API_KEY_PER_MINUTE: '1000000',
  SMS_PER_NUMBER_PER_HOUR: '100000',
  SMS_PER_NUMBER_PER_DAY: '100000',
  SMS_PER_IP_PER_HOUR: '100000',
  SMS_PER_PREFIX_PER_DAY: '100000'
}

export interface TestApp {
  app: FastifyInstance
  twilio: FakeTwilio
  db: Database
  config: Config
  /** An authenticated request (scope `*` unless `key` is given). */
  request (method: InjectOptions['method'], url: string, body?: unknown, key?: string | null): Promise<LightMyRequestResponse>
}

export async function testConfig (t: TeardownHost, env: Record<string, string | undefined> = {}): Promise<Config> {
  const dataDir = await mkdtemp(join(tmpdir(), 'spa-app-'))
  t.teardown(async () => { await rm(dataDir, { recursive: true, force: true }) })
  const config = parseConfig({
    NODE_ENV: 'test',
    DATA_DIR: dataDir,
    SECRET_KEY: randomBytes(32).toString('base64'),
    BOOTSTRAP_API_KEY: TEST_API_KEY,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...FAST_ARGON2,
    ...WIDE_LIMITS,
    ...env
  })
  return { ...config, SECRET_KEY: config.SECRET_KEY as Buffer }
}

export async function buildTestApp (t: TeardownHost, options: { env?: Record<string, string | undefined>, logStream?: DestinationStream } = {}): Promise<TestApp> {
  const { db, url } = await migratedDatabase(t)
  const twilio = await startFakeTwilio(t)
  const config = await testConfig(t, { ...twilio.env, DATABASE_URL: url, ...options.env })
  const app = await buildApp({ config, database: db, logStream: options.logStream })
  t.teardown(async () => { await app.close() })
  await app.ready()
  return {
    app,
    twilio,
    db,
    config,
    async request (method, url, body, key = TEST_API_KEY) {
      return await app.inject({
        method,
        url,
        headers: key === null ? {} : { authorization: `Bearer ${key}` },
        ...(body === undefined ? {} : { payload: body as InjectOptions['payload'] })
      })
    }
  }
}

let counter = 0
/** A unique, valid email per call. */
export function email (prefix = 'dancer'): string {
  return `${prefix}.${process.pid}.${++counter}@studio.example`
}

/** Distinct valid US numbers (555-01xx is reserved for fiction). */
export function phoneNumber (n: number): string {
  return `+1415555${String(100 + n).padStart(4, '0')}`
}

export async function createUser (ctx: TestApp, input: { email?: string, password?: string, role?: string } = {}) {
  const response = await ctx.request('POST', '/v1/users', { email: input.email ?? email(), password: input.password ?? STRONG_PASSWORD, ...(input.role === undefined ? {} : { role: input.role }) })
  if (response.statusCode !== 201) throw new Error(`createUser: ${response.statusCode} ${response.body}`)
  return response.json() as { id: string, email: string }
}

/** Adds and verifies a phone the way the Security settings page does; returns the verify answer. */
export async function enrolPhone (ctx: TestApp, userId: string, number: string, channel: 'sms' | 'voice' = 'sms', label?: string) {
  const started = await ctx.request('POST', `/v1/users/${userId}/phones`, { phoneNumber: number, channel, ...(label === undefined ? {} : { label }) })
  if (started.statusCode !== 202) throw new Error(`enrolPhone start: ${started.statusCode} ${started.body}`)
  const code = ctx.twilio.lastCodeFor(number)
  const verified = await ctx.request('POST', `/v1/users/${userId}/phones/verify`, { verificationId: started.json().verificationId, code })
  if (verified.statusCode !== 200) throw new Error(`enrolPhone verify: ${verified.statusCode} ${verified.body}`)
  return verified.json() as { phone: { id: string, masked: string, primary: boolean }, recoveryCode: string, recoveryKit: string }
}

/** A user with one verified phone, ready to log in with a second factor. */
export async function enrolledUser (ctx: TestApp, n = 1, channel: 'sms' | 'voice' = 'sms') {
  const user = await createUser(ctx)
  const number = phoneNumber(n)
  const enrolled = await enrolPhone(ctx, user.id, number, channel)
  return { ...user, number, phoneId: enrolled.phone.id, recoveryCode: enrolled.recoveryCode }
}

export async function startLogin (ctx: TestApp, user: { email: string }, password = STRONG_PASSWORD) {
  const response = await ctx.request('POST', '/v1/logins', { email: user.email, password })
  if (response.statusCode !== 200) throw new Error(`login: ${response.statusCode} ${response.body}`)
  return response.json() as { status: string, challengeId: string, delivery: unknown }
}

/**
 * The code an authenticator app shows for `secret`, `offsetSteps` 30-second steps from now.
 * Made with otpauth directly, not through the service, so the service is checked against it.
 */
export function totpCode (secret: string, offsetSteps = 0, atMs = Date.now()): string {
  return TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: atMs + offsetSteps * 30_000 })
}

/** Waits out the last second of a 30-second step, so a test's codes are not split across a step change. */
export async function awayFromStepEdge (): Promise<void> {
  const intoStep = Date.now() % 30_000
  if (intoStep > 28_500) await new Promise((resolve) => setTimeout(resolve, 30_000 - intoStep + 50))
}

/**
 * Sets up an authenticator app the way the Security settings page does. It is confirmed
 * with the PREVIOUS step's code (accepted: ±1 step), so the current and the next step's
 * codes are still free for the test's logins.
 */
export async function enrolTotp (ctx: TestApp, userId: string) {
  const started = await ctx.request('POST', `/v1/users/${userId}/totp`)
  if (started.statusCode !== 201) throw new Error(`enrolTotp start: ${started.statusCode} ${started.body}`)
  const { enrollmentId, secret } = started.json() as { enrollmentId: string, secret: string }
  await awayFromStepEdge()
  const verified = await ctx.request('POST', `/v1/users/${userId}/totp/verify`, { enrollmentId, code: totpCode(secret, -1) })
  if (verified.statusCode !== 200) throw new Error(`enrolTotp verify: ${verified.statusCode} ${verified.body}`)
  return { secret, enrollmentId, ...(verified.json() as { totp: { enabledAt: string }, recoveryCode?: string, recoveryKit?: string }) }
}

/** A user whose only second factor is an authenticator app. */
export async function totpUser (ctx: TestApp) {
  const user = await createUser(ctx)
  const enrolled = await enrolTotp(ctx, user.id)
  return { ...user, secret: enrolled.secret, recoveryCode: enrolled.recoveryCode as string }
}
