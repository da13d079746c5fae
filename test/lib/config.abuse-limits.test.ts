// The abuse-limit settings: safe defaults, 0 turns a limit off, bad values stop the
// start naming the variable; trusted proxies must be addresses or ranges.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { ConfigError, parseConfig } from '../../src/lib/config.js'

const LIMITS = {
  RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: 30,
  RATE_LIMIT_SEND_PER_IP_PER_MINUTE: 10,
  RATE_LIMIT_VERIFY_PER_IP_PER_MINUTE: 30,
  RATE_LIMIT_API_KEY_PER_MINUTE: 6000,
  SMS_PER_NUMBER_PER_HOUR: 10,
  SMS_PER_NUMBER_PER_DAY: 30,
  SMS_PER_IP_PER_HOUR: 30,
  SMS_PER_PREFIX_PER_DAY: 5000
} as const

function refused (env: Record<string, string>): ConfigError {
  try {
    parseConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error(`accepted ${JSON.stringify(env)}`)
}

t.test('defaults', async (t) => {
  const config = parseConfig({})
  for (const [name, value] of Object.entries(LIMITS)) t.equal(config[name as keyof typeof LIMITS], value, name)
  t.same(config.TRUSTED_PROXIES, [], 'no proxy is trusted unless configured')
  t.equal(config.SECRET_KEY_PREVIOUS, undefined)
})

t.test('0 turns a limit off; bad numbers are refused naming the variable', async (t) => {
  for (const name of Object.keys(LIMITS)) {
    t.equal(parseConfig({ [name]: '0' })[name as keyof typeof LIMITS], 0, `${name}=0`)
    for (const bad of ['-1', 'ten', '1.5']) t.equal(refused({ [name]: bad }).variable, name, `${name}=${bad}`)
  }
})

t.test('TRUSTED_PROXIES takes IPs and CIDR ranges, nothing else', async (t) => {
  t.same(parseConfig({ TRUSTED_PROXIES: '10.0.0.0/8, 127.0.0.1,::1,fd00::/8' }).TRUSTED_PROXIES, ['10.0.0.0/8', '127.0.0.1', '::1', 'fd00::/8'])
  for (const bad of ['proxy.internal', '10.0.0.0/33', '::1/129', '10.0.0.1/8/8', '10.0.0.0/x']) {
    t.equal(refused({ TRUSTED_PROXIES: bad }).variable, 'TRUSTED_PROXIES', bad)
  }
})

t.test('SECRET_KEY_PREVIOUS is a base64 key of at least 32 bytes, never echoed', async (t) => {
  const key = randomBytes(32)
  t.same(parseConfig({ SECRET_KEY_PREVIOUS: key.toString('base64') }).SECRET_KEY_PREVIOUS, key)
  const short = randomBytes(16).toString('base64')
  const err = refused({ SECRET_KEY_PREVIOUS: short })
  t.equal(err.variable, 'SECRET_KEY_PREVIOUS')
  t.notMatch(err.message, short)
  t.equal(refused({ SECRET_KEY_PREVIOUS: 'not base64 !!' }).variable, 'SECRET_KEY_PREVIOUS')
})
