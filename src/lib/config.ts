import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { join, resolve } from 'node:path'
import { getCountries, type CountryCode } from 'libphonenumber-js/max'
import {
  ARGON2_DEFAULTS, HASH_CONCURRENCY, HASH_MAX_WAIT_MS, HASH_QUEUE_MAX, RESEND_COOLDOWN_MS, DEFAULT_API_KEY_PER_MINUTE, DEFAULT_LOGIN_PER_IP_PER_MINUTE, DEFAULT_SEND_PER_IP_PER_MINUTE,
  DEFAULT_SMS_PER_IP_PER_HOUR, DEFAULT_SMS_PER_NUMBER_PER_DAY, DEFAULT_SMS_PER_NUMBER_PER_HOUR,
  DEFAULT_SMS_PER_PREFIX_PER_DAY, DEFAULT_VERIFY_PER_IP_PER_MINUTE, POLICY_MAX_DAYS
} from './limits.js'

/** A bad setting: the message is the one line printed when the service refuses to start. */
export class ConfigError extends Error {
  constructor (readonly variable: string, reason: string) {
    super(`${variable}: ${reason}`)
    this.name = 'ConfigError'
  }
}

type Env = Record<string, string | undefined>
type Spec<T> = { describe: string, parse: (raw: string | undefined, env: Env) => T }

const KNOWN_COUNTRIES = new Set<string>(getCountries())
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

function optional (raw: string | undefined): string | undefined {
  const value = raw?.trim()
  return value === undefined || value === '' ? undefined : value
}

function integer (fallback: number, min: number, max: number) {
  return (raw: string | undefined) => {
    const value = optional(raw)
    if (value === undefined) return fallback
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      throw new Error(`must be a whole number from ${min} to ${max}`)
    }
    return Number(value)
  }
}

function url (protocols: string[]) {
  return (raw: string | undefined) => {
    const value = optional(raw)
    if (value === undefined) return undefined
    let parsed: URL
    try { parsed = new URL(value) } catch { throw new Error('must be a URL') }
    if (!protocols.includes(parsed.protocol)) throw new Error(`must start with ${protocols.join(' or ')}//`)
    return value.replace(/\/+$/, '')
  }
}

function text () {
  return (raw: string | undefined) => optional(raw)
}

const POLICY_METHODS = ['sms', 'voice', 'totp'] as const
type PolicyMethod = typeof POLICY_METHODS[number]

/** The default policy's roles: `*` (every role) or role names. */
function roleList (raw: string | undefined): string[] {
  const list = [...new Set((optional(raw) ?? '*').split(',').map((r) => r.trim()).filter(Boolean))]
  if (list.includes('*')) {
    if (list.length > 1) throw new Error('is either * alone or a list of roles')
    return ['*']
  }
  const bad = list.find((role) => !/^[a-z][a-z0-9_-]*$/.test(role) || role.length > 64)
  if (bad !== undefined) throw new Error(`${bad} is not a role name (lower-case letters, digits, _ and -)`)
  return list
}

function methodList (raw: string | undefined): PolicyMethod[] {
  const list = [...new Set((optional(raw) ?? POLICY_METHODS.join(',')).split(',').map((m) => m.trim().toLowerCase()).filter(Boolean))]
  if (list.length === 0) throw new Error('must list at least one of sms, voice, totp')
  const bad = list.find((m) => !(POLICY_METHODS as readonly string[]).includes(m))
  if (bad !== undefined) throw new Error(`${bad} is not one of sms, voice, totp`)
  return POLICY_METHODS.filter((m) => list.includes(m))
}

function textOr (fallback: string) {
  return (raw: string | undefined) => optional(raw) ?? fallback
}

/** The one schema of the service's configuration: contract section 8, plus tuning knobs with safe defaults. */
const schema = {
  NODE_ENV: { describe: 'production, development or test', parse: (raw) => {
    const value = optional(raw) ?? 'development'
    if (!['production', 'development', 'test'].includes(value)) throw new Error('must be production, development or test')
    return value as 'production' | 'development' | 'test'
  } },
  PORT: { describe: 'listen port', parse: integer(3000, 0, 65535) },
  HOST: { describe: 'listen address', parse: textOr('0.0.0.0') },
  DATABASE_URL: { describe: 'PostgreSQL URL; unset: embedded PGlite', parse: url(['postgresql:', 'postgres:']) },
  DATA_DIR: { describe: 'embedded database and generated secret key', parse: (raw) => resolve(optional(raw) ?? './data') },
  REDIS_URL: { describe: 'shares rate-limit counters between instances', parse: url(['redis:', 'rediss:']) },
  REDIS_KEY_PREFIX: { describe: 'prefix of the rate-limit keys in Redis', parse: textOr('spa-rate-limit:') },
  BOOTSTRAP_API_KEY: { describe: 'an API key with scope *', parse: (raw) => {
    const value = optional(raw)
    if (value !== undefined && value.length < 24) throw new Error('must be at least 24 characters')
    return value
  } },
  SECRET_KEY: { describe: 'base64, at least 32 bytes', parse: (raw, env) => {
    const value = optional(raw)
    if (value === undefined) {
      if (optional(env.NODE_ENV) === 'production') throw new Error('is required when NODE_ENV=production (base64, at least 32 bytes)')
      return undefined
    }
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(value)) throw new Error('must be base64')
    const bytes = Buffer.from(value, 'base64')
    if (bytes.length < 32) throw new Error('must decode to at least 32 bytes')
    return bytes
  } },
  SECRET_KEY_PREVIOUS: { describe: 'the key before the last rotation: still decrypts until `npm run reencrypt` has run', parse: (raw) => {
    const value = optional(raw)
    if (value === undefined) return undefined
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(value)) throw new Error('must be base64')
    const bytes = Buffer.from(value, 'base64')
    if (bytes.length < 32) throw new Error('must decode to at least 32 bytes')
    return bytes
  } },
  TWILIO_ACCOUNT_SID: { describe: 'Twilio account', parse: (raw) => {
    const value = optional(raw)
    if (value !== undefined && !/^AC[0-9a-fA-F]{32}$/.test(value)) throw new Error('must look like AC followed by 32 hex digits')
    return value
  } },
  TWILIO_AUTH_TOKEN: { describe: 'Twilio auth token', parse: text() },
  TWILIO_FROM_NUMBER: { describe: 'sender number, E.164', parse: (raw) => {
    const value = optional(raw)
    if (value !== undefined && !/^\+[1-9]\d{6,14}$/.test(value)) throw new Error('must be an E.164 number such as +15005550006')
    return value
  } },
  TWILIO_MESSAGING_SERVICE_SID: { describe: 'Twilio messaging service', parse: (raw) => {
    const value = optional(raw)
    if (value !== undefined && !/^MG[0-9a-fA-F]{32}$/.test(value)) throw new Error('must look like MG followed by 32 hex digits')
    return value
  } },
  TWILIO_BASE_URL: { describe: 'replaces https://api.twilio.com', parse: url(['http:', 'https:']) },
  TWILIO_TIMEOUT_MS: { describe: 'how long a Twilio call may take', parse: integer(5000, 100, 60_000) },
  SMS_PROVIDER: { describe: 'twilio or console', parse: (raw, env) => {
    const value = optional(raw) ?? (optional(env.TWILIO_ACCOUNT_SID) !== undefined ? 'twilio' : 'console')
    if (value !== 'twilio' && value !== 'console') throw new Error('must be twilio or console')
    if (value === 'console' && optional(env.NODE_ENV) === 'production') throw new Error('console prints codes to the log and is refused when NODE_ENV=production; configure Twilio')
    return value as 'twilio' | 'console'
  } },
  ALLOWED_PHONE_COUNTRIES: { describe: 'ISO 3166 alpha-2 list', parse: (raw) => {
    const list = (optional(raw) ?? 'US,CA').split(',').map((c) => c.trim().toUpperCase()).filter(Boolean)
    if (list.length === 0) throw new Error('must list at least one country')
    const unknown = list.filter((c) => !KNOWN_COUNTRIES.has(c))
    if (unknown.length > 0) throw new Error(`unknown country code ${unknown.join(', ')}`)
    return list as CountryCode[]
  } },
  DEFAULT_PHONE_COUNTRY: { describe: 'country of numbers given in national form; default: the first allowed one', parse: (raw, env) => {
    const value = optional(raw)?.toUpperCase()
    if (value === undefined) {
      // The first entry of the list as ALLOWED_PHONE_COUNTRIES reads it: ",CA" means CA, not "".
      const first = (optional(env.ALLOWED_PHONE_COUNTRIES) ?? 'US').split(',').map((c) => c.trim()).find((c) => c !== '')
      return (first ?? 'US').toUpperCase() as CountryCode
    }
    if (!KNOWN_COUNTRIES.has(value)) throw new Error(`unknown country code ${value}`)
    return value as CountryCode
  } },
  PUBLIC_BASE_URL: { describe: 'where Twilio sends status callbacks', parse: url(['http:', 'https:']) },
  WEBOTP_DOMAIN: { describe: 'adds the WebOTP line to SMS', parse: (raw) => {
    const value = optional(raw)
    if (value !== undefined && !/^[a-z0-9.-]+(:\d+)?$/i.test(value)) throw new Error('must be a host name such as app.studiopro.com')
    return value
  } },
  SUPPORT_CONTACT: { describe: 'shown to locked-out users and in the recovery kit', parse: textOr('support@studiopro.com') },
  LOG_LEVEL: { describe: 'pino level', parse: (raw) => {
    const value = optional(raw) ?? 'info'
    if (!LOG_LEVELS.includes(value)) throw new Error(`must be one of ${LOG_LEVELS.join(', ')}`)
    return value
  } },
  TRUSTED_PROXIES: { describe: 'proxies whose X-Forwarded-For is believed (IPs or CIDRs, comma-separated); default none', parse: (raw) => {
    const list = (optional(raw) ?? '').split(',').map((entry) => entry.trim()).filter(Boolean)
    for (const entry of list) {
      const [address, bits, extra] = entry.split('/')
      const family = isIP(address ?? '')
      if (family === 0 || extra !== undefined || (bits !== undefined && (!/^\d+$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128)))) {
        throw new Error(`${entry} is not an IP address or CIDR range`)
      }
    }
    return list
  } },
  RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: { describe: 'password checks per client IP per minute; 0 turns the limit off', parse: integer(DEFAULT_LOGIN_PER_IP_PER_MINUTE, 0, 1_000_000) },
  RATE_LIMIT_SEND_PER_IP_PER_MINUTE: { describe: 'code sends per client IP per minute; 0 turns the limit off', parse: integer(DEFAULT_SEND_PER_IP_PER_MINUTE, 0, 1_000_000) },
  RATE_LIMIT_VERIFY_PER_IP_PER_MINUTE: { describe: 'code and recovery-code checks per client IP per minute; 0 turns the limit off', parse: integer(DEFAULT_VERIFY_PER_IP_PER_MINUTE, 0, 1_000_000) },
  RATE_LIMIT_API_KEY_PER_MINUTE: { describe: 'requests per API key per minute; 0 turns the limit off', parse: integer(DEFAULT_API_KEY_PER_MINUTE, 0, 10_000_000) },
  SMS_PER_NUMBER_PER_HOUR: { describe: 'codes sent to one number per hour; 0 turns the limit off', parse: integer(DEFAULT_SMS_PER_NUMBER_PER_HOUR, 0, 1_000_000) },
  SMS_PER_NUMBER_PER_DAY: { describe: 'codes sent to one number per day; 0 turns the limit off', parse: integer(DEFAULT_SMS_PER_NUMBER_PER_DAY, 0, 1_000_000) },
  SMS_PER_IP_PER_HOUR: { describe: 'codes sent for one client IP per hour; 0 turns the limit off', parse: integer(DEFAULT_SMS_PER_IP_PER_HOUR, 0, 1_000_000) },
  SMS_PER_PREFIX_PER_DAY: { describe: 'codes sent to one country calling code per day; 0 turns the limit off', parse: integer(DEFAULT_SMS_PER_PREFIX_PER_DAY, 0, 100_000_000) },
  DEFAULT_REQUIRED_ROLES: { describe: 'roles that must use 2FA when the organization set no policy: * or a comma list', parse: roleList },
  DEFAULT_ALLOWED_METHODS: { describe: 'second factors allowed when the organization set no policy: sms, voice, totp', parse: methodList },
  DEFAULT_REMEMBER_DEVICE_DAYS: { describe: 'days a remembered device skips the second factor; 0 turns remembered devices off', parse: integer(30, 0, POLICY_MAX_DAYS) },
  DEFAULT_ENROLLMENT_GRACE_DAYS: { describe: 'days a newly required user may still log in with the password alone', parse: integer(0, 0, POLICY_MAX_DAYS) },
  DEFAULT_SMS_DAILY_LIMIT: { describe: 'texts and calls per organization per UTC day (0: none)', parse: integer(1000, 0, 100_000_000) },
  ARGON2_MEMORY_COST: { describe: 'argon2id memory in KiB', parse: integer(ARGON2_DEFAULTS.memoryCost, 1024, 4_194_304) },
  ARGON2_TIME_COST: { describe: 'argon2id iterations', parse: integer(ARGON2_DEFAULTS.timeCost, 1, 100) },
  ARGON2_PARALLELISM: { describe: 'argon2id lanes', parse: integer(ARGON2_DEFAULTS.parallelism, 1, 16) },
  HASH_CONCURRENCY: { describe: 'argon2 hashes in flight at once', parse: integer(HASH_CONCURRENCY, 1, 64) },
  HASH_QUEUE_MAX: { describe: 'argon2 hashes waiting for a slot before 503 overloaded', parse: integer(HASH_QUEUE_MAX, 0, 10_000) },
  HASH_MAX_WAIT_MS: { describe: 'longest wait for an argon2 slot before 503 overloaded', parse: integer(HASH_MAX_WAIT_MS, 1, 60_000) },
  RESEND_COOLDOWN_SECONDS: { describe: 'minimum wait between two sends of one challenge', parse: integer(RESEND_COOLDOWN_MS / 1000, 0, 3600) }
} satisfies Record<string, Spec<unknown>>

type Schema = typeof schema
export type RawConfig = { [K in keyof Schema]: ReturnType<Schema[K]['parse']> }
export type Config = Omit<RawConfig, 'SECRET_KEY'> & { SECRET_KEY: Buffer }

export const CONFIG_VARIABLES = Object.fromEntries(
  Object.entries(schema).map(([name, spec]) => [name, spec.describe])
) as Record<keyof Schema, string>

/** Validates every variable once; throws a ConfigError naming the first bad one. */
export function parseConfig (env: Env): RawConfig {
  const out: Record<string, unknown> = {}
  for (const [name, spec] of Object.entries(schema) as Array<[string, Spec<unknown>]>) {
    try {
      out[name] = spec.parse(env[name], env)
    } catch (err) {
      throw new ConfigError(name, (err as Error).message)
    }
  }
  const config = out as RawConfig
  if (config.SMS_PROVIDER === 'twilio') {
    for (const name of ['TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN'] as const) {
      if (config[name] === undefined) throw new ConfigError(name, 'is required when SMS_PROVIDER=twilio')
    }
    if (config.TWILIO_FROM_NUMBER === undefined && config.TWILIO_MESSAGING_SERVICE_SID === undefined) {
      throw new ConfigError('TWILIO_FROM_NUMBER', 'or TWILIO_MESSAGING_SERVICE_SID is required when SMS_PROVIDER=twilio')
    }
  }
  if (!config.ALLOWED_PHONE_COUNTRIES.includes(config.DEFAULT_PHONE_COUNTRY)) {
    throw new ConfigError('DEFAULT_PHONE_COUNTRY', `${config.DEFAULT_PHONE_COUNTRY} is not in ALLOWED_PHONE_COUNTRIES`)
  }
  return config
}

/**
 * Outside production a missing SECRET_KEY is generated once and kept in DATA_DIR,
 * so a developer's codes and encrypted numbers survive a restart.
 */
export async function loadConfig (env: Env = process.env): Promise<Config> {
  const config = parseConfig(env)
  if (config.SECRET_KEY !== undefined) return { ...config, SECRET_KEY: config.SECRET_KEY }
  const file = join(config.DATA_DIR, 'secret-key')
  let key: Buffer
  try {
    key = Buffer.from((await readFile(file, 'utf8')).trim(), 'base64')
  } catch {
    key = randomBytes(32)
    await mkdir(config.DATA_DIR, { recursive: true })
    await writeFile(file, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' }).catch(async () => {
      key = Buffer.from((await readFile(file, 'utf8')).trim(), 'base64')
    })
  }
  if (key.length < 32) throw new ConfigError('SECRET_KEY', `the generated key in ${file} is damaged; delete it or set SECRET_KEY`)
  return { ...config, SECRET_KEY: key }
}

/** For entry points (server, CLIs): a bad setting ends the process with its one line, and exit code 1. */
export async function loadConfigOrExit (env: Env = process.env): Promise<Config> {
  try {
    return await loadConfig(env)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    process.stderr.write(`configuration error: ${err.message}\n`)
    process.exit(1)
  }
}
