// The deployment files cannot be run here (no Docker engine), so their promises are checked
// statically: every setting the compose stack passes is one the service knows, and every
// setting of contract section 8 is there; health checks, ports, a pinned non-root image.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { CONFIG_VARIABLES, parseConfig } from '../../src/lib/config.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const CONTRACT_FILE = fileURLToPath(new URL('../../../shared/CONTRACT.md', import.meta.url))

/** Contract section 8's variables (kept here so the test runs without ../shared; compared with it when present). */
const SECTION_8 = [
  'PORT', 'HOST', 'DATABASE_URL', 'DATA_DIR', 'REDIS_URL', 'BOOTSTRAP_API_KEY', 'SECRET_KEY',
  'TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN', 'TWILIO_FROM_NUMBER', 'TWILIO_MESSAGING_SERVICE_SID',
  'TWILIO_BASE_URL', 'SMS_PROVIDER', 'ALLOWED_PHONE_COUNTRIES', 'PUBLIC_BASE_URL', 'WEBOTP_DOMAIN',
  'SUPPORT_CONTACT', 'LOG_LEVEL'
]
/** DATA_DIR only matters for the embedded database; the stack uses PostgreSQL. */
const NOT_NEEDED_WITH_POSTGRES = ['DATA_DIR']
/** Variables of .env that Compose itself uses to fill in docker-compose.yml, not the service. */
const COMPOSE_ONLY = ['POSTGRES_PASSWORD', 'AUTH_PORT']

type Service = {
  image?: string
  build?: unknown
  environment?: Record<string, string | number | null>
  env_file?: string | string[]
  ports?: string[]
  depends_on?: Record<string, { condition?: string }>
  healthcheck?: { test?: string[] | string }
  volumes?: string[]
}
const compose = parse(await readFile(`${ROOT}docker-compose.yml`, 'utf8')) as { services: Record<string, Service>, volumes?: Record<string, unknown> }
const auth = compose.services.auth!
const environment = Object.fromEntries(Object.entries(auth.environment ?? {}).map(([name, value]) => [name, String(value ?? '')]))

/** ${NAME:-default} gives its default, ${NAME:?error} and ${NAME} the sample value, as Compose would with that .env. */
function interpolate (value: string, sample: Record<string, string>): string {
  return value.replace(/\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}/g, (_all, name: string, op?: string, arg?: string) => {
    if (sample[name] !== undefined && sample[name] !== '') return sample[name]
    if (op?.endsWith('-') === true) return arg ?? ''
    throw new Error(`${name} is required by docker-compose.yml: ${arg ?? ''}`)
  })
}

function dotenvKeys (text: string): string[] {
  return text.split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => line.slice(0, line.indexOf('=')))
}

t.test('the compose environment holds only settings the service knows, and all of section 8', async (t) => {
  for (const name of Object.keys(environment)) {
    t.ok(name in CONFIG_VARIABLES, `${name} is a setting of src/lib/config.ts`)
  }
  for (const name of SECTION_8.filter((n) => !NOT_NEEDED_WITH_POSTGRES.includes(n))) {
    t.ok(name in environment, `${name} (contract section 8) is listed for the service`)
  }
  t.match(environment.DATABASE_URL, /^postgresql:\/\/[^@]+@postgres:5432\//, 'the service uses the stack\'s PostgreSQL')
  t.match(environment.REDIS_URL, /^redis:\/\/redis:6379/, 'and its Redis')
  t.equal(environment.NODE_ENV, 'production')
  t.equal(environment.SMS_PROVIDER, 'twilio', 'no console codes in a deployment')
})

t.test('the contract lists the variables this test checks', async (t) => {
  if (!existsSync(CONTRACT_FILE)) return t.skip(`${CONTRACT_FILE} not found (shared/ lives beside the clone)`)
  const section = (await readFile(CONTRACT_FILE, 'utf8')).split(/^## /m).find((s) => s.startsWith('8.')) ?? ''
  const names = new Set([...section.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]!))
  for (const name of ['NODE_ENV']) names.delete(name)
  t.same([...names].sort(), [...SECTION_8].sort())
})

t.test('each line of the environment is explained by a comment', async (t) => {
  const lines = (await readFile(`${ROOT}docker-compose.yml`, 'utf8')).split('\n')
  const start = lines.findIndex((line) => /^ {4}environment:/.test(line))
  let commented = false
  for (const line of lines.slice(start + 1)) {
    if (!/^ {6}\S/.test(line)) break
    if (/^ {6}#/.test(line)) { commented = true; continue }
    const name = /^ {6}([A-Z0-9_]+):/.exec(line)?.[1]
    t.ok(commented, `${name} follows a comment`)
    // A comment may cover the lines of one group (the Twilio account, PORT and HOST).
    if (name !== undefined && !/^(PORT|TWILIO_ACCOUNT_SID|TWILIO_AUTH_TOKEN|TWILIO_FROM_NUMBER)$/.test(name)) commented = false
  }
})

t.test('the secrets come from a .env that is not committed, with a committed template', async (t) => {
  const envFiles = [auth.env_file ?? []].flat()
  t.ok(envFiles.includes('.env'), 'env_file: .env')
  const tracked = execFileSync('git', ['ls-files', '.env', '.env.example'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean)
  t.same(tracked, ['.env.example'], '.env is not committed; .env.example is')
  t.ok(execFileSync('git', ['check-ignore', '-q', '.env'], { cwd: ROOT }).length === 0, '.env is ignored by git')
  const template = dotenvKeys(await readFile(`${ROOT}.env.example`, 'utf8'))
  // Commented-out lines (`# NAME=default`) document a setting too: they are checked the same way.
  const text0 = await readFile(`${ROOT}.env.example`, 'utf8')
  const documented = [...text0.matchAll(/^(?:# )?([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!)
  t.ok(documented.length > template.length, 'some settings are shown commented out with their default')
  for (const name of documented) {
    t.ok(name in CONFIG_VARIABLES || COMPOSE_ONLY.includes(name), `.env.example's ${name} is a setting or a Compose variable`)
  }
  for (const name of Object.keys(CONFIG_VARIABLES)) {
    t.ok(documented.includes(name), `.env.example lists ${name} (as a line or a commented-out default)`)
  }
  // The .env is never baked into the image either.
  const dockerignore = (await readFile(`${ROOT}.dockerignore`, 'utf8')).split('\n').map((line) => line.trim())
  t.ok(dockerignore.includes('.env') && dockerignore.includes('.env.*'), '.dockerignore keeps .env and .env.* out of the build context')
  // Every ${VAR:?...} the stack requires is in the template.
  const text = await readFile(`${ROOT}docker-compose.yml`, 'utf8')
  for (const [, name] of text.matchAll(/\$\{([A-Z0-9_]+):\?/g)) t.ok(template.includes(name!), `.env.example has the required ${name}`)
  for (const secret of ['SECRET_KEY', 'TWILIO_AUTH_TOKEN', 'POSTGRES_PASSWORD', 'BOOTSTRAP_API_KEY']) {
    t.notMatch(text, new RegExp(`${secret}: (?!\\$\\{)`), `${secret} has no value written in docker-compose.yml`)
  }
})

t.test('a filled-in .env makes a configuration the service accepts', async (t) => {
  const sample = {
    POSTGRES_PASSWORD: 'pw',
    SECRET_KEY: Buffer.alloc(32, 7).toString('base64'),
    TWILIO_ACCOUNT_SID: `AC${'0'.repeat(32)}`,
    TWILIO_AUTH_TOKEN: 'token',
    TWILIO_FROM_NUMBER: '+15005550006'
  }
  const env = Object.fromEntries(Object.entries(environment).map(([name, value]) => [name, interpolate(value, sample)]))
  const config = parseConfig(env)
  t.equal(config.NODE_ENV, 'production')
  t.equal(config.PORT, 3000)
  t.same(config.ALLOWED_PHONE_COUNTRIES, ['US', 'CA'])
  t.equal(config.PUBLIC_BASE_URL, undefined, 'empty optional settings count as unset')
  t.throws(() => interpolate(environment.SECRET_KEY!, {}), /SECRET_KEY is required/, 'a missing SECRET_KEY stops compose')
})

t.test('ports, dependencies, health checks and volumes', async (t) => {
  t.ok(auth.build !== undefined, 'the service is built from the Dockerfile')
  t.ok((auth.ports ?? []).some((port) => port.endsWith(`:${environment.PORT}`)), `the service's port ${environment.PORT} is published`)
  for (const name of ['postgres', 'redis']) {
    const service = compose.services[name]
    t.ok(service !== undefined, `${name} is in the stack`)
    t.equal(auth.depends_on?.[name]?.condition, 'service_healthy', `the service waits for a healthy ${name}`)
    t.equal(service?.ports, undefined, `${name} is not published`)
    const volume = service?.volumes?.[0]?.split(':')[0]
    t.ok(volume !== undefined && compose.volumes?.[volume] !== undefined, `${name} keeps its data in a named volume`)
  }
  t.match(compose.services.postgres?.image, /^postgres:16/)
  t.match(compose.services.redis?.image, /^redis:7/)
  for (const [name, service] of Object.entries(compose.services)) {
    t.ok(service.healthcheck?.test !== undefined, `${name} has a health check`)
  }
})

t.test('the Dockerfile: pinned images, non-root, health check, exec-form start', async (t) => {
  const dockerfile = (await readFile(`${ROOT}Dockerfile`, 'utf8')).replace(/\\\n/g, ' ')
  const instructions = dockerfile.split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'))
  const froms = instructions.filter((line) => /^FROM /i.test(line)).map((line) => line.split(/\s+/)[1]!)
  t.ok(froms.length >= 2, 'multi-stage')
  for (const image of froms) {
    t.match(image, /^node:20\.\d+\.\d+-bookworm(-slim)?$/, `${image} is pinned to a Node 20 release`)
    t.notMatch(image, /:latest$|^[^:]+$/, `${image} is not latest`)
  }
  t.match(froms.at(-1), /-slim$/, 'the runtime image is slim')

  const runtime = instructions.slice(instructions.findLastIndex((line) => /^FROM /i.test(line)))
  const user = runtime.filter((line) => /^USER /i.test(line)).at(-1)?.split(/\s+/)[1]
  t.ok(user !== undefined && !/^(root|0)(:|$)/.test(user), `runs as a non-root user (${user})`)
  t.match(runtime.join('\n'), /^ENV .*NODE_ENV=production/m, 'NODE_ENV=production')
  const healthcheck = runtime.find((line) => /^HEALTHCHECK /i.test(line))
  t.match(healthcheck, /CMD \["node", "-e", ".*\/health/, 'HEALTHCHECK probes /health with node')
  const cmd = runtime.filter((line) => /^CMD /i.test(line)).at(-1)
  // The image must run what `npm start` runs, which is what the bench measures: the same node
  // flags (heap sizes, thread-pool preload) and the same allocator settings.
  const start = (JSON.parse(await readFile(`${ROOT}package.json`, 'utf8')) as { scripts: { start: string } }).scripts.start.split(/\s+/)
  const startEnv = start.slice(0, start.indexOf('node'))
  t.same(JSON.parse(cmd?.slice(4) ?? 'null'), start.slice(start.indexOf('node')), 'CMD is exec-form node with the same flags as npm start')
  t.ok(start.includes('--require') && start.includes('./dist/thread-pool.cjs'), 'the thread-pool preload is on the command')
  for (const assignment of startEnv) t.match(runtime.join('\n'), new RegExp(`^ENV .*\\b${assignment}\\b`, 'm'), `the image sets ${assignment}, as npm start`)
  t.match(runtime.join('\n'), /COPY prisma\/migrations/, 'the migrations ship with the image (applied at start)')
  t.match(dockerfile, /npm ci --omit=dev --ignore-scripts/, 'production dependencies only')
  t.match(dockerfile, /RUN npm run build/, 'the build stage runs npm run build')
})

t.test('.dockerignore keeps secrets and local state out of the build context', async (t) => {
  const ignored = (await readFile(`${ROOT}.dockerignore`, 'utf8')).split('\n').map((line) => line.trim())
  for (const entry of ['node_modules', 'dist', 'data', '.env', '.git', '.tap']) t.ok(ignored.includes(entry), `${entry} is ignored`)
})
