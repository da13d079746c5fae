import t from 'tap'
import { extractCode, startFakeTwilio } from '../helpers/fake-twilio.js'

const TO = '+15551234567'

async function post (fake: { baseUrl: string, accountSid: string }, kind: 'Messages' | 'Calls', fields: Record<string, string>, auth?: string) {
  const res = await fetch(`${fake.baseUrl}/2010-04-01/Accounts/${fake.accountSid}/${kind}.json`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(auth !== undefined ? { authorization: auth } : {}) },
    body: new URLSearchParams(fields)
  })
  return { status: res.status, body: await res.json() as Record<string, unknown> }
}

function basic (user: string, pass: string) {
  return 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64')
}

t.test('wrong or missing credentials get 401 in Twilio\'s error shape, and are recorded', async (t) => {
  const fake = await startFakeTwilio(t)
  for (const auth of [undefined, basic(fake.accountSid, 'nope'), basic('AC' + '0'.repeat(32), fake.authToken), 'Bearer x']) {
    const res = await post(fake, 'Messages', { To: TO, From: fake.fromNumber, Body: 'hi' }, auth)
    t.equal(res.status, 401)
    t.same(res.body, { code: 20003, message: 'Authenticate', more_info: 'https://www.twilio.com/docs/errors/20003', status: 401 })
  }
  t.equal(fake.requests.length, 4)
  t.equal(fake.requests[0]?.auth, null)
  t.same(fake.requests[1]?.auth, { username: fake.accountSid, password: 'nope' })
  t.same(fake.messagesTo(TO), [], 'rejected requests are not messages')
})

t.test('accepted messages and calls answer Twilio-shaped resources', async (t) => {
  const fake = await startFakeTwilio(t)
  const auth = basic(fake.accountSid, fake.authToken)
  const sms = await post(fake, 'Messages', { To: TO, From: fake.fromNumber, Body: 'hi' }, auth)
  t.equal(sms.status, 201)
  t.match(sms.body, { sid: /^SM[0-9a-f]{32}$/, account_sid: fake.accountSid, status: 'queued', to: TO, from: fake.fromNumber, body: 'hi', direction: 'outbound-api' })
  const call = await post(fake, 'Calls', { To: TO, From: fake.fromNumber, Twiml: '<Response><Say>hi</Say></Response>' }, auth)
  t.equal(call.status, 201)
  t.match(call.body, { sid: /^CA[0-9a-f]{32}$/, status: 'queued', to: TO, from: fake.fromNumber })
  t.equal((call.body.sid as string).length, 34)
})

t.test('Twilio\'s own validation of the fields is emulated', async (t) => {
  const fake = await startFakeTwilio(t)
  const auth = basic(fake.accountSid, fake.authToken)
  t.match(await post(fake, 'Messages', { To: TO, From: fake.fromNumber }, auth), { status: 400, body: { code: 21602 } })
  t.match(await post(fake, 'Messages', { To: TO, Body: 'x' }, auth), { status: 400, body: { code: 21603 } })
  t.match(await post(fake, 'Messages', { To: '5551234567', From: fake.fromNumber, Body: 'x' }, auth), { status: 400, body: { code: 21211 } })
  t.match(await post(fake, 'Calls', { To: TO, From: fake.fromNumber }, auth), { status: 400, body: { code: 21205 } })
  t.match(await post(fake, 'Calls', { To: TO, Twiml: '<Response/>' }, auth), { status: 400, body: { code: 21213 } })
  const res = await fetch(`${fake.baseUrl}/2010-04-01/Accounts/${fake.accountSid}/Recordings.json`)
  t.equal(res.status, 404)
  const other = await fetch(`${fake.baseUrl}/2010-04-01/Accounts/${'AC' + '0'.repeat(32)}/Messages.json`, { method: 'POST', headers: { authorization: auth } })
  t.equal(other.status, 404, 'another account\'s path')
})

t.test('failNext fails exactly n requests, optionally of one kind only', async (t) => {
  const fake = await startFakeTwilio(t)
  const auth = basic(fake.accountSid, fake.authToken)
  fake.failNext(2, { status: 503 })
  fake.failNext(1, { status: 400, code: 21610, message: 'unsubscribed' }, 'call')
  t.match(await post(fake, 'Calls', { To: TO, From: fake.fromNumber, Twiml: '<Response/>' }, auth), { status: 503, body: { code: 20503 } })
  t.match(await post(fake, 'Messages', { To: TO, From: fake.fromNumber, Body: '111111' }, auth), { status: 503 })
  t.match(await post(fake, 'Messages', { To: TO, From: fake.fromNumber, Body: '222222' }, auth), { status: 201 }, 'the call-only failure waits for a call')
  t.match(await post(fake, 'Calls', { To: TO, From: fake.fromNumber, Twiml: '<Response/>' }, auth), { status: 400, body: { code: 21610, message: 'unsubscribed' } })
  t.match(await post(fake, 'Messages', { To: TO, From: fake.fromNumber, Body: '333333' }, auth), { status: 201 })
  t.same(fake.requests.map((r) => r.answer), [503, 503, 201, 400, 201])
  t.same(fake.messagesTo(TO), ['222222', '333333'])
  t.throws(() => fake.failNext(0, { status: 500 }))
})

t.test('lastCodeFor reads the latest accepted SMS or call to that number', async (t) => {
  const fake = await startFakeTwilio(t)
  const auth = basic(fake.accountSid, fake.authToken)
  t.equal(fake.lastCodeFor(TO), undefined)
  await post(fake, 'Messages', { To: TO, From: fake.fromNumber, Body: 'Your Studio Pro verification code is 123456. It expires in 10 minutes.\n@app.example #123456' }, auth)
  t.equal(fake.lastCodeFor(TO), '123456')
  await post(fake, 'Calls', { To: TO, From: fake.fromNumber, Twiml: '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Your code is 0, 4, 2, 9, 1, 7. Again, your code is 0, 4, 2, 9, 1, 7.</Say></Response>' }, auth)
  t.equal(fake.lastCodeFor(TO), '042917')
  fake.failNext(1, { status: 500 })
  await post(fake, 'Messages', { To: TO, From: fake.fromNumber, Body: 'code 999999' }, auth)
  t.equal(fake.lastCodeFor(TO), '042917', 'a failed send is not the latest code')
  t.equal(fake.lastCodeFor('+15550000000'), undefined, 'other numbers are separate')
  t.same(fake.callsTo(TO).length, 1)
})

t.test('extractCode', async (t) => {
  t.equal(extractCode('code is 123456.'), '123456')
  t.equal(extractCode('1, 2, 3, 4, 5, 6'), '123456')
  t.equal(extractCode('1234567'), undefined, 'seven digits are not a code')
  t.equal(extractCode('1, 2, 3, 4, 5, 6, 7'), undefined)
  t.equal(extractCode('<Say>1 2 3 4 5 6</Say>'), '123456')
  t.equal(extractCode('Studio Pro: a phone was added'), undefined)
})

t.test('a hung request is released by reset and close, and close is idempotent', async (t) => {
  const fake = await startFakeTwilio()
  const auth = basic(fake.accountSid, fake.authToken)
  fake.failNext(1, 'hang')
  const hung = post(fake, 'Messages', { To: TO, From: fake.fromNumber, Body: 'x' }, auth).then(() => 'answered', () => 'dropped')
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(fake.requests[0]?.answer, 'hang')
  fake.reset()
  t.equal(await hung, 'dropped')
  t.equal(fake.requests.length, 0)

  fake.failNext(1, 'hang')
  const again = post(fake, 'Messages', { To: TO, From: fake.fromNumber, Body: 'x' }, auth).then(() => 'answered', () => 'dropped')
  await new Promise((resolve) => setTimeout(resolve, 100))
  await Promise.all([fake.close(), fake.close()])
  t.equal(await again, 'dropped')
})

t.test('env is ready to merge into the service\'s environment', async (t) => {
  const fake = await startFakeTwilio(t, { accountSid: 'AC' + 'c'.repeat(32), authToken: 'token', fromNumber: '+15005550001' })
  t.same(fake.env, {
    SMS_PROVIDER: 'twilio',
    TWILIO_ACCOUNT_SID: 'AC' + 'c'.repeat(32),
    TWILIO_AUTH_TOKEN: 'token',
    TWILIO_FROM_NUMBER: '+15005550001',
    TWILIO_BASE_URL: fake.baseUrl
  })
  t.match(fake.baseUrl, /^http:\/\/127\.0\.0\.1:\d+$/)
})
