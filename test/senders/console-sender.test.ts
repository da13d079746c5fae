import t from 'tap'
import { createConsoleSender } from '../../src/senders/console-sender.js'
import { codeSms, codeSpeech } from '../../src/senders/messages.js'

function memoryLogger () {
  const lines: Array<{ level: string, obj: object, msg?: string | undefined }> = []
  const log = (level: string) => (obj: object, msg?: string) => { lines.push({ level, obj, msg }) }
  return { lines, info: log('info'), warn: log('warn'), error: log('error') }
}

t.test('records SMS and calls to its outbox and answers like a provider', async (t) => {
  const logger = memoryLogger()
  const sender = createConsoleSender(logger)
  t.equal(sender.provider, 'console')

  const sms = await sender.sendSms('+15551234567', codeSms('123456'), { statusCallback: 'https://auth.example/v1/webhooks/twilio/status' })
  t.match(sms, { providerId: /^console-[0-9a-f]{16}$/, status: 'sent' })
  const call = await sender.call('+15557654321', codeSpeech('654321'))
  t.not(call.providerId, sms.providerId, 'each send gets its own id')

  t.equal(sender.outbox.length, 2)
  t.match(sender.outbox[0], { channel: 'sms', to: '+15551234567', text: codeSms('123456'), providerId: sms.providerId, statusCallback: 'https://auth.example/v1/webhooks/twilio/status' })
  t.match(sender.outbox[1], { channel: 'voice', to: '+15557654321', text: codeSpeech('654321') })
})

t.test('logs the text (codes allowed in development) at info, with the number masked', async (t) => {
  const logger = memoryLogger()
  const sender = createConsoleSender(logger)
  await sender.sendSms('+15551234567', codeSms('123456'))
  t.equal(logger.lines.length, 1)
  const [line] = logger.lines
  t.equal(line?.level, 'info')
  const written = JSON.stringify(line)
  t.match(written, /123456/, 'the code is in the log')
  t.notMatch(written, /5551234567/, 'the full number is not')
  t.match(written, /67/)
})

t.test('the outbox keeps the most recent messages only', async (t) => {
  const sender = createConsoleSender(memoryLogger())
  for (let i = 0; i < 600; i++) await sender.sendSms('+15551234567', `message ${i}`)
  t.equal(sender.outbox.length, 500)
  t.equal(sender.outbox.at(-1)?.text, 'message 599')
  t.equal(sender.outbox[0]?.text, 'message 100')
})
