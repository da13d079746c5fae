export type Channel = 'sms' | 'voice'

/** What the provider said when it took the message; `status` is the provider's own word (Twilio: queued, accepted, …). */
export interface DeliveryReceipt {
  providerId: string | null
  status: string
}

export interface SendOptions {
  /** Where the provider reports delivery progress (contract section 7). */
  statusCallback?: string
}

/** The one way the service reaches a phone; flows never talk to Twilio directly. */
export interface MessageSender {
  readonly provider: 'twilio' | 'console'
  /** `to` is E.164. */
  sendSms (to: string, body: string, options?: SendOptions): Promise<DeliveryReceipt>
  /** Places a call that speaks `speech` (plain text; the sender builds the TwiML). `to` is E.164. */
  call (to: string, speech: string, options?: SendOptions): Promise<DeliveryReceipt>
}

export type DeliveryFailureReason = 'timeout' | 'rejected' | 'provider_error' | 'rate_limited'

/**
 * Every failure to hand a message over, whatever its cause, so callers map one
 * error type to 502 `delivery_failed`. The message carries masked numbers only
 * and never a credential: it ends up in logs.
 */
export class DeliveryError extends Error {
  constructor (message: string, readonly reason: DeliveryFailureReason, readonly providerCode?: string | number) {
    super(message)
    this.name = 'DeliveryError'
  }
}

/** Structurally compatible with pino's and Fastify's logger, so either can be passed as is. */
export interface SenderLogger {
  info (obj: object, msg?: string): void
  warn (obj: object, msg?: string): void
  error (obj: object, msg?: string): void
}

/**
 * Masks a number for logs and error messages: only the last two digits stay,
 * within the contract's "last 2-4 digits visible" and short enough not to
 * identify the subscriber.
 */
export function maskPhone (number: string): string {
  const digits = number.replace(/\D/g, '')
  if (digits.length <= 2) return '••'
  return (number.trim().startsWith('+') ? '+' : '') + '•'.repeat(digits.length - 2) + digits.slice(-2)
}

/**
 * Masks anything that looks like a phone number inside free text, such as a
 * provider's error message ("The 'To' number +15551234567 is not valid").
 */
export function maskPhonesIn (text: string): string {
  return text.replace(/\+?\d[\d\s().-]{5,}\d/g, (match) => maskPhone(match))
}
