import t from 'tap'
import { parseConfig } from '../../src/lib/config.js'
import { createSender } from '../../src/senders/create-sender.js'
import { codeSms } from '../../src/senders/messages.js'
import { startFakeTwilio } from '../helpers/fake-twilio.js'

const quiet = { info () {}, warn () {}, error () {} }

t.test('console when SMS_PROVIDER=console, with a warning', async (t) => {
  const warnings: string[] = []
  const sender = createSender(parseConfig({ SMS_PROVIDER: 'console' }), { ...quiet, warn: (_o, msg) => { warnings.push(msg ?? '') } })
  t.equal(sender.provider, 'console')
  t.match(await sender.sendSms('+15551234567', 'hi'), { providerId: /^console-/, status: 'sent' })
  t.match(warnings, [/development only/])
})

t.test('twilio from the configuration reaches TWILIO_BASE_URL with the configured credentials', async (t) => {
  const fake = await startFakeTwilio(t)
  const config = parseConfig({ ...fake.env, TWILIO_TIMEOUT_MS: '1000' })
  const sender = createSender(config, quiet)
  t.equal(sender.provider, 'twilio')
  await sender.sendSms('+15551234567', codeSms('123456'))
  t.match(fake.requests[0], { kind: 'sms', from: fake.fromNumber, auth: { username: fake.accountSid, password: fake.authToken } })
  t.equal(fake.lastCodeFor('+15551234567'), '123456')
})

t.test('a messaging service configuration is passed through', async (t) => {
  const fake = await startFakeTwilio(t)
  const { TWILIO_FROM_NUMBER: _from, ...env } = fake.env
  const sid = 'MG' + 'd'.repeat(32)
  const sender = createSender(parseConfig({ ...env, TWILIO_MESSAGING_SERVICE_SID: sid }), quiet)
  await sender.sendSms('+15551234567', 'hi')
  t.match(fake.requests[0], { messagingServiceSid: sid })
})

t.test('a hand-built twilio config without credentials fails at start, not at the first login', async (t) => {
  const config = { ...parseConfig({ SMS_PROVIDER: 'console' }), SMS_PROVIDER: 'twilio' as const }
  t.throws(() => createSender(config, quiet), /TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN/)
})

t.test('a hand-built twilio config without a sender number fails at start too, though the SDK is loaded later', async (t) => {
  const fake = await startFakeTwilio(t)
  const config = { ...parseConfig({ ...fake.env }), TWILIO_FROM_NUMBER: undefined, TWILIO_MESSAGING_SERVICE_SID: undefined }
  t.throws(() => createSender(config, quiet), /from number or a messaging service SID/)
})
