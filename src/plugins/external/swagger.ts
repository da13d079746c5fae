import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { addExamples, type OpenApiDocument } from '../../lib/openapi-examples.js'

export const OPENAPI_INFO = {
  title: 'Studio Pro Auth',
  version: '1.0.0',
  description: 'Two-factor authentication for Studio Pro: passwords, codes by SMS or voice call, recovery codes. ' +
    'Errors are RFC 9457 problem details; switch on `code`.'
}

/** The spec is generated from the route schemas; openapi.yaml is this output, committed (see scripts/write-openapi.ts). */
export default fp(async (fastify) => {
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: OPENAPI_INFO,
      components: {
        securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'API key made with `npm run keys -- create`' } }
      },
      security: [{ apiKey: [] }],
      tags: [
        { name: 'users', description: 'Contract section 1' },
        { name: 'phones', description: 'Contract section 2: phones and the recovery code' },
        { name: 'totp', description: 'Contract section 4: authenticator apps' },
        { name: 'login', description: 'Contract section 3' },
        { name: 'devices', description: 'Contract section 4: remembered devices' },
        { name: 'policy', description: 'Contract section 6: per-organization two-factor policy' },
        { name: 'support', description: 'Contract section 5' },
        { name: 'operations', description: 'Contract section 7' },
        { name: 'webhooks', description: 'Contract section 7' }
      ]
    },
    hideUntagged: true,
    // Examples and per-route error codes for QA, derived from the schemas (see openapi-examples.ts).
    transformObject: (documentObject) => addExamples(('openapiObject' in documentObject ? documentObject.openapiObject : documentObject.swaggerObject) as OpenApiDocument) as never
  })
  await fastify.register(swaggerUi, { routePrefix: '/docs' })
  fastify.get('/openapi.json', { schema: { hide: true } }, async () => fastify.swagger())
}, { name: 'swagger' })
