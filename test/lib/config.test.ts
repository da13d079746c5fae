// Contract section 8: a bad or missing required setting stops the start with one
// clear line naming the variable; production refuses unsafe development shortcuts.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, loadConfig, parseConfig } from '../../src/lib/config.js'

const KEY = randomBytes(32).toString('base64')
const TWILIO = {
  TWILIO_ACCOUNT_SID: 'AC' + 'a1'.repeat(16),
  TWILIO_AUTH_TOKEN: 'token-that-is-secret',
  TWILIO_FROM_NUMBER: '+15005550006'
}

/** The ConfigError a bad environment gives, checked to be one line that names `variable`. */
function refusal (t: Test, env: Record<string, string | undefined>, variable: string): string {
  let caught: unknown
  try {
    parseConfig(env)
  } catch (err) {
    caught = err
  }
  t.ok(caught instanceof ConfigError, `refused: ${JSON.stringify(env)}`)
  const err = caught as ConfigError
  t.equal(err.variable, variable, 'names the variable')
  t.ok(err.message.startsWith(`${variable}: `), `message starts with the variable: ${err.message}`)
  t.notMatch(err.message, /\n/, 'one line')
  return err.message
}

t.test('defaults: development, console codes, US,CA, support@studiopro.com', async (t) => {
  const config = parseConfig({})
  t.equal(config.NODE_ENV, 'development')
  t.equal(config.PORT, 3000)
  t.equal(config.HOST, '0.0.0.0')
  t.equal(config.SMS_PROVIDER, 'console')
  t.same(config.ALLOWED_PHONE_COUNTRIES, ['US', 'CA'])
  t.equal(config.DEFAULT_PHONE_COUNTRY, 'US')
  t.equal(config.SUPPORT_CONTACT, 'support@studiopro.com')
  t.equal(config.LOG_LEVEL, 'info')
  t.equal(config.DATABASE_URL, undefined)
  t.equal(config.SECRET_KEY, undefined)
  t.same([config.ARGON2_MEMORY_COST, config.ARGON2_TIME_COST, config.ARGON2_PARALLELISM], [19456, 2, 1], 'OWASP argon2id baseline')
  t.same([config.HASH_CONCURRENCY, config.HASH_QUEUE_MAX, config.HASH_MAX_WAIT_MS], [Math.max(1, availableParallelism() - 1), 64, 2000], 'argon2 admission control: a core left for everything else')
  t.equal(config.RESEND_COOLDOWN_SECONDS, 30, 'the contract\'s 30 s between sends')
})

t.test('the resend cooldown and the hash gate accept their ranges and refuse the rest', async (t) => {
  t.equal(parseConfig({ RESEND_COOLDOWN_SECONDS: '0' }).RESEND_COOLDOWN_SECONDS, 0, 'benchmarks may turn it off')
  t.equal(parseConfig({ RESEND_COOLDOWN_SECONDS: '3600' }).RESEND_COOLDOWN_SECONDS, 3600)
  t.match(refusal(t, { RESEND_COOLDOWN_SECONDS: '3601' }, 'RESEND_COOLDOWN_SECONDS'), /0 to 3600/)
  t.match(refusal(t, { RESEND_COOLDOWN_SECONDS: '-1' }, 'RESEND_COOLDOWN_SECONDS'), /whole number/)
  t.match(refusal(t, { HASH_CONCURRENCY: '0' }, 'HASH_CONCURRENCY'), /1 to 64/)
  t.equal(parseConfig({ HASH_QUEUE_MAX: '0' }).HASH_QUEUE_MAX, 0, 'no queue: refuse whenever every slot is busy')
  t.match(refusal(t, { HASH_MAX_WAIT_MS: '0' }, 'HASH_MAX_WAIT_MS'), /1 to 60000/)
})

t.test('configured Twilio is the default provider', async (t) => {
  const config = parseConfig({ ...TWILIO })
  t.equal(config.SMS_PROVIDER, 'twilio')
  t.equal(config.TWILIO_FROM_NUMBER, '+15005550006')
})

t.test('each bad value is refused in one line naming its variable', async (t) => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ PORT: 'abc' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ PORT: '-1' }, 'PORT'],
    [{ PORT: '80.5' }, 'PORT'],
    [{ NODE_ENV: 'staging' }, 'NODE_ENV'],
    [{ DATABASE_URL: 'mysql://localhost/db' }, 'DATABASE_URL'],
    [{ DATABASE_URL: 'not a url' }, 'DATABASE_URL'],
    [{ REDIS_URL: 'http://localhost:6379' }, 'REDIS_URL'],
    [{ BOOTSTRAP_API_KEY: 'too-short' }, 'BOOTSTRAP_API_KEY'],
    [{ SECRET_KEY: 'not base64 !!' }, 'SECRET_KEY'],
    [{ SECRET_KEY: randomBytes(31).toString('base64') }, 'SECRET_KEY'],
    [{ TWILIO_ACCOUNT_SID: 'AC123' }, 'TWILIO_ACCOUNT_SID'],
    [{ TWILIO_FROM_NUMBER: '415-555-0167' }, 'TWILIO_FROM_NUMBER'],
    [{ TWILIO_MESSAGING_SERVICE_SID: 'MG1' }, 'TWILIO_MESSAGING_SERVICE_SID'],
    [{ TWILIO_BASE_URL: 'ftp://example.com' }, 'TWILIO_BASE_URL'],
    [{ TWILIO_TIMEOUT_MS: '5' }, 'TWILIO_TIMEOUT_MS'],
    [{ SMS_PROVIDER: 'sns' }, 'SMS_PROVIDER'],
    [{ ALLOWED_PHONE_COUNTRIES: 'US,XX' }, 'ALLOWED_PHONE_COUNTRIES'],
    [{ ALLOWED_PHONE_COUNTRIES: ' , ' }, 'ALLOWED_PHONE_COUNTRIES'],
    [{ DEFAULT_PHONE_COUNTRY: 'ZZ' }, 'DEFAULT_PHONE_COUNTRY'],
    [{ DEFAULT_PHONE_COUNTRY: 'GB' }, 'DEFAULT_PHONE_COUNTRY'],
    [{ PUBLIC_BASE_URL: 'example.com' }, 'PUBLIC_BASE_URL'],
    [{ WEBOTP_DOMAIN: 'https://app.studiopro.com/' }, 'WEBOTP_DOMAIN'],
    [{ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL'],
    [{ ARGON2_MEMORY_COST: '8' }, 'ARGON2_MEMORY_COST'],
    [{ ARGON2_TIME_COST: '0' }, 'ARGON2_TIME_COST'],
    [{ ARGON2_PARALLELISM: 'many' }, 'ARGON2_PARALLELISM']
  ]
  for (const [env, variable] of cases) refusal(t, env, variable)
})

t.test('a refused secret is never echoed in the message', async (t) => {
  const badKey = 'c2hvcnQtc2VjcmV0LWtleQ=='
  t.notMatch(refusal(t, { SECRET_KEY: badKey }, 'SECRET_KEY'), badKey)
  const badSid = 'ACsecretsecretsecret'
  t.notMatch(refusal(t, { TWILIO_ACCOUNT_SID: badSid }, 'TWILIO_ACCOUNT_SID'), badSid)
  const shortKey = 'bootstrap-123'
  t.notMatch(refusal(t, { BOOTSTRAP_API_KEY: shortKey }, 'BOOTSTRAP_API_KEY'), shortKey)
})

t.test('production refuses a missing SECRET_KEY', async (t) => {
  const message = refusal(t, { NODE_ENV: 'production', ...TWILIO }, 'SECRET_KEY')
  t.match(message, /required when NODE_ENV=production/)
})

t.test('production refuses the console provider, chosen or defaulted to', async (t) => {
  t.match(refusal(t, { NODE_ENV: 'production', SECRET_KEY: KEY, SMS_PROVIDER: 'console', ...TWILIO }, 'SMS_PROVIDER'), /refused when NODE_ENV=production/)
  t.match(refusal(t, { NODE_ENV: 'production', SECRET_KEY: KEY }, 'SMS_PROVIDER'), /refused when NODE_ENV=production/)
})

t.test('production with a key and Twilio starts', async (t) => {
  const config = parseConfig({ NODE_ENV: 'production', SECRET_KEY: KEY, ...TWILIO })
  t.equal(config.SMS_PROVIDER, 'twilio')
  t.same(config.SECRET_KEY, Buffer.from(KEY, 'base64'))
})

t.test('twilio needs its account, token and a sender', async (t) => {
  refusal(t, { SMS_PROVIDER: 'twilio' }, 'TWILIO_ACCOUNT_SID')
  refusal(t, { SMS_PROVIDER: 'twilio', TWILIO_ACCOUNT_SID: TWILIO.TWILIO_ACCOUNT_SID }, 'TWILIO_AUTH_TOKEN')
  refusal(t, { TWILIO_ACCOUNT_SID: TWILIO.TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN: 'x' }, 'TWILIO_FROM_NUMBER')
  const viaService = parseConfig({ TWILIO_ACCOUNT_SID: TWILIO.TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN: 'x', TWILIO_MESSAGING_SERVICE_SID: 'MG' + '0f'.repeat(16) })
  t.equal(viaService.SMS_PROVIDER, 'twilio')
})

t.test('country lists are trimmed and upper-cased; the default country is the first allowed one', async (t) => {
  const config = parseConfig({ ALLOWED_PHONE_COUNTRIES: ' ca , us ' })
  t.same(config.ALLOWED_PHONE_COUNTRIES, ['CA', 'US'])
  t.equal(config.DEFAULT_PHONE_COUNTRY, 'CA')
  const gb = parseConfig({ ALLOWED_PHONE_COUNTRIES: 'GB', DEFAULT_PHONE_COUNTRY: 'gb' })
  t.equal(gb.DEFAULT_PHONE_COUNTRY, 'GB')
})

t.test('an empty entry in the country list does not become the default country', async (t) => {
  const config = parseConfig({ ALLOWED_PHONE_COUNTRIES: ',CA' })
  t.same(config.ALLOWED_PHONE_COUNTRIES, ['CA'])
  t.equal(config.DEFAULT_PHONE_COUNTRY, 'CA')
})

t.test('blank values count as unset, URLs lose their trailing slash', async (t) => {
  const config = parseConfig({ PORT: '  ', DATABASE_URL: '', TWILIO_BASE_URL: 'http://127.0.0.1:9999/', SUPPORT_CONTACT: '  ' })
  t.equal(config.PORT, 3000)
  t.equal(config.DATABASE_URL, undefined)
  t.equal(config.TWILIO_BASE_URL, 'http://127.0.0.1:9999')
  t.equal(config.SUPPORT_CONTACT, 'support@studiopro.com')
})

t.test('outside production a missing SECRET_KEY is generated once and kept in DATA_DIR', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spa-config-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const first = await loadConfig({ DATA_DIR: dir })
  const second = await loadConfig({ DATA_DIR: dir })
  t.equal(first.SECRET_KEY.length, 32)
  t.same(second.SECRET_KEY, first.SECRET_KEY, 'the same key after a restart')
  const file = join(dir, 'secret-key')
  t.equal(Buffer.from((await readFile(file, 'utf8')).trim(), 'base64').toString('hex'), first.SECRET_KEY.toString('hex'))
  t.equal((await stat(file)).mode & 0o777, 0o600, 'readable by the owner only')
})

t.test('loadConfig with SECRET_KEY set writes no key file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spa-config-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const config = await loadConfig({ DATA_DIR: dir, SECRET_KEY: KEY })
  t.same(config.SECRET_KEY, Buffer.from(KEY, 'base64'))
  await t.rejects(stat(join(dir, 'secret-key')))
})

t.test('a damaged generated key stops the start naming SECRET_KEY', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spa-config-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  await writeFile(join(dir, 'secret-key'), 'c2hvcnQ=\n')
  const err = await loadConfig({ DATA_DIR: dir }).then(() => null, (e: unknown) => e)
  t.ok(err instanceof ConfigError, 'refused')
  t.equal((err as ConfigError).variable, 'SECRET_KEY')
  t.notMatch((err as ConfigError).message, /\n/)
})
