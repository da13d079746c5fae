import type { Counter, Histogram } from 'prom-client'
import { DeliveryError, type DeliveryReceipt, type MessageSender } from './message-sender.js'

export interface SenderMetrics {
  /** Provider call latency by provider, operation (sms, voice) and outcome (ok, error). */
  readonly providerDuration: Histogram<string>
  /** Provider calls that failed, by provider, operation and DeliveryError reason. */
  readonly providerErrors: Counter<string>
}

/**
 * Times every call to the provider and counts its failures without the flows knowing:
 * the notifier sees the same sender interface and the same errors as before.
 */
export function instrumentSender (sender: MessageSender, metrics: SenderMetrics): MessageSender {
  async function timed (operation: 'sms' | 'voice', call: () => Promise<DeliveryReceipt>): Promise<DeliveryReceipt> {
    const stop = metrics.providerDuration.startTimer({ provider: sender.provider, operation })
    try {
      const receipt = await call()
      stop({ outcome: 'ok' })
      return receipt
    } catch (err) {
      stop({ outcome: 'error' })
      // Only the bounded set of reasons becomes a label; anything else is one bucket.
      const reason = err instanceof DeliveryError ? err.reason : 'unexpected'
      metrics.providerErrors.inc({ provider: sender.provider, operation, reason })
      throw err
    }
  }
  return {
    provider: sender.provider,
    sendSms: async (to, body, options) => await timed('sms', async () => await sender.sendSms(to, body, options)),
    call: async (to, speech, options) => await timed('voice', async () => await sender.call(to, speech, options))
  }
}
