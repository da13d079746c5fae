// A stand-in for Twilio's REST API, driven by the real twilio SDK through
// TWILIO_BASE_URL. It speaks real HTTP on 127.0.0.1 so every layer the
// service uses (SDK, RequestClient, axios, sockets, timeouts) is exercised.
//
//   const twilio = await startFakeTwilio(t)            // closed at t's teardown
//   const app = await buildApp({ ...twilio.env })      // TWILIO_* + SMS_PROVIDER
//   ...trigger a login...
//   const code = twilio.lastCodeFor('+15551234567')
//   twilio.failNext(1, { status: 500 })                // or 'hang', or 'drop'
import { createHmac, randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

export type FakeTwilioKind = 'sms' | 'call'

export interface FakeTwilioRequest {
  kind: FakeTwilioKind
  to: string
  from?: string
  body?: string
  twiml?: string
  messagingServiceSid?: string
  statusCallback?: string
  /** The Basic credentials that arrived, null when none did. */
  auth: { username: string, password: string } | null
  /** What the fake answered: an HTTP status, or 'hang' / 'drop' for the failure modes. */
  answer: number | 'hang' | 'drop'
  /** The SID handed out when the request was accepted (201), else null. */
  sid: string | null
  /** Every form field as sent, for assertions the named fields don't cover. */
  params: Record<string, string>
  receivedAt: Date
}

/**
 * How the next request fails: an HTTP error with Twilio's JSON error body,
 * 'hang' (accept and never answer: timeouts), or 'drop' (destroy the
 * connection: network errors).
 */
export type FakeTwilioFailure = { status: number, code?: number, message?: string } | 'hang' | 'drop'

export interface SignedCallback {
  /** The full callback URL, as Twilio signs it. */
  url: string
  /** Path and query of `url`, for `app.inject({ url: path })`. */
  path: string
  headers: { 'content-type': string, 'x-twilio-signature': string }
  /** The url-encoded form body. */
  payload: string
  params: Record<string, string>
}

export interface FakeTwilio {
  /** Origin to put in TWILIO_BASE_URL. */
  readonly baseUrl: string
  readonly accountSid: string
  readonly authToken: string
  readonly fromNumber: string
  /** Ready-made environment for the service under test. */
  readonly env: {
    SMS_PROVIDER: 'twilio'
    TWILIO_ACCOUNT_SID: string
    TWILIO_AUTH_TOKEN: string
    TWILIO_FROM_NUMBER: string
    TWILIO_BASE_URL: string
  }
  /** Every request to Messages.json and Calls.json, accepted or not, oldest first. */
  readonly requests: FakeTwilioRequest[]
  /** Bodies of the accepted SMS to `number`, oldest first. */
  messagesTo (number: string): string[]
  /** TwiML of the accepted calls to `number`, oldest first. */
  callsTo (number: string): string[]
  /** The 6-digit code in the latest accepted SMS or call to `number`. */
  lastCodeFor (number: string): string | undefined
  /** Makes the next `n` requests (of `kind` only, if given) fail; credentials are checked first. */
  failNext (n: number, failure: FakeTwilioFailure, kind?: FakeTwilioKind): void
  /** Forgets requests and pending failures, and lets go of hung requests. */
  reset (): void
  /** A status callback for an accepted message or call, signed the way Twilio signs it. */
  signedStatusCallback (sid: string, status: string, options?: { url?: string, params?: Record<string, string>, authToken?: string }): SignedCallback
  close (): Promise<void>
}

/**
 * Twilio's webhook signature: HMAC-SHA1, keyed with the auth token, of the full
 * URL followed by every POST field name and value, sorted by name; base64.
 */
export function signTwilioRequest (authToken: string, url: string, params: Record<string, string>): string {
  const data = Object.keys(params).sort().reduce((acc, key) => acc + key + params[key], url)
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64')
}

/** Finds a 6-digit code in an SMS body ("123456") or TwiML ("1, 2, 3, 4, 5, 6"). */
export function extractCode (text: string): string | undefined {
  const plain = text.replace(/<[^>]*>/g, ' ')
  const whole = plain.match(/(?<!\d)\d{6}(?!\d)/)
  if (whole !== null) return whole[0]
  const spoken = plain.match(/(?<!\d[\s,]*)\d(?:[\s,]+\d){5}(?![\s,]*\d)/)
  return spoken === null ? undefined : spoken[0].replace(/\D/g, '')
}

function newSid (prefix: string): string {
  return prefix + randomBytes(16).toString('hex')
}

interface Teardown { teardown (fn: () => unknown): void }

interface Accepted { kind: FakeTwilioKind, sid: string, to: string, from?: string, statusCallback?: string }

const E164 = /^\+[1-9]\d{6,14}$/

export async function startFakeTwilio (t?: Teardown, options: { accountSid?: string, authToken?: string, fromNumber?: string } = {}): Promise<FakeTwilio> {
  const accountSid = options.accountSid ?? newSid('AC')
  const authToken = options.authToken ?? randomBytes(16).toString('hex')
  // Twilio's magic test "From" number: valid everywhere, owned by no one.
  const fromNumber = options.fromNumber ?? '+15005550006'

  const requests: FakeTwilioRequest[] = []
  const failures: Array<{ failure: FakeTwilioFailure, kind?: FakeTwilioKind }> = []
  const accepted = new Map<string, Accepted>()
  const hung = new Set<ServerResponse>()
  const sockets = new Set<Socket>()

  function sendJson (res: ServerResponse, status: number, body: unknown) {
    const text = JSON.stringify(body)
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  }

  function sendError (res: ServerResponse, status: number, code: number, message: string) {
    sendJson(res, status, { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status })
  }

  function defaultError (status: number): { code: number, message: string } {
    switch (status) {
      case 400: return { code: 21211, message: 'The \'To\' number is not a valid phone number.' }
      case 401: return { code: 20003, message: 'Authenticate' }
      case 403: return { code: 20003, message: 'Permission Denied' }
      case 404: return { code: 20404, message: 'The requested resource was not found' }
      case 429: return { code: 20429, message: 'Too Many Requests' }
      case 503: return { code: 20503, message: 'Service Unavailable' }
      default: return { code: status >= 500 ? 20500 : 20001, message: status >= 500 ? 'Internal Server Error' : 'Bad Request' }
    }
  }

  function parseAuth (header: string | undefined): FakeTwilioRequest['auth'] {
    const match = header?.match(/^Basic\s+(\S+)$/i)
    if (match?.[1] === undefined) return null
    const decoded = Buffer.from(match[1], 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    return colon < 0 ? null : { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
  }

  function readBody (req: IncomingMessage): Promise<string> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
      req.on('error', reject)
    })
  }

  function messageResource (sid: string, p: Record<string, string>) {
    const now = new Date().toUTCString()
    return {
      sid,
      account_sid: accountSid,
      api_version: '2010-04-01',
      body: p.Body ?? '',
      date_created: now,
      date_updated: now,
      date_sent: null,
      direction: 'outbound-api',
      error_code: null,
      error_message: null,
      from: p.From ?? null,
      messaging_service_sid: p.MessagingServiceSid ?? null,
      num_media: '0',
      num_segments: '1',
      price: null,
      price_unit: 'USD',
      status: 'queued',
      to: p.To,
      uri: `/2010-04-01/Accounts/${accountSid}/Messages/${sid}.json`,
      subresource_uris: { media: `/2010-04-01/Accounts/${accountSid}/Messages/${sid}/Media.json` }
    }
  }

  function callResource (sid: string, p: Record<string, string>) {
    const now = new Date().toUTCString()
    return {
      sid,
      account_sid: accountSid,
      api_version: '2010-04-01',
      annotation: null,
      answered_by: null,
      caller_name: null,
      date_created: now,
      date_updated: now,
      direction: 'outbound-api',
      duration: null,
      end_time: null,
      forwarded_from: null,
      from: p.From,
      from_formatted: p.From,
      group_sid: null,
      parent_call_sid: null,
      phone_number_sid: null,
      price: null,
      price_unit: 'USD',
      queue_time: '0',
      start_time: null,
      status: 'queued',
      to: p.To,
      to_formatted: p.To,
      trunk_sid: null,
      uri: `/2010-04-01/Accounts/${accountSid}/Calls/${sid}.json`,
      subresource_uris: {}
    }
  }

  /** Twilio's own checks for the fields the service sends; null when the request is acceptable. */
  function invalid (kind: FakeTwilioKind, p: Record<string, string>): { code: number, message: string } | null {
    if (kind === 'sms') {
      if (!p.To) return { code: 21604, message: 'A \'To\' phone number is required.' }
      if (!E164.test(p.To)) return { code: 21211, message: `The 'To' number ${p.To} is not a valid phone number.` }
      if (!p.From && !p.MessagingServiceSid) return { code: 21603, message: 'A \'From\' phone number is required.' }
      if (!p.Body && !p.MediaUrl && !p.ContentSid) return { code: 21602, message: 'Message body is required.' }
      if (p.Body !== undefined && p.Body.length > 1600) return { code: 21617, message: 'The concatenated message body exceeds the 1600 character limit.' }
      return null
    }
    if (!p.To) return { code: 21201, message: 'No \'To\' number is specified' }
    if (!E164.test(p.To)) return { code: 21211, message: `The 'To' number ${p.To} is not a valid phone number.` }
    if (!p.From) return { code: 21213, message: 'No \'From\' number is specified' }
    if (!p.Url && !p.Twiml && !p.ApplicationSid) return { code: 21205, message: 'Url parameter is required.' }
    if (p.Twiml !== undefined && p.Twiml.length > 4000) return { code: 13201, message: 'TwiML exceeds the 4000 character limit.' }
    return null
  }

  async function handle (req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://fake-twilio')
    const match = url.pathname.match(/^\/2010-04-01\/Accounts\/([^/]+)\/(Messages|Calls)\.json$/)
    if (match === null) {
      sendError(res, 404, 20404, `The requested resource ${url.pathname} was not found`)
      return
    }
    if (req.method !== 'POST') {
      sendError(res, 405, 20004, 'Method not allowed')
      return
    }
    const kind: FakeTwilioKind = match[2] === 'Messages' ? 'sms' : 'call'
    const params = Object.fromEntries(new URLSearchParams(await readBody(req)))
    const auth = parseAuth(req.headers.authorization)
    const record: FakeTwilioRequest = {
      kind,
      to: params.To ?? '',
      auth,
      answer: 201,
      sid: null,
      params,
      receivedAt: new Date(),
      ...(params.From !== undefined ? { from: params.From } : {}),
      ...(kind === 'sms' && params.Body !== undefined ? { body: params.Body } : {}),
      ...(kind === 'call' && params.Twiml !== undefined ? { twiml: params.Twiml } : {}),
      ...(params.MessagingServiceSid !== undefined ? { messagingServiceSid: params.MessagingServiceSid } : {}),
      ...(params.StatusCallback !== undefined ? { statusCallback: params.StatusCallback } : {})
    }
    requests.push(record)

    if (auth === null || auth.username !== accountSid || auth.password !== authToken) {
      record.answer = 401
      sendError(res, 401, 20003, 'Authenticate')
      return
    }
    if (match[1] !== accountSid) {
      record.answer = 404
      sendError(res, 404, 20404, `The requested resource ${url.pathname} was not found`)
      return
    }

    const pending = failures.findIndex((f) => f.kind === undefined || f.kind === kind)
    if (pending >= 0) {
      const [{ failure }] = failures.splice(pending, 1) as [{ failure: FakeTwilioFailure }]
      if (failure === 'hang') {
        record.answer = 'hang'
        hung.add(res)
        return
      }
      if (failure === 'drop') {
        record.answer = 'drop'
        req.socket.destroy()
        return
      }
      const fallback = defaultError(failure.status)
      record.answer = failure.status
      sendError(res, failure.status, failure.code ?? fallback.code, failure.message ?? fallback.message)
      return
    }

    const problem = invalid(kind, params)
    if (problem !== null) {
      record.answer = 400
      sendError(res, 400, problem.code, problem.message)
      return
    }

    const sid = newSid(kind === 'sms' ? 'SM' : 'CA')
    record.sid = sid
    accepted.set(sid, {
      kind,
      sid,
      to: params.To as string,
      ...(params.From !== undefined ? { from: params.From } : {}),
      ...(params.StatusCallback !== undefined ? { statusCallback: params.StatusCallback } : {})
    })
    sendJson(res, 201, kind === 'sms' ? messageResource(sid, params) : callResource(sid, params))
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, 500, 20500, `fake Twilio failed: ${String(err)}`)
    })
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo
  const baseUrl = `http://127.0.0.1:${port}`

  function releaseHung () {
    for (const res of hung) res.socket?.destroy()
    hung.clear()
  }

  function acceptedTo (number: string, kind: FakeTwilioKind): FakeTwilioRequest[] {
    return requests.filter((r) => r.kind === kind && r.to === number && r.sid !== null)
  }

  let closing: Promise<void> | undefined

  const fake: FakeTwilio = {
    baseUrl,
    accountSid,
    authToken,
    fromNumber,
    env: {
      SMS_PROVIDER: 'twilio',
      TWILIO_ACCOUNT_SID: accountSid,
      TWILIO_AUTH_TOKEN: authToken,
      TWILIO_FROM_NUMBER: fromNumber,
      TWILIO_BASE_URL: baseUrl
    },
    requests,
    messagesTo: (number) => acceptedTo(number, 'sms').map((r) => r.body ?? ''),
    callsTo: (number) => acceptedTo(number, 'call').map((r) => r.twiml ?? ''),
    lastCodeFor (number) {
      for (let i = requests.length - 1; i >= 0; i--) {
        const r = requests[i] as FakeTwilioRequest
        if (r.to !== number || r.sid === null) continue
        return extractCode(r.kind === 'sms' ? r.body ?? '' : r.twiml ?? '')
      }
      return undefined
    },
    failNext (n, failure, kind) {
      if (!Number.isInteger(n) || n < 1) throw new Error(`failNext: n must be a positive whole number, got ${n}`)
      for (let i = 0; i < n; i++) failures.push(kind === undefined ? { failure } : { failure, kind })
    },
    reset () {
      requests.length = 0
      failures.length = 0
      accepted.clear()
      releaseHung()
    },
    signedStatusCallback (sid, status, opts = {}) {
      const original = accepted.get(sid)
      if (original === undefined) throw new Error(`signedStatusCallback: no accepted message or call ${sid}`)
      const url = opts.url ?? original.statusCallback
      if (url === undefined) throw new Error(`signedStatusCallback: ${sid} was sent without a StatusCallback; pass options.url`)
      const common = { AccountSid: accountSid, ApiVersion: '2010-04-01', To: original.to, ...(original.from !== undefined ? { From: original.from } : {}) }
      const params: Record<string, string> = original.kind === 'sms'
        ? { ...common, MessageSid: sid, MessageStatus: status, SmsSid: sid, SmsStatus: status, ...opts.params }
        : { ...common, CallSid: sid, CallStatus: status, Direction: 'outbound-api', ...opts.params }
      const parsed = new URL(url)
      return {
        url,
        path: parsed.pathname + parsed.search,
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-twilio-signature': signTwilioRequest(opts.authToken ?? authToken, url, params)
        },
        payload: new URLSearchParams(params).toString(),
        params
      }
    },
    close () {
      closing ??= new Promise<void>((resolve) => {
        releaseHung()
        server.close(() => resolve())
        // Keep-alive sockets from the SDK's agent would hold close() open.
        for (const socket of sockets) socket.destroy()
      })
      return closing
    }
  }

  t?.teardown(() => fake.close())
  return fake
}
