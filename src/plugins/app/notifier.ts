import fp from 'fastify-plugin'
import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { PrismaClient } from '../../generated/prisma/client.js'
import { ApiError } from '../../lib/errors.js'
import type { Secrets } from '../../lib/secrets.js'
import { DeliveryError, type Channel, type MessageSender } from '../../senders/message-sender.js'
import { codeSms, codeSpeech, noticeSms, type NoticeKind } from '../../senders/messages.js'
import type { Metrics } from '../external/metrics.js'
import type { Events } from './events.js'
import type { SendGuard } from './send-guard.js'
import type { SmsBudget } from './sms-budget.js'

/** Whose send it is: the organization's daily budget and the per-IP budget count it. */
export interface SendOrigin {
  organizationId: string | null
  /** The end user's address when the challenge began; null when nobody reported one. */
  clientIp: string | null
}

export interface CodeDelivery {
  userId: string
  challengeId: string
  origin: SendOrigin
  channel: Channel
  numberCipher: string
  masked: string
  code: string
}

export interface Notifier {
  /** Hands a code to the provider and records the delivery; a provider failure is 502 delivery_failed. */
  deliverCode (delivery: CodeDelivery): Promise<void>
  /** A code was entered correctly: counted against what was sent, per country calling code of `deliveredTo` (a masked number). */
  codeVerified (deliveredTo: string | null): void
  /** Security notices carry no code and never fail the action that caused them. */
  notify (userId: string, phone: { numberCipher: string, masked: string } | null, kind: NoticeKind): Promise<void>
}

export interface NotifierDeps {
  prisma: PrismaClient
  secrets: Secrets
  sender: MessageSender
  events: Events
  log: FastifyBaseLogger
  webotpDomain?: string | undefined
  supportContact: string
  statusCallbackUrl?: string | undefined
  /** SMS pumping budgets and number checks, before the provider is called. */
  guard?: SendGuard | undefined
  /** The organization's daily texts and calls (policy smsDailyLimit); security notices are not counted. */
  budget?: SmsBudget | undefined
  /** Counts codes by channel and outcome (sent, failed, refused). */
  metrics?: Pick<Metrics, 'codesSent'> | undefined
}

export function createNotifier (deps: NotifierDeps): Notifier {
  const { prisma, secrets, sender, events, log } = deps
  const options = deps.statusCallbackUrl === undefined ? {} : { statusCallback: deps.statusCallbackUrl }

  async function record (data: { userId: string, challengeId: string | null, kind: 'code' | 'notice', channel: Channel, masked: string, providerId: string | null, status: string, errorCode: string | null }) {
    await prisma.delivery.create({ data: { id: randomUUID(), provider: sender.provider, ...data } })
  }

  return {
    async deliverCode ({ userId, challengeId, origin, channel, numberCipher, masked, code }) {
      const to = secrets.decrypt(numberCipher)
      const count = (outcome: 'sent' | 'failed' | 'refused') => deps.metrics?.codesSent.inc({ channel, outcome })
      // A budget or number check that refuses is a code not sent: counted, then answered as before.
      const refused = (err: unknown) => { if (err instanceof ApiError) count('refused'); return err }
      // The organization's day first: a send it refuses never touches the pumping budgets.
      const taken = await deps.budget?.take(origin.organizationId).catch((err: unknown) => { throw refused(err) })
      let reservation: Awaited<ReturnType<SendGuard['reserve']>> | undefined
      try {
        reservation = await deps.guard?.reserve(to, origin.clientIp)
      } catch (err) {
        if (taken !== undefined) await deps.budget?.refund(taken)
        throw refused(err)
      }
      let handedOver = false
      try {
        const receipt = channel === 'sms'
          ? await sender.sendSms(to, codeSms(code, deps.webotpDomain), options)
          : await sender.call(to, codeSpeech(code), options)
        handedOver = true
        if (reservation !== undefined) deps.guard?.confirm(reservation)
        count('sent')
        await record({ userId, challengeId, kind: 'code', channel, masked, providerId: receipt.providerId, status: receipt.status, errorCode: null })
      } catch (err) {
        // The provider took nothing: the organization gets the send back, whatever the failure.
        if (!handedOver && taken !== undefined) await deps.budget?.refund(taken)
        if (!(err instanceof DeliveryError)) throw err
        count('failed')
        // Nothing was sent: the budgets get the send back, so a Twilio outage cannot exhaust them.
        if (reservation !== undefined) await deps.guard?.refund(reservation)
        log.warn({ userId, challengeId, channel, reason: err.reason, providerCode: err.providerCode }, 'code delivery failed')
        await record({ userId, challengeId, kind: 'code', channel, masked, providerId: null, status: 'failed', errorCode: err.reason })
        throw new ApiError('delivery_failed', `the ${channel === 'sms' ? 'text message' : 'call'} to ${masked} could not be placed; try again or use another channel`)
      }
    },
    codeVerified (deliveredTo) {
      deps.guard?.verified(deliveredTo)
    },
    async notify (userId, phone, kind) {
      if (phone === null) return
      try {
        const receipt = await sender.sendSms(secrets.decrypt(phone.numberCipher), noticeSms(kind, deps.supportContact), options)
        await record({ userId, challengeId: null, kind: 'notice', channel: 'sms', masked: phone.masked, providerId: receipt.providerId, status: receipt.status, errorCode: null })
        await events.record('notice.sent', userId, null, { kind, phone: phone.masked })
      } catch (err) {
        log.warn({ userId, kind, err: err instanceof Error ? err.message : String(err) }, 'security notice not delivered')
        await events.record('notice.failed', userId, null, { kind, phone: phone.masked }).catch(() => {})
      }
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance { notifier: Notifier }
}

export default fp(async (fastify) => {
  const { config } = fastify
  fastify.decorate('notifier', createNotifier({
    prisma: fastify.prisma,
    secrets: fastify.secrets,
    sender: fastify.sender,
    events: fastify.events,
    log: fastify.log,
    webotpDomain: config.WEBOTP_DOMAIN,
    supportContact: config.SUPPORT_CONTACT,
    statusCallbackUrl: config.PUBLIC_BASE_URL === undefined ? undefined : `${config.PUBLIC_BASE_URL}/v1/webhooks/twilio/status`,
    guard: fastify.sendGuard,
    budget: fastify.smsBudget,
    metrics: fastify.metrics
  }))
}, { name: 'notifier', dependencies: ['database', 'sender', 'events', 'send-guard', 'sms-budget', 'metrics'] })
