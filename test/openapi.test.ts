// openapi.yaml is the document the backend team codes against: it must be what the code
// generates, valid OpenAPI 3.1, and cover every route and error code of the contract.
import t from 'tap'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { compileErrors, validate } from '@readme/openapi-parser'
import { parse } from 'yaml'
import Ajv from 'ajv'
import addFormats from 'ajv-formats'
import { OPENAPI_FILE, generateOpenApi } from '../scripts/write-openapi.js'
import { buildTestApp } from './helpers/app.js'

// Beside the clone: /work/shared here, ../shared in CI.
const CONTRACT_FILE = fileURLToPath(new URL('../../shared/CONTRACT.md', import.meta.url))

/** Contract sections and routes that later issues build; checked, but reported as todo until then. */
const LATER: Array<{ matches: (route: ContractRoute) => boolean, reason: string }> = [
]

/** Routes the contract names that are deliberately not in the document: they serve it. */
const NOT_DOCUMENTED: Record<string, string> = {
  'GET /openapi.json': 'serves this document (checked below by fetching it)',
  'GET /docs': 'the Swagger UI page for this document (checked below by fetching it)'
}

interface ContractRoute {
  section: number
  method: string
  path: string
  /** Statuses of the success and errors columns, when the route has a table row. */
  statuses: string[]
  /** Error code → the status it comes with. */
  codes: Array<{ code: string, status: string }>
}

type Media = { schema?: object, example?: unknown, examples?: Record<string, { value: unknown }> }
type Operation = {
  responses?: Record<string, { content?: Record<string, Media> }>
  requestBody?: { content?: Record<string, Media> }
  parameters?: Array<{ name: string, schema?: object, example?: unknown }>
  security?: unknown[]
  'x-error-codes'?: Record<string, string[]>
}
type Document = { openapi: string, paths: Record<string, Record<string, Operation>>, security?: unknown[] }

const METHOD = '(?:GET|POST|PUT|PATCH|DELETE)'
const ROUTE = new RegExp(`\`(${METHOD}(?:\\|${METHOD})*) (/[^\`\\s?]*)[^\`]*\``, 'g')

/** Table cells, split on pipes that are not escaped as `\|`. */
function cells (line: string): string[] {
  return line.trim().replace(/^\||\|$/g, '').split(/(?<!\\)\|/).map((cell) => cell.trim())
}

/** The routes of CONTRACT.md, with the statuses and error codes their table rows name. */
function contractRoutes (markdown: string): { routes: ContractRoute[], generalCodes: Array<{ code: string, status: string }> } {
  const routes: ContractRoute[] = []
  let generalCodes: Array<{ code: string, status: string }> = []
  const sections = markdown.split(/^## /m).slice(1)
  for (const text of sections) {
    const section = Number(/^(\d+)\./.exec(text)?.[1])
    if (Number.isNaN(section)) continue
    if (section === 0) {
      generalCodes = [...text.matchAll(/\b(\d{3}) `([a-z_]+)`/g)].map((m) => ({ status: m[1]!, code: m[2]! }))
    }
    const seen = new Set<string>()
    for (const line of text.split('\n')) {
      const isRow = line.trimStart().startsWith('|')
      const row = isRow ? cells(line) : []
      for (const match of line.matchAll(ROUTE)) {
        // Only the first cell of a table row names routes; later cells are prose.
        if (isRow && !row[0]!.includes(match[0])) continue
        const statuses: string[] = []
        const codes: Array<{ code: string, status: string }> = []
        if (isRow) {
          const success = /^(\d{3})/.exec(row[1] ?? '')?.[1]
          if (success !== undefined) statuses.push(success)
          for (const part of (row[2] ?? '').split(/,\s*/)) {
            const status = /^(\d{3})/.exec(part)?.[1]
            if (status === undefined) continue
            statuses.push(status)
            for (const code of part.matchAll(/`([a-z_]+)`/g)) codes.push({ code: code[1]!, status })
          }
        }
        for (const method of match[1]!.split('|')) {
          const key = `${method} ${match[2]!}`
          if (seen.has(key)) continue
          seen.add(key)
          routes.push({ section, method, path: match[2]!, statuses, codes })
        }
      }
    }
  }
  return { routes, generalCodes }
}

function mentions (value: unknown, word: string): boolean {
  return new RegExp(`\\b${word}\\b`).test(JSON.stringify(value ?? null))
}

// Generating the document creates an embedded database: slow on a busy machine.
t.setTimeout(300_000)

const committed = await readFile(OPENAPI_FILE, 'utf8').catch(() => null)
const document = committed === null ? null : parse(committed) as Document

t.test('openapi.yaml is what the code generates now', async (t) => {
  t.ok(committed !== null, 'openapi.yaml exists at the top of the repository (run `npm run openapi`)')
  const generated = await generateOpenApi()
  // t.equal prints a diff of the two texts when they differ.
  t.equal(committed, generated,
    'openapi.yaml is out of date: run `npm run openapi` and commit the result')
})

t.test('openapi.yaml is a valid OpenAPI 3.1 document', async (t) => {
  if (document === null) return t.fail('openapi.yaml is missing')
  t.equal(document.openapi, '3.1.0')
  const result = await validate(structuredClone(document) as never)
  t.ok(result.valid, result.valid ? 'valid' : compileErrors(result))
  t.equal(result.specification, 'OpenAPI')
  t.same(result.warnings, [], 'no validator warnings')

  // The validator really looks at the document: a broken copy fails.
  const broken = structuredClone(document) as unknown as Record<string, unknown>
  broken.paths = { '/x': { get: { responses: { 200: { content: 'not an object' } } } } }
  t.notOk((await validate(broken as never)).valid, 'a broken document does not validate')
})

t.test('every route and error code of the contract is in openapi.yaml', async (t) => {
  if (!existsSync(CONTRACT_FILE)) {
    return t.skip(`${CONTRACT_FILE} not found: the contract lives in shared/ beside the clone (../shared/CONTRACT.md), so this check runs only where it is present`)
  }
  if (document === null) return t.fail('openapi.yaml is missing')
  const { routes, generalCodes } = contractRoutes(await readFile(CONTRACT_FILE, 'utf8'))
  t.ok(routes.length >= 30, `the contract's route tables were read (${routes.length} routes)`)
  t.ok(generalCodes.some((c) => c.code === 'unauthorized'), 'section 0 codes were read')

  for (const route of routes) {
    const key = `${route.method} ${route.path}`
    if (NOT_DOCUMENTED[key] !== undefined) {
      t.comment(`${key} is not in the document: ${NOT_DOCUMENTED[key]}`)
      continue
    }
    const later = LATER.find((l) => l.matches(route))
    await t.test(key, later === undefined ? {} : { todo: later.reason }, async (t) => {
      const operation = document.paths[route.path]?.[route.method.toLowerCase()]
      t.ok(operation !== undefined, `${key} (contract section ${route.section}) is in openapi.yaml`)
      if (operation === undefined) return
      const responses = operation.responses ?? {}
      for (const status of route.statuses) {
        t.ok(responses[status] !== undefined, `${key} documents a ${status} answer`)
      }
      for (const { code, status } of route.codes) {
        t.ok(mentions(responses[status], code), `${key} documents ${status} ${code}`)
      }
      // Section 0: every /v1 route but the webhooks takes an API key and validates its input.
      if (route.path.startsWith('/v1/') && !route.path.startsWith('/v1/webhooks/')) {
        for (const { code, status } of generalCodes.filter((c) => ['unauthorized', 'forbidden', 'invalid_request'].includes(c.code))) {
          t.ok(mentions(responses[status], code), `${key} documents ${status} ${code}`)
        }
      }
    })
  }

  const text = JSON.stringify(document)
  for (const { code } of generalCodes) {
    t.ok(mentions(text, code), `section 0 code ${code} appears in openapi.yaml`)
  }

  // Section 0 and 7: the probes and the webhooks take no API key, so their operations should say so.
  await t.test('routes without an API key are documented without security', async (t) => {
    for (const route of routes.filter((r) => r.section === 7 && NOT_DOCUMENTED[`${r.method} ${r.path}`] === undefined && !LATER.some((l) => l.matches(r)))) {
      const operation = document.paths[route.path]?.[route.method.toLowerCase()]
      t.same(operation?.security, [], `${route.method} ${route.path} has security: []`)
    }
  })
})

t.test('every operation has examples that fit its schemas, and lists its error codes by status', async (t) => {
  if (document === null) return t.fail('openapi.yaml is missing')
  // The validator fastify itself uses (Ajv, draft-07: typebox's tuples are written that way),
  // so an example that fits is one the service would accept or send.
  const ajv = new Ajv.default({ strict: false, allErrors: true })
  addFormats.default(ajv)
  const fits = (schema: object | undefined, value: unknown): string | null => {
    if (schema === undefined) return 'no schema'
    const validate = ajv.compile(schema)
    return validate(value) ? null : ajv.errorsText(validate.errors)
  }
  let operations = 0
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      operations++
      const key = `${method.toUpperCase()} ${path}`
      const examples: Array<{ where: string, schema: object | undefined, value: unknown }> = []
      const collect = (where: string, media: Media) => {
        if (media.example !== undefined) examples.push({ where, schema: media.schema, value: media.example })
        for (const [name, example] of Object.entries(media.examples ?? {})) examples.push({ where: `${where} (${name})`, schema: media.schema, value: example.value })
      }
      for (const [type, media] of Object.entries(operation.requestBody?.content ?? {})) {
        t.ok(media.example !== undefined || media.examples !== undefined, `${key}: the ${type} request body has an example`)
        collect(`${key} request`, media)
      }
      for (const parameter of operation.parameters ?? []) {
        t.ok(parameter.example !== undefined, `${key}: parameter ${parameter.name} has an example`)
        examples.push({ where: `${key} parameter ${parameter.name}`, schema: parameter.schema, value: parameter.example })
      }
      const errorCodes = operation['x-error-codes']
      t.ok(errorCodes !== undefined, `${key} has x-error-codes`)
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        for (const [type, media] of Object.entries(response.content ?? {})) {
          t.ok(media.example !== undefined || media.examples !== undefined, `${key}: the ${status} ${type} answer has an example`)
          collect(`${key} ${status}`, media)
        }
        if (/^[45]\d\d$/.test(status)) {
          const codes = errorCodes?.[status] ?? []
          t.ok(codes.length > 0, `${key}: x-error-codes lists the codes of its ${status} answer`)
          // One named example per listed code, so each answer QA can meet is shown.
          const named = Object.keys(response.content?.['application/problem+json']?.examples ?? {})
          t.same(named.sort(), [...codes].sort(), `${key}: one ${status} example per code`)
        }
      }
      for (const status of Object.keys(errorCodes ?? {})) {
        t.ok(operation.responses?.[status] !== undefined, `${key}: x-error-codes ${status} is a documented answer`)
      }
      if (path.startsWith('/v1/') && !path.startsWith('/v1/webhooks/')) {
        t.match(errorCodes, { 400: ['invalid_request'], 401: Array, 403: Array }, `${key} lists the section 0 errors`)
      }
      t.ok(examples.length > 0, `${key} has at least one example`)
      for (const example of examples) {
        const error = fits(example.schema, example.value)
        t.equal(error, null, `${example.where}: the example fits the schema`)
      }
    }
  }
  t.ok(operations >= 25, `${operations} operations checked`)
})

t.test('the service serves the same document at /openapi.json, and the docs page', async (t) => {
  if (document === null) return t.fail('openapi.yaml is missing')
  const ctx = await buildTestApp(t)
  const served = await ctx.app.inject({ method: 'GET', url: '/openapi.json' })
  t.equal(served.statusCode, 200)
  t.match(served.headers['content-type'], /^application\/json/)
  t.same(served.json(), document, 'GET /openapi.json equals openapi.yaml')
  const docs = await ctx.app.inject({ method: 'GET', url: '/docs' })
  t.ok([200, 302].includes(docs.statusCode), `GET /docs answers (${docs.statusCode})`)
  // What Swagger UI loads: the same document, so /docs shows what openapi.yaml says.
  const uiSpec = await ctx.app.inject({ method: 'GET', url: '/docs/json' })
  t.equal(uiSpec.statusCode, 200)
  t.same(uiSpec.json(), document, 'GET /docs/json (Swagger UI\'s source) equals openapi.yaml')
})
