import fp from 'fastify-plugin'
import { randomUUID } from 'node:crypto'
import { Prisma, type PrismaClient } from '../../generated/prisma/client.js'
import type { RequestContext } from '../../lib/request-context.js'
import type { Metrics } from '../external/metrics.js'

/** The security event types of contract section 5, and the notices that went out. */
export type EventType =
  | 'user.created' | 'user.updated' | 'user.deleted' | 'password.changed'
  | 'login.succeeded' | 'login.failed' | 'login.throttled' | 'challenge.sent' | 'challenge.send_failed' | 'challenge.send_refused'
  | 'code.failed' | 'code.lockout' | 'recovery.used' | 'recovery.failed'
  | 'account.locked' | 'account.unlocked'
  | 'phone.verification_started' | 'phone.verified' | 'phone.updated' | 'phone.removed'
  | 'recovery_code.regenerated' | 'two_factor.reset' | 'notice.sent' | 'notice.failed'
  | 'totp.enrollment_started' | 'totp.enabled' | 'totp.removed'
  | 'device.remembered' | 'device.revoked' | 'policy.updated'

export type EventDetails = Record<string, string | number | boolean | null | string[]>

/** An event written by the caller's own statement: `rows` is an INSERT ... SELECT without a WHERE, `announce` logs and counts it once it is in. */
export interface EventInsert { rows: Prisma.Sql, announce: () => void }

/** Where a statement that learns the user only as it runs finds the event's user and details: SQL over the rows of `from`. */
export interface EventSource { from: Prisma.Sql, userId: Prisma.Sql, details: Prisma.Sql }

export interface Events {
  record (type: EventType, userId: string | null, context: RequestContext | null, details?: EventDetails): Promise<void>
  /** For an event that must commit in the same statement as the change it records (the caller appends the WHERE that ties the two). */
  asInsert (type: EventType, userId: string, context: RequestContext | null, details?: EventDetails): EventInsert
  /** As `asInsert`, one event per row of `source.from`; the caller announces what its statement returned. */
  asInsertFrom (type: EventType, context: RequestContext | null, source: EventSource): Prisma.Sql
  /** Logs and counts an event another statement wrote. */
  announce (type: EventType, userId: string, context: RequestContext | null, details: EventDetails): void
  list (userId: string, options: { limit: number, before?: string | undefined }): Promise<Array<{
    id: string, type: string, createdAt: Date, ip: string | null, userAgent: string | null, details: unknown
  }>>
}

/**
 * Every lock and pause is recorded as an event, wherever it happens (login flows, support,
 * the admin CLI), so the lockout counter is fed here. The reason label comes from a fixed
 * set: support's free-text reasons would grow the series count without bound.
 */
function lockoutReason (type: EventType, details: EventDetails): string | null {
  if (type === 'code.lockout') return 'code_failures'
  if (type !== 'account.locked') return null
  if (details.by === 'support') return 'support'
  return details.reason === 'too_many_recovery_failures' ? 'recovery_failures' : 'other'
}

export interface EventsDeps {
  prisma: PrismaClient
  metrics?: Pick<Metrics, 'lockouts'> | undefined
  /** One line per event: type, user and request id only. Details stay in the database: they hold masked numbers and support's free text. */
  log?: { info (obj: object, msg?: string): void } | undefined
}

export function createEvents ({ prisma, metrics, log }: EventsDeps): Events {
  function announce (type: EventType, userId: string | null, context: RequestContext | null, details: EventDetails): void {
    log?.info({ event: type, userId, ...(context?.requestId === undefined ? {} : { reqId: context.requestId }) }, 'security event')
    const reason = lockoutReason(type, details)
    if (reason !== null) metrics?.lockouts.inc({ reason })
  }

  function insertFrom (type: EventType, context: RequestContext | null, source: EventSource): Prisma.Sql {
    return Prisma.sql`INSERT INTO security_events (id, user_id, type, ip, user_agent, details)
      SELECT ${randomUUID()}, ${source.userId}, ${type}, ${context?.ip ?? null}, ${context?.userAgent ?? null}, ${source.details} ${source.from}`
  }

  return {
    async record (type, userId, context, details = {}) {
      await prisma.securityEvent.create({
        data: { id: randomUUID(), type, userId, ip: context?.ip ?? null, userAgent: context?.userAgent ?? null, details }
      })
      announce(type, userId, context, details)
    },
    asInsert (type, userId, context, details = {}) {
      return {
        rows: insertFrom(type, context, { from: Prisma.empty, userId: Prisma.sql`${userId}`, details: Prisma.sql`${JSON.stringify(details)}::jsonb` }),
        announce: () => { announce(type, userId, context, details) }
      }
    },
    asInsertFrom: insertFrom,
    announce,
    async list (userId, { limit, before }) {
      const cursor = before === undefined
        ? null
        : await prisma.securityEvent.findFirst({ where: { id: before, userId }, select: { createdAt: true, id: true } })
      return await prisma.securityEvent.findMany({
        where: {
          userId,
          ...(cursor === null
            ? {}
            : { OR: [{ createdAt: { lt: cursor.createdAt } }, { createdAt: cursor.createdAt, id: { lt: cursor.id } }] })
        },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        take: limit,
        select: { id: true, type: true, createdAt: true, ip: true, userAgent: true, details: true }
      })
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance { events: Events }
}

export default fp(async (fastify) => {
  fastify.decorate('events', createEvents({ prisma: fastify.prisma, metrics: fastify.metrics, log: fastify.log }))
}, { name: 'events', dependencies: ['database', 'metrics'] })
