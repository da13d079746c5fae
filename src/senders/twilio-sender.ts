import twilio from 'twilio'
import {
  DeliveryError,
  maskPhone,
  maskPhonesIn,
  type Channel,
  type DeliveryFailureReason,
  type DeliveryReceipt,
  type MessageSender,
  type SendOptions,
  type SenderLogger
} from './message-sender.js'

export interface TwilioSenderOptions {
  accountSid: string
  authToken: string
  fromNumber?: string
  messagingServiceSid?: string
  /** Replaces the origin of every Twilio host (TWILIO_BASE_URL: tests, egress proxies). */
  baseUrl?: string
  /** The whole request, connect to last byte, must finish within this. */
  timeoutMs: number
  logger?: SenderLogger
}

type RequestOptions = Parameters<InstanceType<typeof twilio.RequestClient>['request']>[0]

/**
 * Points a Twilio URL at `baseUrl`, keeping path and query. Every *.twilio.com
 * host is moved, not just api.twilio.com: TWILIO_REGION / TWILIO_EDGE make the
 * SDK rewrite hostnames (api.dublin.ie1.twilio.com), and a test or proxy must
 * never be bypassed because of that.
 */
export function rewriteTwilioUrl (uri: string, baseUrl: string): string {
  const target = new URL(uri)
  if (target.hostname !== 'twilio.com' && !target.hostname.endsWith('.twilio.com')) return uri
  const base = new URL(baseUrl)
  return base.origin + base.pathname.replace(/\/+$/, '') + target.pathname + target.search
}

/**
 * The SDK's RequestClient with two changes. Its `timeout` only bounds socket
 * inactivity (axios req.setTimeout), so a server that trickles bytes could
 * hold a login for ever; an abort signal per request makes it a deadline.
 * And the origin is rewritten when TWILIO_BASE_URL is set.
 */
class TwilioHttpClient extends twilio.RequestClient {
  constructor (private readonly baseUrl: string | undefined, timeoutMs: number) {
    super({ timeout: timeoutMs, keepAlive: true })
    this.axios.interceptors.request.use((config) => {
      config.signal ??= AbortSignal.timeout(timeoutMs)
      return config
    })
  }

  override request<TData> (opts: RequestOptions & { data?: TData }) {
    const uri = this.baseUrl === undefined ? opts.uri : rewriteTwilioUrl(opts.uri, this.baseUrl)
    return super.request<TData>({ ...opts, uri })
  }
}

interface ClassifiedFailure {
  reason: DeliveryFailureReason
  detail: string
  providerCode?: string | number
  httpStatus?: number
}

// Twilio error codes that mean "slow down" even when not sent with HTTP 429.
const RATE_LIMIT_CODES = new Set([14107, 20429, 30022])

/**
 * Turns whatever the SDK threw into a reason. Only fields known to be safe are
 * read: an axios error also carries the request config, whose Authorization
 * header holds the auth token, so it is never kept, logged or chained as cause.
 */
function classify (err: unknown): ClassifiedFailure {
  const e = (typeof err === 'object' && err !== null ? err : {}) as Record<string, unknown>
  const status = typeof e.status === 'number' ? e.status : undefined
  const providerCode = typeof e.code === 'number' || (typeof e.code === 'string' && status !== undefined) ? e.code as number | string : undefined
  if (status !== undefined) {
    // RestException (legacy) puts Twilio's text in message; TwilioServiceException (RFC 9457) in detail/title.
    const text = [e.detail, e.message, e.title].find((v): v is string => typeof v === 'string' && v !== '') ?? 'no detail'
    const detail = `HTTP ${status}${providerCode !== undefined ? ` (Twilio ${providerCode})` : ''}: ${text}`
    let reason: DeliveryFailureReason
    if (status === 429 || (typeof providerCode === 'number' && RATE_LIMIT_CODES.has(providerCode))) reason = 'rate_limited'
    else if (status >= 500) reason = 'provider_error'
    // Bad credentials or a wrong account are our configuration, not the recipient's fault.
    else if (status === 401 || status === 403 || status === 404) reason = 'provider_error'
    else reason = 'rejected'
    return { reason, detail, providerCode, httpStatus: status }
  }
  const code = typeof e.code === 'string' ? e.code : undefined
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT' || code === 'ERR_CANCELED' || e.name === 'TimeoutError' || e.name === 'AbortError') {
    return { reason: 'timeout', detail: 'no answer in time' }
  }
  return { reason: 'provider_error', detail: code !== undefined ? `network error ${code}` : 'unexpected error' }
}

export function createTwilioSender (options: TwilioSenderOptions): MessageSender {
  const { accountSid, authToken, fromNumber, messagingServiceSid, baseUrl, timeoutMs, logger } = options
  if (fromNumber === undefined && messagingServiceSid === undefined) {
    throw new Error('Twilio sender needs a from number or a messaging service SID')
  }
  const client = twilio(accountSid, authToken, { httpClient: new TwilioHttpClient(baseUrl, timeoutMs) })

  function scrub (text: string): string {
    return maskPhonesIn(authToken === '' ? text : text.split(authToken).join('[redacted]'))
  }

  async function attempt (channel: Channel, to: string, send: () => Promise<{ sid?: string | null, status?: string | null }>): Promise<DeliveryReceipt> {
    const what = channel === 'sms' ? 'SMS' : 'call'
    let timer: NodeJS.Timeout | undefined
    try {
      // Backstop for anything the per-request abort signal cannot reach (work before or after the HTTP exchange).
      const deadline = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error('deadline'), { code: 'ETIMEDOUT' })), timeoutMs + 250)
      })
      const result = await Promise.race([send(), deadline])
      const receipt = { providerId: result.sid ?? null, status: result.status ?? 'queued' }
      logger?.info({ provider: 'twilio', channel, to: maskPhone(to), providerId: receipt.providerId, status: receipt.status }, `Twilio ${what} accepted`)
      return receipt
    } catch (err) {
      const failure = classify(err)
      const message = scrub(`Twilio ${what} to ${maskPhone(to)} failed (${failure.reason}): ${failure.detail}`)
      const log = failure.reason === 'provider_error' ? logger?.error : logger?.warn
      log?.call(logger, { provider: 'twilio', channel, to: maskPhone(to), reason: failure.reason, providerCode: failure.providerCode, httpStatus: failure.httpStatus }, message)
      throw new DeliveryError(message, failure.reason, failure.providerCode)
    } finally {
      clearTimeout(timer)
    }
  }

  return {
    provider: 'twilio',

    sendSms (to: string, body: string, opts: SendOptions = {}) {
      return attempt('sms', to, () => client.messages.create({
        to,
        body,
        // A messaging service picks the best sender itself (number pools, geo-matching), so it wins when both are set.
        ...(messagingServiceSid !== undefined ? { messagingServiceSid } : { from: fromNumber as string }),
        ...(opts.statusCallback !== undefined ? { statusCallback: opts.statusCallback } : {})
      }))
    },

    async call (to: string, speech: string, opts: SendOptions = {}) {
      if (fromNumber === undefined) {
        const message = `Twilio call to ${maskPhone(to)} failed (provider_error): voice needs TWILIO_FROM_NUMBER; a messaging service cannot place calls`
        logger?.error({ provider: 'twilio', channel: 'voice', to: maskPhone(to), reason: 'provider_error' }, message)
        throw new DeliveryError(message, 'provider_error')
      }
      const response = new twilio.twiml.VoiceResponse()
      response.say(speech)
      return attempt('voice', to, () => client.calls.create({
        to,
        from: fromNumber,
        twiml: response.toString(),
        ...(opts.statusCallback !== undefined ? { statusCallback: opts.statusCallback } : {})
      }))
    }
  }
}

/**
 * Checks X-Twilio-Signature on a webhook (contract section 7). `url` is the full
 * URL Twilio was told to call (PUBLIC_BASE_URL + path, with query), `params` the
 * parsed form body. Malformed input answers false instead of throwing, so a
 * forged request can never turn into a 500.
 */
export function verifyTwilioSignature (authToken: string, signature: string | undefined, url: string, params: Record<string, unknown> | undefined): boolean {
  if (authToken === '' || typeof signature !== 'string' || signature === '') return false
  try {
    return twilio.validateRequest(authToken, signature, url, params ?? {})
  } catch {
    return false
  }
}
