import t from 'tap'
import { buildTestApp, enrolledUser, startLogin } from '../helpers/app.js'

t.test('Twilio status callbacks: a good signature updates the delivery, a bad one is 403', async (t) => {
  const ctx = await buildTestApp(t, { env: { PUBLIC_BASE_URL: 'https://auth.studiopro.example' } })
  const user = await enrolledUser(ctx, 1)
  await startLogin(ctx, user)
  const accepted = ctx.twilio.requests.filter((r) => r.sid !== null).at(-1)
  t.equal(accepted?.statusCallback, 'https://auth.studiopro.example/v1/webhooks/twilio/status', 'the SDK was given the callback URL')
  const sid = accepted?.sid as string

  const good = ctx.twilio.signedStatusCallback(sid, 'undelivered', { url: 'https://auth.studiopro.example/v1/webhooks/twilio/status', params: { ErrorCode: '30003' } })
  const ok = await ctx.app.inject({ method: 'POST', url: good.path, headers: good.headers, payload: good.payload })
  t.equal(ok.statusCode, 204, ok.body)
  const delivery = await ctx.db.prisma.delivery.findFirstOrThrow({ where: { providerId: sid } })
  t.equal(delivery.status, 'undelivered')
  t.equal(delivery.errorCode, '30003')

  const forged = ctx.twilio.signedStatusCallback(sid, 'delivered', { url: 'https://auth.studiopro.example/v1/webhooks/twilio/status', authToken: 'not-the-token' })
  const refused = await ctx.app.inject({ method: 'POST', url: forged.path, headers: forged.headers, payload: forged.payload })
  t.equal(refused.statusCode, 403)
  t.equal(refused.json().code, 'invalid_signature')
  const tampered = await ctx.app.inject({ method: 'POST', url: good.path, headers: good.headers, payload: good.payload.replace('undelivered', 'delivered') })
  t.equal(tampered.statusCode, 403, 'a changed field breaks the signature')
  const unsigned = await ctx.app.inject({ method: 'POST', url: good.path, headers: { 'content-type': good.headers['content-type'] }, payload: good.payload })
  t.equal(unsigned.statusCode, 403)
  t.equal((await ctx.db.prisma.delivery.findFirstOrThrow({ where: { providerId: sid } })).status, 'undelivered', 'nothing forged was written')
})
