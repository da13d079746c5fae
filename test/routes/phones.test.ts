// Contract section 2: phones and the recovery code, the Security settings page (scope `users`).
import t from 'tap'
import { PHONE_VERIFICATIONS_PER_HOUR } from '../../src/lib/limits.js'
import { buildTestApp, createUser, enrolledUser, enrolPhone, phoneNumber, startLogin } from '../helpers/app.js'
import { assertProblem } from '../helpers/problem.js'

const ctx = await buildTestApp(t)
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z$/
const RECOVERY_CODE = /^[2-9A-HJKMNP-Z]{4}(?:-[2-9A-HJKMNP-Z]{4}){4}$/
const SIX_DIGITS = /(?<!\d)\d{6}(?!\d)/

/** phoneNumber(n) masked: the country code and the last two digits. */
const masked = (n: number) => `+1 ••• ••• ••${String(100 + n).slice(-2)}`

async function start (userId: string, body: object) {
  return await ctx.request('POST', `/v1/users/${userId}/phones`, body)
}
async function verify (userId: string, verificationId: string, code: string | undefined) {
  return await ctx.request('POST', `/v1/users/${userId}/phones/verify`, { verificationId, code })
}
async function phonesOf (userId: string) {
  return (await ctx.request('GET', `/v1/users/${userId}/phones`)).json().items as Array<{ id: string, masked: string, label: string | null, primary: boolean, channel: string }>
}
/** Which of `codes` the stored recovery code hash accepts. */
async function liveRecoveryCodes (userId: string, codes: string[]) {
  const row = await ctx.db.prisma.recoveryCode.findUnique({ where: { userId } })
  if (row === null) return []
  const live: string[] = []
  for (const code of codes) if (await ctx.app.secondFactors.recoveryCode.matches(row.codeHash, code)) live.push(code)
  return live
}
/** A wrong guess you would not make by accident: differs from `code` in every digit. */
const wrong = (code: string | undefined) => (code ?? '000000').replace(/\d/g, (d) => String((Number(d) + 5) % 10))

t.test('adding a phone answers 202 and texts a code to the new number only; nothing changes until it is verified', async (t) => {
  const user = await enrolledUser(ctx, 1)
  const sent = ctx.twilio.requests.length
  const response = await start(user.id, { phoneNumber: phoneNumber(2), label: 'Studio phone' })
  t.equal(response.statusCode, 202, response.body)
  const body = response.json()
  t.same(Object.keys(body).sort(), ['channel', 'expiresAt', 'phone', 'verificationId'])
  t.type(body.verificationId, 'string')
  t.equal(body.channel, 'sms')
  t.same(body.phone, { masked: masked(2) })
  t.match(body.expiresAt, ISO)
  const ttl = Date.parse(body.expiresAt) - Date.now()
  t.ok(ttl > 9 * 60_000 && ttl <= 10 * 60_000, 'valid ten minutes')
  const newRequests = ctx.twilio.requests.slice(sent)
  t.equal(newRequests.length, 1, 'exactly one SMS went out')
  t.equal(newRequests[0]?.to, phoneNumber(2), 'to the NEW number')
  t.equal(newRequests[0]?.kind, 'sms')
  t.match(newRequests[0]?.body, /^Your Studio Pro verification code is \d{6}\. It expires in 10 minutes\./)
  t.same((await phonesOf(user.id)).map((p) => p.masked), [masked(1)], 'the account is unchanged until verification')
  t.notMatch(response.body, phoneNumber(2).slice(2), 'the number is only shown masked')
})

t.test('national form is accepted and stored as E.164, encrypted; no table holds the number in clear', async (t) => {
  const user = await createUser(ctx)
  const response = await start(user.id, { phoneNumber: '(415) 555-0167' })
  t.equal(response.statusCode, 202, response.body)
  t.same(response.json().phone, { masked: '+1 ••• ••• ••67' })
  t.equal(ctx.twilio.lastCodeFor('+14155550167')?.length, 6, 'the SMS went to the E.164 number')
  const verified = await verify(user.id, response.json().verificationId, ctx.twilio.lastCodeFor('+14155550167'))
  t.equal(verified.statusCode, 200, verified.body)
  const row = await ctx.db.prisma.phone.findFirstOrThrow({ where: { userId: user.id } })
  t.equal(ctx.app.secrets.decrypt(row.numberCipher), '+14155550167', 'stored normalised to E.164')
  t.equal(row.masked, '+1 ••• ••• ••67')
  for (const table of ['phones', 'otp_challenges', 'deliveries', 'security_events', 'users', 'recovery_codes']) {
    const rows = await ctx.db.prisma.$queryRawUnsafe<Array<{ row: string }>>(`SELECT row_to_json(t)::text AS row FROM ${table} t`)
    for (const { row: text } of rows) {
      t.notMatch(text, /4155550167|415.?555.?0167|5550167/, `${table} holds no plaintext number`)
    }
  }
})

t.test('garbage, premium-rate and personal numbers are 422 invalid_phone_number; other countries 422 phone_country_not_allowed; nothing is sent', async (t) => {
  const user = await createUser(ctx)
  const sent = ctx.twilio.requests.length
  for (const phoneNumber of ['not a number', '12', '+1 900 222 3333', '+1 500 222 3333', '+1 800 555 0199', '+14155550167 ext 5']) {
    assertProblem(t, await start(user.id, { phoneNumber }), 'invalid_phone_number', /phoneNumber/)
  }
  const foreign = assertProblem(t, await start(user.id, { phoneNumber: '+44 7911 123456' }), 'phone_country_not_allowed')
  t.notMatch(JSON.stringify(foreign), '7911123456')
  t.equal(ctx.twilio.requests.length, sent, 'no SMS or call for a refused number')
  t.equal(await ctx.db.prisma.otpChallenge.count({ where: { userId: user.id } }), 0, 'no verification was opened')
})

t.test('channel voice places a call whose TwiML reads the digits one by one, twice', async (t) => {
  const user = await createUser(ctx)
  const response = await start(user.id, { phoneNumber: phoneNumber(3), channel: 'voice' })
  t.equal(response.statusCode, 202, response.body)
  t.equal(response.json().channel, 'voice')
  t.same(ctx.twilio.messagesTo(phoneNumber(3)), [], 'no SMS')
  const calls = ctx.twilio.callsTo(phoneNumber(3))
  t.equal(calls.length, 1, 'one call')
  const code = ctx.twilio.lastCodeFor(phoneNumber(3)) as string
  t.match(code, /^\d{6}$/)
  const spoken = code.split('').join(', ')
  t.match(calls[0], /<Say[^>]*>/)
  t.equal(calls[0]?.split(spoken).length, 3, 'the digits are read twice')
  t.notMatch(calls[0], code, 'never as one number')
  const verified = await verify(user.id, response.json().verificationId, code)
  t.equal(verified.statusCode, 200, verified.body)
  t.equal(verified.json().phone.channel, 'voice', 'the phone remembers it prefers calls')
})

t.test('verify answers 200 {phone, recoveryCode, recoveryKit}; the kit has the email, code, date and support contact', async (t) => {
  const user = await createUser(ctx)
  const started = await start(user.id, { phoneNumber: phoneNumber(4), label: 'Mobile' })
  const response = await verify(user.id, started.json().verificationId, ctx.twilio.lastCodeFor(phoneNumber(4)))
  t.equal(response.statusCode, 200, response.body)
  const body = response.json()
  t.same(Object.keys(body).sort(), ['phone', 'recoveryCode', 'recoveryKit'])
  t.same(Object.keys(body.phone).sort(), ['channel', 'id', 'label', 'masked', 'primary', 'verifiedAt'])
  t.same({ ...body.phone, id: 'x', verifiedAt: 'x' }, { id: 'x', masked: masked(4), label: 'Mobile', channel: 'sms', primary: true, verifiedAt: 'x' })
  t.match(body.phone.verifiedAt, ISO)
  t.match(body.recoveryCode, RECOVERY_CODE)
  t.match(body.recoveryKit, user.email)
  t.match(body.recoveryKit, body.recoveryCode)
  t.match(body.recoveryKit, new Date().toISOString().slice(0, 10))
  t.match(body.recoveryKit, ctx.config.SUPPORT_CONTACT)
  t.match(body.recoveryKit, /once/)
  const view = (await ctx.request('GET', `/v1/users/${user.id}`)).json()
  t.equal(view.twoFactor.enabled, true)
  t.notMatch(JSON.stringify(view), body.recoveryCode, 'the code is shown this once only')
  t.notMatch((await ctx.request('GET', `/v1/users/${user.id}/phones`)).body, body.recoveryCode)
})

t.test('wrong codes are 422 invalid_code with attemptsRemaining 4,3,2,1,0, then 410 verification_expired, even for the right code', async (t) => {
  const user = await createUser(ctx)
  const started = await start(user.id, { phoneNumber: phoneNumber(5) })
  const id = started.json().verificationId
  const code = ctx.twilio.lastCodeFor(phoneNumber(5))
  const remaining: unknown[] = []
  for (let i = 0; i < 5; i++) {
    const body = assertProblem(t, await verify(user.id, id, wrong(code)), 'invalid_code')
    remaining.push(body.attemptsRemaining)
  }
  t.same(remaining, [4, 3, 2, 1, 0])
  assertProblem(t, await verify(user.id, id, wrong(code)), 'verification_expired')
  assertProblem(t, await verify(user.id, id, code), 'verification_expired')
  t.same(await phonesOf(user.id), [], 'no phone was added')
})

t.test('an expired verification is 410 verification_expired', async (t) => {
  const user = await createUser(ctx)
  const started = await start(user.id, { phoneNumber: phoneNumber(6) })
  const id = started.json().verificationId
  await ctx.db.prisma.$executeRaw`UPDATE otp_challenges SET expires_at = now() - interval '1 second' WHERE id = ${id}`
  assertProblem(t, await verify(user.id, id, ctx.twilio.lastCodeFor(phoneNumber(6))), 'verification_expired')
  t.same(await phonesOf(user.id), [])
})

t.test('a code is single-use: verifying twice, or 10 times at once, adds one phone', async (t) => {
  const user = await createUser(ctx)
  const started = await start(user.id, { phoneNumber: phoneNumber(7) })
  const id = started.json().verificationId
  const code = ctx.twilio.lastCodeFor(phoneNumber(7))
  const answers = await Promise.all(Array.from({ length: 10 }, () => verify(user.id, id, code)))
  t.equal(answers.filter((r) => r.statusCode === 200).length, 1, 'one success')
  for (const other of answers.filter((r) => r.statusCode !== 200)) assertProblem(t, other, 'verification_expired')
  assertProblem(t, await verify(user.id, id, code), 'verification_expired')
  t.equal((await phonesOf(user.id)).length, 1)
})

t.test('a verification belongs to its user: another user, or an unknown id, is 404', async (t) => {
  const owner = await createUser(ctx)
  const other = await createUser(ctx)
  const started = await start(owner.id, { phoneNumber: phoneNumber(8) })
  const code = ctx.twilio.lastCodeFor(phoneNumber(8))
  assertProblem(t, await verify(other.id, started.json().verificationId, code), 'not_found')
  assertProblem(t, await verify(owner.id, '00000000-0000-0000-0000-000000000000', code), 'not_found')
  assertProblem(t, await start('00000000-0000-0000-0000-000000000000', { phoneNumber: phoneNumber(8) }), 'not_found')
  t.same(await phonesOf(other.id), [])
  t.equal((await verify(owner.id, started.json().verificationId, code)).statusCode, 200, 'the owner can still finish it')
})

t.test('a login challenge is no phone verification and a phone verification no login challenge', async (t) => {
  const user = await enrolledUser(ctx, 35)
  const login = await startLogin(ctx, user)
  const loginCode = ctx.twilio.lastCodeFor(user.number)
  assertProblem(t, await verify(user.id, login.challengeId, loginCode), 'not_found')
  const started = await start(user.id, { phoneNumber: phoneNumber(36) })
  const code = ctx.twilio.lastCodeFor(phoneNumber(36))
  assertProblem(t, await ctx.request('POST', `/v1/logins/${started.json().verificationId}/verify`, { code }), 'not_found')
  assertProblem(t, await ctx.request('POST', `/v1/logins/${started.json().verificationId}/recovery`, { recoveryCode: user.recoveryCode }), 'not_found')
  t.equal((await ctx.request('POST', `/v1/logins/${login.challengeId}/verify`, { code: loginCode })).statusCode, 200, 'the login still completes')
  t.equal((await verify(user.id, started.json().verificationId, code)).statusCode, 200, 'and so does the verification')
})

t.test('racing PATCH primary:true on two phones leaves exactly one primary', async (t) => {
  const user = await enrolledUser(ctx, 37)
  const b = await enrolPhone(ctx, user.id, phoneNumber(38))
  const c = await enrolPhone(ctx, user.id, phoneNumber(39))
  const answers = await Promise.all([b.phone.id, c.phone.id, b.phone.id, c.phone.id].map((id) => ctx.request('PATCH', `/v1/users/${user.id}/phones/${id}`, { primary: true })))
  t.same(answers.map((r) => r.statusCode), [200, 200, 200, 200])
  const phones = await phonesOf(user.id)
  t.equal(phones.filter((p) => p.primary).length, 1, 'exactly one primary')
  t.notOk(phones.find((p) => p.id === user.phoneId)?.primary, 'and it is not the old one')
})

t.test('the first verified phone is primary; up to 3 phones; a 4th is 409 phone_limit_reached', async (t) => {
  const user = await createUser(ctx)
  const first = await enrolPhone(ctx, user.id, phoneNumber(9))
  const second = await enrolPhone(ctx, user.id, phoneNumber(10))
  const third = await enrolPhone(ctx, user.id, phoneNumber(13))
  t.same([first.phone.primary, second.phone.primary, third.phone.primary], [true, false, false])
  const sent = ctx.twilio.requests.length
  assertProblem(t, await start(user.id, { phoneNumber: phoneNumber(14) }), 'phone_limit_reached')
  t.equal(ctx.twilio.requests.length, sent, 'no code was sent for a 4th phone')
  t.same((await phonesOf(user.id)).map((p) => [p.masked, p.primary]), [[masked(9), true], [masked(10), false], [masked(13), false]])
})

t.test('4 verifications racing for 0 phones: exactly 3 phones, one 409, one primary, one live recovery code', async (t) => {
  const user = await createUser(ctx)
  const numbers = [15, 16, 17, 18].map(phoneNumber)
  const started = []
  for (const number of numbers) {
    const response = await start(user.id, { phoneNumber: number })
    t.equal(response.statusCode, 202, response.body)
    started.push({ id: response.json().verificationId as string, code: ctx.twilio.lastCodeFor(number) })
  }
  const answers = await Promise.all(started.map(({ id, code }) => verify(user.id, id, code)))
  t.same(answers.map((r) => r.statusCode).sort(), [200, 200, 200, 409], answers.map((r) => r.body).join('\n'))
  const refused = answers.find((r) => r.statusCode === 409)
  if (refused !== undefined) assertProblem(t, refused, 'phone_limit_reached')
  const phones = await phonesOf(user.id)
  t.equal(phones.length, 3)
  t.equal(phones.filter((p) => p.primary).length, 1, 'exactly one primary')
  const issued = answers.filter((r) => r.statusCode === 200).map((r) => r.json().recoveryCode as string)
  t.equal(new Set(issued).size, 3, 'each verification issued its own code')
  t.equal((await liveRecoveryCodes(user.id, issued)).length, 1, 'only one of them still works')
})

t.test('re-adding a verified number is 409 phone_already_verified, in any spelling; racing verifications of one number add it once', async (t) => {
  const user = await createUser(ctx)
  await enrolPhone(ctx, user.id, '+14155550188')
  for (const spelling of ['+14155550188', '(415) 555-0188', '415.555.0188']) {
    assertProblem(t, await start(user.id, { phoneNumber: spelling }), 'phone_already_verified')
  }
  const other = await createUser(ctx)
  const a = await start(other.id, { phoneNumber: '+14155550189' })
  const codeA = ctx.twilio.lastCodeFor('+14155550189')
  const b = await start(other.id, { phoneNumber: '(415) 555-0189' })
  const codeB = ctx.twilio.lastCodeFor('+14155550189')
  t.equal((await verify(other.id, a.json().verificationId, codeA)).statusCode, 200)
  assertProblem(t, await verify(other.id, b.json().verificationId, codeB), 'phone_already_verified')
  t.equal((await phonesOf(other.id)).length, 1)
  t.equal((await phonesOf(user.id)).length, 1, 'the same number may belong to another user')
})

t.test('each verification issues a new recovery code and voids the old one', async (t) => {
  const user = await enrolledUser(ctx, 19)
  const old = user.recoveryCode
  const added = await enrolPhone(ctx, user.id, phoneNumber(20))
  t.not(added.recoveryCode, old)
  t.same(await liveRecoveryCodes(user.id, [old, added.recoveryCode]), [added.recoveryCode])
  const login = await startLogin(ctx, user)
  const refused = assertProblem(t, await ctx.request('POST', `/v1/logins/${login.challengeId}/recovery`, { recoveryCode: old }), 'invalid_recovery_code')
  t.equal(refused.attemptsRemaining, 2)
  const accepted = await ctx.request('POST', `/v1/logins/${login.challengeId}/recovery`, { recoveryCode: added.recoveryCode.toLowerCase() })
  t.equal(accepted.statusCode, 200, accepted.body)
})

t.test('adding a second phone sends a notice, without a code, to the previous primary; the first phone triggers none', async (t) => {
  const user = await createUser(ctx)
  await enrolPhone(ctx, user.id, phoneNumber(21))
  t.equal(ctx.twilio.messagesTo(phoneNumber(21)).length, 1, 'only the code SMS for the first phone')
  await enrolPhone(ctx, user.id, phoneNumber(22))
  const messages = ctx.twilio.messagesTo(phoneNumber(21))
  t.equal(messages.length, 2, 'a notice to the previous primary')
  t.match(messages[1], /added/)
  t.notMatch(messages[1], SIX_DIGITS, 'no code in a notice')
  t.match(messages[1], ctx.config.SUPPORT_CONTACT)
  t.equal(ctx.twilio.messagesTo(phoneNumber(22)).length, 1, 'the new phone got only its code')
})

t.test('PATCH renames a phone and clears the label; 404 for an unknown phone or another user\'s', async (t) => {
  const user = await enrolledUser(ctx, 23)
  const renamed = await ctx.request('PATCH', `/v1/users/${user.id}/phones/${user.phoneId}`, { label: 'Work mobile' })
  t.equal(renamed.statusCode, 200, renamed.body)
  t.same(Object.keys(renamed.json()).sort(), ['channel', 'id', 'label', 'masked', 'primary', 'verifiedAt'])
  t.equal(renamed.json().label, 'Work mobile')
  t.equal(renamed.json().primary, true)
  t.equal((await ctx.request('PATCH', `/v1/users/${user.id}/phones/${user.phoneId}`, { label: null })).json().label, null)
  const other = await createUser(ctx)
  assertProblem(t, await ctx.request('PATCH', `/v1/users/${other.id}/phones/${user.phoneId}`, { label: 'Mine now' }), 'not_found')
  assertProblem(t, await ctx.request('PATCH', `/v1/users/${user.id}/phones/00000000-0000-0000-0000-000000000000`, { label: 'x' }), 'not_found')
  assertProblem(t, await ctx.request('PATCH', `/v1/users/${user.id}/phones/${user.phoneId}`, { primary: false }), 'invalid_request', /primary/)
  assertProblem(t, await ctx.request('PATCH', `/v1/users/${user.id}/phones/${user.phoneId}`, { label: '' }), 'invalid_request', /label/)
  t.equal((await phonesOf(user.id))[0]?.label, null, 'nothing changed')
})

t.test('PATCH primary:true moves the primary and the old primary gets a notice without a code', async (t) => {
  const user = await enrolledUser(ctx, 24)
  const backup = await enrolPhone(ctx, user.id, phoneNumber(25))
  const before = ctx.twilio.messagesTo(phoneNumber(24)).length
  const response = await ctx.request('PATCH', `/v1/users/${user.id}/phones/${backup.phone.id}`, { primary: true })
  t.equal(response.statusCode, 200, response.body)
  t.equal(response.json().primary, true)
  t.same((await phonesOf(user.id)).map((p) => [p.id, p.primary]), [[user.phoneId, false], [backup.phone.id, true]])
  const notices = ctx.twilio.messagesTo(phoneNumber(24)).slice(before)
  t.equal(notices.length, 1, 'one notice to the old primary')
  t.match(notices[0], /primary/i)
  t.notMatch(notices[0], SIX_DIGITS)
  const login = await startLogin(ctx, user)
  t.equal(login.status, 'challenge_required')
  t.match(ctx.twilio.messagesTo(phoneNumber(25)).at(-1), /verification code/, 'the login code goes to the new primary')
  const again = ctx.twilio.messagesTo(phoneNumber(24)).length
  t.equal((await ctx.request('PATCH', `/v1/users/${user.id}/phones/${backup.phone.id}`, { primary: true })).statusCode, 200, 'already primary: fine')
  t.equal(ctx.twilio.messagesTo(phoneNumber(24)).length, again, 'and no notice for a non-change')
})

t.test('DELETE a non-last phone: 204, the primary moves, the previous primary is told; the last one is 409 two_factor_required', async (t) => {
  const user = await enrolledUser(ctx, 26)
  const backup = await enrolPhone(ctx, user.id, phoneNumber(27))
  const before = ctx.twilio.messagesTo(phoneNumber(26)).length
  const removed = await ctx.request('DELETE', `/v1/users/${user.id}/phones/${user.phoneId}`)
  t.equal(removed.statusCode, 204)
  t.equal(removed.body, '')
  const notices = ctx.twilio.messagesTo(phoneNumber(26)).slice(before)
  t.equal(notices.length, 1, 'the removed primary is told')
  t.match(notices[0], /removed/)
  t.notMatch(notices[0], SIX_DIGITS)
  t.same((await phonesOf(user.id)).map((p) => [p.id, p.primary]), [[backup.phone.id, true]], 'the backup became primary')
  assertProblem(t, await ctx.request('DELETE', `/v1/users/${user.id}/phones/${backup.phone.id}`), 'two_factor_required')
  t.equal((await phonesOf(user.id)).length, 1, 'the last phone stays')
  assertProblem(t, await ctx.request('DELETE', `/v1/users/${user.id}/phones/${user.phoneId}`), 'not_found', undefined)
  const login = await startLogin(ctx, user)
  t.equal(login.status, 'challenge_required', 'the user still has a second factor')
})

t.test('racing deletes of two phones leave one', async (t) => {
  const user = await enrolledUser(ctx, 28)
  const backup = await enrolPhone(ctx, user.id, phoneNumber(29))
  const answers = await Promise.all([user.phoneId, backup.phone.id].map((id) => ctx.request('DELETE', `/v1/users/${user.id}/phones/${id}`)))
  t.same(answers.map((r) => r.statusCode).sort(), [204, 409])
  const phones = await phonesOf(user.id)
  t.equal(phones.length, 1)
  t.equal(phones[0]?.primary, true)
})

t.test('POST recovery-code: 201 {recoveryCode, recoveryKit}, the old code stops working; 409 two_factor_not_enabled without phones', async (t) => {
  const user = await enrolledUser(ctx, 30)
  const response = await ctx.request('POST', `/v1/users/${user.id}/recovery-code`)
  t.equal(response.statusCode, 201, response.body)
  const body = response.json()
  t.same(Object.keys(body).sort(), ['recoveryCode', 'recoveryKit'])
  t.match(body.recoveryCode, RECOVERY_CODE)
  t.not(body.recoveryCode, user.recoveryCode)
  t.match(body.recoveryKit, body.recoveryCode)
  t.match(body.recoveryKit, user.email)
  t.match(body.recoveryKit, ctx.config.SUPPORT_CONTACT)
  t.same(await liveRecoveryCodes(user.id, [user.recoveryCode, body.recoveryCode]), [body.recoveryCode])
  const bare = await createUser(ctx)
  assertProblem(t, await ctx.request('POST', `/v1/users/${bare.id}/recovery-code`), 'two_factor_not_enabled')
  t.equal(await ctx.db.prisma.recoveryCode.count({ where: { userId: bare.id } }), 0)
  assertProblem(t, await ctx.request('POST', '/v1/users/00000000-0000-0000-0000-000000000000/recovery-code'), 'not_found')
})

t.test('simultaneous recovery-code regenerations all succeed and leave exactly one live code', async (t) => {
  const user = await enrolledUser(ctx, 34)
  const answers = await Promise.all(Array.from({ length: 8 }, () => ctx.request('POST', `/v1/users/${user.id}/recovery-code`)))
  t.same(answers.map((r) => r.statusCode), Array(8).fill(201), answers.map((r) => r.body).join('\n'))
  const issued = answers.filter((r) => r.statusCode === 201).map((r) => r.json().recoveryCode as string)
  t.equal((await liveRecoveryCodes(user.id, [user.recoveryCode, ...issued])).length, 1)
  t.equal(await ctx.db.prisma.recoveryCode.count({ where: { userId: user.id } }), 1)
})

t.test('GET phones lists them in order; unknown user 404', async (t) => {
  const user = await enrolledUser(ctx, 31)
  await enrolPhone(ctx, user.id, phoneNumber(32), 'voice', 'Landline')
  const response = await ctx.request('GET', `/v1/users/${user.id}/phones`)
  t.equal(response.statusCode, 200)
  t.same(response.json().items.map((p: { masked: string, label: string | null, channel: string, primary: boolean }) => [p.masked, p.label, p.channel, p.primary]),
    [[masked(31), null, 'sms', true], [masked(32), 'Landline', 'voice', false]])
  assertProblem(t, await ctx.request('GET', '/v1/users/00000000-0000-0000-0000-000000000000/phones'), 'not_found')
})

t.test('a failed delivery is 502 delivery_failed, opens nothing usable, and a retry works', async (t) => {
  const user = await createUser(ctx)
  ctx.twilio.failNext(1, { status: 500 })
  const failed = await start(user.id, { phoneNumber: phoneNumber(33) })
  assertProblem(t, failed, 'delivery_failed')
  t.notMatch(failed.body, phoneNumber(33).slice(2))
  const retry = await start(user.id, { phoneNumber: phoneNumber(33) })
  t.equal(retry.statusCode, 202, retry.body)
  t.equal((await verify(user.id, retry.json().verificationId, ctx.twilio.lastCodeFor(phoneNumber(33)))).statusCode, 200)
})

t.test(`starting verifications is limited per user: the ${PHONE_VERIFICATIONS_PER_HOUR + 1}th in an hour is 429 with Retry-After`, async (t) => {
  const user = await createUser(ctx)
  // Unauthenticated tries must not spend the user's budget.
  for (let i = 0; i < PHONE_VERIFICATIONS_PER_HOUR + 2; i++) {
    t.equal((await ctx.request('POST', `/v1/users/${user.id}/phones`, { phoneNumber: phoneNumber(40) }, null)).statusCode, 401)
  }
  // Nor do numbers refused as invalid: nothing was sent for them.
  for (const phoneNumber of ['+1 900 222 3333', '+44 7911 123456', 'oops', '415555']) {
    t.equal((await start(user.id, { phoneNumber })).statusCode, 422)
  }
  for (let i = 0; i < PHONE_VERIFICATIONS_PER_HOUR; i++) {
    t.equal((await start(user.id, { phoneNumber: phoneNumber(41 + i) })).statusCode, 202, `start ${i + 1}`)
  }
  const sent = ctx.twilio.requests.length
  const limited = await start(user.id, { phoneNumber: phoneNumber(49) })
  const body = assertProblem(t, limited, 'too_many_requests')
  t.match(limited.headers['retry-after'], /^\d+$/)
  const retryAfter = Number(limited.headers['retry-after'])
  t.ok(retryAfter > 0 && retryAfter <= 3600, `Retry-After ${retryAfter}`)
  t.equal(body.retryAfter, retryAfter, 'retryAfter in the body matches the header')
  t.equal(ctx.twilio.requests.length, sent, 'nothing was sent')
  const other = await createUser(ctx)
  t.equal((await start(other.id, { phoneNumber: phoneNumber(49) })).statusCode, 202, 'another user is not affected')
})
