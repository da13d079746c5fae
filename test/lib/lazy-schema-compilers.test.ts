// Issue 6: schemas are compiled at their route's first use instead of at start. That must
// not hide a broken schema until a request meets it, nor change what is validated or sent.
import t from 'tap'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import app, { serverOptions } from '../../src/app.js'
import { lazySchemaCompilers } from '../../src/lib/lazy-schema-compilers.js'
import { migratedDatabase } from '../helpers/database.js'
import { startFakeTwilio } from '../helpers/fake-twilio.js'
import { testConfig, TEST_API_KEY } from '../helpers/app.js'

t.test('nothing is compiled at start, and every schema of the service compiles', async (t) => {
  const { db, url } = await migratedDatabase(t)
  const twilio = await startFakeTwilio(t)
  const config = await testConfig(t, { ...twilio.env, DATABASE_URL: url })
  const compilers = lazySchemaCompilers()
  const fastify = Fastify(serverOptions(config, undefined, compilers))
  t.teardown(async () => { await fastify.close() })
  await fastify.register(fp(app, { name: 'studio-pro-auth' }), { config, database: db })
  await fastify.ready()

  const health = await fastify.inject({ method: 'GET', url: '/health' })
  t.equal(health.statusCode, 200, 'a route works, its schemas compiled on use')
  const compiled = compilers.compileAll()
  t.ok(compiled >= 30, `every other schema compiles (${compiled} of them)`)
  t.equal(compilers.compileAll(), 0, 'and each only once')

  // Compiled ahead or on use, the validators refuse the same things.
  const refused = await fastify.inject({ method: 'POST', url: '/v1/logins', headers: { authorization: `Bearer ${TEST_API_KEY}` }, payload: { email: 'a@b.example', password: 'x', extra: 1 } })
  t.equal(refused.statusCode, 400, 'unknown fields are still refused')
  t.equal(refused.json().code, 'invalid_request')
})

t.test('a broken schema fails its first use and compileAll, naming the route', async (t) => {
  const compilers = lazySchemaCompilers()
  const fastify = Fastify({ schemaController: compilers.schemaController })
  t.teardown(async () => { await fastify.close() })
  fastify.post('/broken', { schema: { body: { type: 'object', properties: { a: { type: 'no-such-type' } } } } }, async () => ({}))
  fastify.get('/fine', { schema: { response: { 200: { type: 'object', properties: { a: { type: 'string' } } } } } }, async () => ({ a: 'x', secret: 'dropped' }))
  await fastify.ready()
  const fine = await fastify.inject({ method: 'GET', url: '/fine' })
  t.same(fine.json(), { a: 'x' }, 'the serializer sends only what the response schema names')
  t.throws(() => compilers.compileAll(), /validator of POST \/broken/)
  t.equal((await fastify.inject({ method: 'POST', url: '/broken', payload: { a: 1 } })).statusCode, 500)
})
