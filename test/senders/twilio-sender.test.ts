import { inspect } from 'node:util'
import t from 'tap'
import { DeliveryError, type SenderLogger } from '../../src/senders/message-sender.js'
import { codeSms, codeSpeech } from '../../src/senders/messages.js'
import { createTwilioSender, rewriteTwilioUrl } from '../../src/senders/twilio-sender.js'
import { startFakeTwilio, type FakeTwilio } from '../helpers/fake-twilio.js'

const TO = '+15551234567'
const CALLBACK = 'https://auth.example.com/v1/webhooks/twilio/status'

function memoryLogger () {
  const lines: Array<{ level: string, obj: object, msg?: string | undefined }> = []
  const log = (level: string) => (obj: object, msg?: string) => { lines.push({ level, obj, msg }) }
  return { lines, info: log('info'), warn: log('warn'), error: log('error') } satisfies SenderLogger & { lines: unknown[] }
}

function senderFor (fake: FakeTwilio, overrides: Partial<Parameters<typeof createTwilioSender>[0]> = {}) {
  return createTwilioSender({
    accountSid: fake.accountSid,
    authToken: fake.authToken,
    fromNumber: fake.fromNumber,
    baseUrl: fake.baseUrl,
    timeoutMs: 2000,
    ...overrides
  })
}

/** Everything an error could leak through: message, stack, own properties, util.inspect. */
function everythingIn (err: unknown): string {
  const e = err as Error
  return [e.message, e.stack, JSON.stringify(err), inspect(err, { depth: 10, showHidden: true })].join('\n')
}

async function rejection (promise: Promise<unknown>): Promise<DeliveryError> {
  try {
    await promise
  } catch (err) {
    if (err instanceof DeliveryError) return err
    throw err
  }
  throw new Error('expected a DeliveryError, the promise resolved')
}

t.test('SMS arrives as Twilio expects it: form fields and Basic auth', async (t) => {
  const fake = await startFakeTwilio(t)
  const receipt = await senderFor(fake).sendSms(TO, codeSms('123456', 'app.studiopro.com'), { statusCallback: CALLBACK })

  t.match(receipt, { providerId: /^SM[0-9a-f]{32}$/, status: 'queued' })
  t.equal(fake.requests.length, 1)
  const [request] = fake.requests
  t.match(request, {
    kind: 'sms',
    to: TO,
    from: fake.fromNumber,
    body: codeSms('123456', 'app.studiopro.com'),
    statusCallback: CALLBACK,
    auth: { username: fake.accountSid, password: fake.authToken },
    answer: 201,
    sid: receipt.providerId
  })
  t.notOk(request?.messagingServiceSid)
  t.same(fake.messagesTo(TO), [codeSms('123456', 'app.studiopro.com')])
  t.equal(fake.lastCodeFor(TO), '123456')
})

t.test('without a status callback no StatusCallback field is sent', async (t) => {
  const fake = await startFakeTwilio(t)
  await senderFor(fake).sendSms(TO, 'hello')
  t.notOk('StatusCallback' in (fake.requests[0]?.params ?? {}))
})

t.test('a messaging service replaces the from number for SMS', async (t) => {
  const fake = await startFakeTwilio(t)
  const messagingServiceSid = 'MG' + 'a'.repeat(32)
  const sender = senderFor(fake, { fromNumber: undefined, messagingServiceSid })
  await sender.sendSms(TO, codeSms('222333'))
  t.match(fake.requests[0], { kind: 'sms', messagingServiceSid, answer: 201 })
  t.notOk('From' in (fake.requests[0]?.params ?? {}), 'no From when the service picks the sender')

  const both = senderFor(fake, { messagingServiceSid })
  await both.sendSms(TO, codeSms('222333'))
  t.match(fake.requests[1], { messagingServiceSid })
  t.notOk('From' in (fake.requests[1]?.params ?? {}), 'the service wins when both are configured')
})

t.test('a call speaks the code digit by digit, twice, in inline TwiML', async (t) => {
  const fake = await startFakeTwilio(t)
  const receipt = await senderFor(fake).call(TO, codeSpeech('123456'), { statusCallback: CALLBACK })

  t.match(receipt, { providerId: /^CA[0-9a-f]{32}$/, status: 'queued' })
  const [request] = fake.requests
  t.match(request, { kind: 'call', to: TO, from: fake.fromNumber, statusCallback: CALLBACK, auth: { username: fake.accountSid, password: fake.authToken } })
  const twiml = request?.twiml ?? ''
  t.match(twiml, /<Response><Say>[^<]*<\/Say><\/Response>$/)
  const said = twiml.match(/<Say>([^<]*)<\/Say>/)?.[1] ?? ''
  t.equal(said.match(/1, 2, 3, 4, 5, 6/g)?.length, 2, 'the digits are read one by one, twice')
  t.notMatch(said, /123456/)
  t.equal(fake.lastCodeFor(TO), '123456')
})

t.test('speech is escaped into the TwiML, never interpreted', async (t) => {
  const fake = await startFakeTwilio(t)
  await senderFor(fake).call(TO, 'a </Say><Play>http://evil</Play> & b')
  const twiml = fake.requests[0]?.twiml ?? ''
  t.notMatch(twiml, /<Play>/)
  t.match(twiml, /&lt;\/Say&gt;&lt;Play&gt;/)
  t.match(twiml, /&amp; b/)
})

t.test('voice without a from number fails clearly and sends nothing', async (t) => {
  const fake = await startFakeTwilio(t)
  const sender = senderFor(fake, { fromNumber: undefined, messagingServiceSid: 'MG' + 'b'.repeat(32) })
  const err = await rejection(sender.call(TO, codeSpeech('123456')))
  t.equal(err.reason, 'provider_error')
  t.match(err.message, /TWILIO_FROM_NUMBER/)
  t.notMatch(err.message, /5551234567/)
  t.equal(fake.requests.length, 0)
})

t.test('the sender refuses to start with neither from number nor messaging service', async (t) => {
  t.throws(() => createTwilioSender({ accountSid: 'AC' + '0'.repeat(32), authToken: 'x', timeoutMs: 1000 }), /from number or a messaging service/)
})

t.test('HTTP failures map to reasons', async (t) => {
  const fake = await startFakeTwilio(t)
  const sender = senderFor(fake)
  const cases = [
    { failure: { status: 500 }, reason: 'provider_error', code: 20500 },
    { failure: { status: 503 }, reason: 'provider_error', code: 20503 },
    { failure: { status: 429 }, reason: 'rate_limited', code: 20429 },
    { failure: { status: 400, code: 14107, message: 'Message rate limit exceeded' }, reason: 'rate_limited', code: 14107 },
    { failure: { status: 400 }, reason: 'rejected', code: 21211 },
    { failure: { status: 400, code: 21610, message: 'Attempt to send to unsubscribed recipient' }, reason: 'rejected', code: 21610 },
    { failure: { status: 404 }, reason: 'provider_error', code: 20404 }
  ] as const
  for (const { failure, reason, code } of cases) {
    fake.failNext(1, failure)
    const err = await rejection(sender.sendSms(TO, codeSms('123456')))
    t.equal(err.reason, reason, `HTTP ${failure.status} / ${code}`)
    t.equal(err.providerCode, code)
    t.equal(err.name, 'DeliveryError')
    t.match(err.message, new RegExp(`HTTP ${failure.status}`))
  }
  t.equal(fake.messagesTo(TO).length, 0, 'failed sends do not count as delivered')
  fake.failNext(1, { status: 500 })
  t.equal((await rejection(sender.call(TO, codeSpeech('123456')))).reason, 'provider_error', 'calls map the same way')
})

t.test('Twilio\'s own error text is kept, with the number in it masked', async (t) => {
  const fake = await startFakeTwilio(t)
  fake.failNext(1, { status: 400, code: 21211, message: `The 'To' number ${TO} is not a valid phone number.` })
  const err = await rejection(senderFor(fake).sendSms(TO, 'hi'))
  t.match(err.message, /is not a valid phone number/)
  t.notMatch(everythingIn(err), /5551234567/)
  t.match(err.message, /67/)
})

t.test('bad credentials are a provider error and never leak the token', async (t) => {
  const fake = await startFakeTwilio(t)
  const wrongToken = 'wrong-token-' + 'z'.repeat(20)
  const logger = memoryLogger()
  const err = await rejection(senderFor(fake, { authToken: wrongToken, logger }).sendSms(TO, 'hi'))
  t.equal(err.reason, 'provider_error')
  t.equal(err.providerCode, 20003)
  t.equal(fake.requests[0]?.answer, 401)
  const basic = Buffer.from(`${fake.accountSid}:${wrongToken}`).toString('base64')
  for (const text of [everythingIn(err), JSON.stringify(logger.lines)]) {
    t.notMatch(text, wrongToken)
    t.notMatch(text, basic)
  }
})

t.test('a hung Twilio yields a timeout within about timeoutMs', async (t) => {
  const fake = await startFakeTwilio(t)
  const sender = senderFor(fake, { timeoutMs: 300 })
  for (const send of [() => sender.sendSms(TO, 'hi'), () => sender.call(TO, 'hi')]) {
    fake.failNext(1, 'hang')
    const started = Date.now()
    const err = await rejection(send())
    const elapsed = Date.now() - started
    t.equal(err.reason, 'timeout')
    t.ok(elapsed < 3000, `gave up after ${elapsed} ms`)
    t.ok(elapsed >= 250, 'and not before the timeout')
  }
  t.same(fake.requests.map((r) => r.answer), ['hang', 'hang'])
})

t.test('a dropped connection or an unreachable Twilio is a provider error', async (t) => {
  const fake = await startFakeTwilio(t)
  fake.failNext(1, 'drop')
  t.equal((await rejection(senderFor(fake).sendSms(TO, 'hi'))).reason, 'provider_error')

  const gone = await startFakeTwilio()
  await gone.close()
  const err = await rejection(senderFor(gone, { timeoutMs: 1000 }).sendSms(TO, 'hi'))
  t.equal(err.reason, 'provider_error')
  t.match(err.message, /ECONNREFUSED/)
})

t.test('no failure mode puts the auth token or the full number in an error or log', async (t) => {
  const fake = await startFakeTwilio(t)
  const logger = memoryLogger()
  const sender = senderFor(fake, { timeoutMs: 300, logger })
  const basic = Buffer.from(`${fake.accountSid}:${fake.authToken}`).toString('base64')
  const failures = [{ status: 500 }, { status: 429 }, { status: 400, message: `bad ${TO} token ${fake.authToken}` }, 'hang', 'drop'] as const
  for (const failure of failures) {
    fake.failNext(1, failure)
    const err = await rejection(sender.sendSms(TO, 'hi'))
    const text = everythingIn(err)
    t.notMatch(text, fake.authToken, `${JSON.stringify(failure)}: no token`)
    t.notMatch(text, basic, `${JSON.stringify(failure)}: no Basic credentials`)
    t.notMatch(text, /5551234567/, `${JSON.stringify(failure)}: no full number`)
    t.equal(err.cause, undefined, 'the SDK error (with its request config) is not chained')
  }
  const logs = JSON.stringify(logger.lines)
  t.notMatch(logs, fake.authToken)
  t.notMatch(logs, basic)
  t.notMatch(logs, /5551234567/)
  t.ok(logger.lines.some((l) => l.level === 'error'), 'provider errors log at error')
  t.ok(logger.lines.some((l) => l.level === 'warn'), 'rate limits and rejections log at warn')
})

t.test('success is logged with the masked number and the provider id', async (t) => {
  const fake = await startFakeTwilio(t)
  const logger = memoryLogger()
  const receipt = await senderFor(fake, { logger }).sendSms(TO, codeSms('123456'))
  t.equal(logger.lines.length, 1)
  t.match(logger.lines[0], { level: 'info', obj: { provider: 'twilio', channel: 'sms', providerId: receipt.providerId } })
  const logs = JSON.stringify(logger.lines)
  t.notMatch(logs, /5551234567/)
  t.notMatch(logs, /123456/, 'the code is not logged')
})

t.test('TWILIO_BASE_URL moves every Twilio host, keeping path and query', async (t) => {
  t.equal(rewriteTwilioUrl('https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json', 'http://127.0.0.1:9999'),
    'http://127.0.0.1:9999/2010-04-01/Accounts/AC1/Messages.json')
  t.equal(rewriteTwilioUrl('https://api.dublin.ie1.twilio.com/2010-04-01/Calls.json?PageSize=5', 'https://proxy.internal/twilio/'),
    'https://proxy.internal/twilio/2010-04-01/Calls.json?PageSize=5', 'regional hosts and a base path')
  t.equal(rewriteTwilioUrl('https://verify.twilio.com/v2/Services', 'http://127.0.0.1:1'), 'http://127.0.0.1:1/v2/Services')
  t.equal(rewriteTwilioUrl('https://example.com/x', 'http://127.0.0.1:1'), 'https://example.com/x', 'other hosts are left alone')
  t.equal(rewriteTwilioUrl('https://nottwilio.com/x', 'http://127.0.0.1:1'), 'https://nottwilio.com/x')
})

t.test('TWILIO_REGION in the environment does not bypass the base URL', async (t) => {
  const fake = await startFakeTwilio(t)
  const saved = process.env.TWILIO_REGION
  process.env.TWILIO_REGION = 'ie1'
  t.teardown(() => { if (saved === undefined) delete process.env.TWILIO_REGION; else process.env.TWILIO_REGION = saved })
  await senderFor(fake).sendSms(TO, 'hi')
  t.equal(fake.requests.length, 1)
})
