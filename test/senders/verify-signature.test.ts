import { createHmac } from 'node:crypto'
import t from 'tap'
import { verifyTwilioSignature } from '../../src/senders/twilio-sender.js'
import { startFakeTwilio } from '../helpers/fake-twilio.js'
import { createTwilioSender } from '../../src/senders/twilio-sender.js'

const TOKEN = '9f2c1d7e8a4b4c0e9d1f2a3b4c5d6e7f'
const URL_ = 'https://auth.example.com/v1/webhooks/twilio/status'
const PARAMS = {
  MessageSid: 'SM' + '1'.repeat(32),
  MessageStatus: 'delivered',
  AccountSid: 'AC' + '2'.repeat(32),
  To: '+15551234567',
  From: '+15005550006',
  ApiVersion: '2010-04-01'
}

/**
 * Twilio's documented algorithm, written out independently of the SDK: take the
 * full URL, append each POST field's name and value in name order, HMAC-SHA1
 * with the auth token as key, base64.
 */
function sign (token: string, url: string, params: Record<string, string>): string {
  let data = url
  for (const key of Object.keys(params).sort()) data += key + params[key]
  return createHmac('sha1', token).update(data).digest('base64')
}

t.test('a correctly signed callback is accepted', async (t) => {
  t.ok(verifyTwilioSignature(TOKEN, sign(TOKEN, URL_, PARAMS), URL_, PARAMS))
  const withQuery = `${URL_}?attempt=2`
  t.ok(verifyTwilioSignature(TOKEN, sign(TOKEN, withQuery, PARAMS), withQuery, PARAMS), 'the query string is part of what is signed')
  t.ok(verifyTwilioSignature(TOKEN, sign(TOKEN, URL_, {}), URL_, {}), 'no fields at all')
})

t.test('any tampering is rejected', async (t) => {
  const signature = sign(TOKEN, URL_, PARAMS)
  t.notOk(verifyTwilioSignature(TOKEN, signature, URL_, { ...PARAMS, MessageStatus: 'failed' }), 'a changed field')
  t.notOk(verifyTwilioSignature(TOKEN, signature, URL_, { ...PARAMS, ErrorCode: '30003' }), 'an added field')
  const { From: _from, ...withoutFrom } = PARAMS
  t.notOk(verifyTwilioSignature(TOKEN, signature, URL_, withoutFrom), 'a removed field')
  t.notOk(verifyTwilioSignature(TOKEN, signature, 'https://evil.example.com/v1/webhooks/twilio/status', PARAMS), 'another URL')
  t.notOk(verifyTwilioSignature('another-token', signature, URL_, PARAMS), 'another account\'s token')
  t.notOk(verifyTwilioSignature(TOKEN, signature.slice(0, -2) + 'AA', URL_, PARAMS), 'a changed signature')
})

t.test('missing or malformed input answers false instead of throwing', async (t) => {
  const signature = sign(TOKEN, URL_, PARAMS)
  t.notOk(verifyTwilioSignature(TOKEN, undefined, URL_, PARAMS))
  t.notOk(verifyTwilioSignature(TOKEN, '', URL_, PARAMS))
  t.notOk(verifyTwilioSignature('', sign('', URL_, PARAMS), URL_, PARAMS), 'an empty token never validates')
  t.notOk(verifyTwilioSignature(TOKEN, signature, 'not a url', PARAMS))
  t.notOk(verifyTwilioSignature(TOKEN, signature, URL_, undefined))
  t.notOk(verifyTwilioSignature(TOKEN, 'x'.repeat(500), URL_, PARAMS))
})

t.test('the fake\'s signed status callback verifies, end to end', async (t) => {
  const fake = await startFakeTwilio(t)
  const sender = createTwilioSender({ accountSid: fake.accountSid, authToken: fake.authToken, fromNumber: fake.fromNumber, baseUrl: fake.baseUrl, timeoutMs: 2000 })
  const receipt = await sender.sendSms('+15551234567', 'hi', { statusCallback: URL_ })
  const callback = fake.signedStatusCallback(receipt.providerId as string, 'delivered')
  t.equal(callback.url, URL_)
  t.equal(callback.path, '/v1/webhooks/twilio/status')
  t.match(callback.params, { MessageSid: receipt.providerId, MessageStatus: 'delivered', To: '+15551234567' })
  t.equal(callback.headers['x-twilio-signature'], sign(fake.authToken, URL_, callback.params))
  const parsed = Object.fromEntries(new URLSearchParams(callback.payload))
  t.ok(verifyTwilioSignature(fake.authToken, callback.headers['x-twilio-signature'], URL_, parsed))

  const forged = fake.signedStatusCallback(receipt.providerId as string, 'delivered', { authToken: 'not-the-token' })
  t.notOk(verifyTwilioSignature(fake.authToken, forged.headers['x-twilio-signature'], URL_, forged.params))
})
