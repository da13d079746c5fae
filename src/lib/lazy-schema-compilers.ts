import { createRequire } from 'node:module'
import type { FastifyServerOptions } from 'fastify'

/**
 * Fastify compiles every route's request validators (Ajv) and response serializers
 * (fast-json-stringify) while it starts: about a fifth of the start on PostgreSQL (issue 6).
 * These compilers are Fastify's own defaults, with the same options; each schema is only
 * compiled at its route's first use instead of at start. `compileAll` compiles whatever is
 * still pending (tests prove with it that every schema compiles).
 *
 * One difference with the defaults: Fastify treats a compiler factory given here as custom,
 * so it no longer lowercases the property names of `headers` schemas for us. Headers arrive
 * lowercased; a route's `headers` schema must name them in lowercase (the only one does).
 */
type Compiled = ((...args: unknown[]) => unknown) & { errors?: unknown, schemaEnv?: unknown }
type Compile = (routeSchema: Record<string, unknown>) => Compiled
type Build = (externalSchemas: unknown, options: unknown) => Compile

// Fastify's own copies, whatever versions it depends on.
const fastifyRequire = createRequire(createRequire(import.meta.url).resolve('fastify'))

export interface LazySchemaCompilers {
  schemaController: NonNullable<FastifyServerOptions['schemaController']>
  /** Compiles every schema not compiled yet; returns how many it compiled. Throws like a start would on a bad schema. */
  compileAll (): number
}

export function lazySchemaCompilers (): LazySchemaCompilers {
  const pending = new Set<() => Compiled>()

  // The compiler modules themselves (Ajv, fast-json-stringify) are loaded at the first compile too.
  function lazily (load: () => Build, kind: 'validator' | 'serializer'): Build {
    return (externalSchemas, options) => {
      let compiler: Compile | undefined
      const compile: Compile = (routeSchema) => (compiler ??= load()(externalSchemas, options))(routeSchema)
      return (routeSchema) => {
        let compiled: Compiled | undefined
        const now = () => {
          if (compiled === undefined) {
            try {
              compiled = compile(routeSchema)
            } catch (err) {
              throw new Error(`${kind} of ${String(routeSchema.method)} ${String(routeSchema.url)}: ${err instanceof Error ? err.message : String(err)}`)
            }
            pending.delete(now)
          }
          return compiled
        }
        pending.add(now)
        const run = function (this: unknown, ...args: unknown[]) { return now().apply(this, args) } as Compiled
        // Fastify reads these off a validator: Ajv's errors after a call, and schemaEnv to decide how to call it.
        Object.defineProperty(run, 'errors', { get: () => now().errors })
        Object.defineProperty(run, 'schemaEnv', { get: () => now().schemaEnv })
        return run
      }
    }
  }

  // One factory each per app, as Fastify has: it pools the Ajv instances it builds.
  let buildValidator: Build | undefined
  let buildSerializer: Build | undefined
  return {
    schemaController: {
      compilersFactory: {
        buildValidator: lazily(() => (buildValidator ??= (fastifyRequire('@fastify/ajv-compiler') as () => Build)()), 'validator') as never,
        buildSerializer: lazily(() => (buildSerializer ??= (fastifyRequire('@fastify/fast-json-stringify-compiler') as () => Build)()), 'serializer') as never
      }
    },
    compileAll () {
      let count = 0
      for (const now of [...pending]) { now(); count++ }
      return count
    }
  }
}
