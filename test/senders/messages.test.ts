import t from 'tap'
import { codeSms, codeSpeech, noticeSms, type NoticeKind } from '../../src/senders/messages.js'

t.test('code SMS is the contract text, word for word', async (t) => {
  t.equal(codeSms('123456'), 'Your Studio Pro verification code is 123456. It expires in 10 minutes.')
})

t.test('the WebOTP line is added as the last line when a domain is set', async (t) => {
  const text = codeSms('042917', 'app.studiopro.com')
  t.equal(text, 'Your Studio Pro verification code is 042917. It expires in 10 minutes.\n@app.studiopro.com #042917')
  t.equal(text.split('\n').at(-1), '@app.studiopro.com #042917')
  t.equal(codeSms('042917', ''), 'Your Studio Pro verification code is 042917. It expires in 10 minutes.', 'an empty domain adds nothing')
})

t.test('speech reads the digits one by one, twice, keeping leading zeros', async (t) => {
  t.equal(codeSpeech('123456'), 'Your Studio Pro verification code is 1, 2, 3, 4, 5, 6. Again, your code is 1, 2, 3, 4, 5, 6.')
  const speech = codeSpeech('007300')
  t.equal(speech.match(/0, 0, 7, 3, 0, 0/g)?.length, 2)
  t.notMatch(speech, /\d{2}/, 'no two digits run together')
})

t.test('security notices name the event and the support contact, and never carry a code', async (t) => {
  const kinds: NoticeKind[] = ['phone_added', 'phone_removed', 'primary_changed', 'two_factor_reset', 'recovery_code_used', 'authenticator_added', 'authenticator_removed']
  const texts = new Set<string>()
  for (const kind of kinds) {
    const text = noticeSms(kind, 'support@studiopro.com')
    texts.add(text)
    t.match(text, /^Studio Pro: /, kind)
    t.match(text, /If this wasn't you, contact your studio or support@studiopro\.com/, kind)
    t.notMatch(text, /\d/, `${kind} has no digits at all`)
    t.notMatch(text, /https?:\/\//, `${kind} has no link`)
    t.ok(text.length <= 160, `${kind} fits in one SMS segment (${text.length})`)
  }
  t.equal(texts.size, kinds.length, 'each kind says something different')
  t.match(noticeSms('phone_added', '+1 800 555 0100'), /contact your studio or \+1 800 555 0100 right away\.$/)
})
