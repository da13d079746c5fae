import { randomBytes } from 'node:crypto'
import { maskPhone, type Channel, type DeliveryReceipt, type MessageSender, type SenderLogger } from './message-sender.js'

export interface OutboxEntry {
  channel: Channel
  /** E.164, unmasked: the outbox is what a developer or smoke test reads the code from. */
  to: string
  text: string
  providerId: string
  statusCallback?: string
  sentAt: Date
}

export interface ConsoleSender extends MessageSender {
  readonly provider: 'console'
  /** Everything "sent", oldest first. */
  readonly outbox: OutboxEntry[]
}

/** A development server runs for days; the outbox keeps the recent messages only. */
const OUTBOX_LIMIT = 500

/**
 * Development-only provider (refused in production by the configuration): the
 * message, code included, goes to the log so a developer can sign in without
 * Twilio. The number is masked even here, as logs get shared.
 */
export function createConsoleSender (logger: SenderLogger): ConsoleSender {
  const outbox: OutboxEntry[] = []

  function deliver (channel: Channel, to: string, text: string, statusCallback: string | undefined): DeliveryReceipt {
    const providerId = `console-${randomBytes(8).toString('hex')}`
    outbox.push({ channel, to, text, providerId, sentAt: new Date(), ...(statusCallback !== undefined ? { statusCallback } : {}) })
    if (outbox.length > OUTBOX_LIMIT) outbox.splice(0, outbox.length - OUTBOX_LIMIT)
    logger.info({ provider: 'console', channel, to: maskPhone(to), providerId, text }, `console ${channel === 'sms' ? 'SMS' : 'call'} to ${maskPhone(to)}: ${text}`)
    return { providerId, status: 'sent' }
  }

  return {
    provider: 'console',
    outbox,
    async sendSms (to, body, options) {
      return deliver('sms', to, body, options?.statusCallback)
    },
    async call (to, speech, options) {
      return deliver('voice', to, speech, options?.statusCallback)
    }
  }
}
