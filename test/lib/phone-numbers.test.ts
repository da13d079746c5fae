// Contract section 2: numbers in E.164 or national form, stored as E.164, shown only
// masked; only mobile, fixed-line or VoIP numbers of an allowed country.
import t from 'tap'
import { ApiError } from '../../src/lib/errors.js'
import { maskPhoneNumber, normalisePhoneNumber } from '../../src/lib/phone-numbers.js'

const US_CA = ['US', 'CA'] as const

function refusedWith (input: string, allowed: readonly string[] = US_CA, defaultCountry = 'US'): string {
  try {
    normalisePhoneNumber(input, defaultCountry as 'US', allowed as Array<'US'>)
  } catch (err) {
    if (err instanceof ApiError) return err.code
    throw err
  }
  return 'accepted'
}

t.test('E.164 and every common US national spelling give the same E.164 and mask', async (t) => {
  for (const input of ['+14155550167', '(415) 555-0167', '415-555-0167', '415.555.0167', '4155550167', '1 415 555 0167', '+1 (415) 555-0167', '  +1 415 555 0167  ']) {
    const number = normalisePhoneNumber(input, 'US', [...US_CA])
    t.same(number, { e164: '+14155550167', country: 'US', masked: '+1 ••• ••• ••67' }, input)
  }
})

t.test('Canadian numbers are accepted by default', async (t) => {
  t.same(normalisePhoneNumber('+1 613 555 0123', 'US', [...US_CA]), { e164: '+16135550123', country: 'CA', masked: '+1 ••• ••• ••23' })
  t.equal(normalisePhoneNumber('(604) 555-0123', 'US', [...US_CA]).country, 'CA', 'national form of the shared +1 plan')
})

t.test('garbage is invalid_phone_number', async (t) => {
  for (const input of ['', ' ', 'abc', '+1', '123', '+1415555016', '+141555501677777', 'phone: 415', '++14155550167', '☎️4155550167', '0000000000', '+0 415 555 0167']) {
    t.equal(refusedWith(input), 'invalid_phone_number', JSON.stringify(input))
  }
})

t.test('a number inside other text is refused, not fished out of it', async (t) => {
  for (const input of ['call 4155550167 now', 'tel:+14155550167', 'mine: +1 415 555 0167']) {
    t.equal(refusedWith(input), 'invalid_phone_number', JSON.stringify(input))
  }
})

t.test('a number with an extension is refused: no SMS or call reaches an extension', async (t) => {
  for (const input of ['4155550167 ext. 12', '4155550167;ext=12', '+1 415 555 0167 x99']) {
    t.equal(refusedWith(input), 'invalid_phone_number', JSON.stringify(input))
  }
})

t.test('premium-rate, personal (500), toll-free and unknown types are refused', async (t) => {
  t.equal(refusedWith('+1 900 222 3333'), 'invalid_phone_number', 'premium rate')
  t.equal(refusedWith('+1 500 222 3333'), 'invalid_phone_number', 'personal number')
  t.equal(refusedWith('+1 800 555 0199'), 'invalid_phone_number', 'toll free')
})

t.test('numbers of other countries are phone_country_not_allowed, unless allowed', async (t) => {
  t.equal(refusedWith('+44 7911 123456'), 'phone_country_not_allowed')
  t.equal(refusedWith('+61 412 345 678'), 'phone_country_not_allowed')
  t.equal(refusedWith('+33 6 12 34 56 78'), 'phone_country_not_allowed')
  t.same(normalisePhoneNumber('+33 6 12 34 56 78', 'US', ['US', 'FR']), { e164: '+33612345678', country: 'FR', masked: '+33 • •• •• •• 78' })
  t.equal(normalisePhoneNumber('06 12 34 56 78', 'FR', ['FR']).e164, '+33612345678', 'national form of the default country')
})

t.test('a refusal never quotes the number', async (t) => {
  for (const input of ['+1 900 222 3333', '+44 7911 123456', '4155550']) {
    try {
      normalisePhoneNumber(input, 'US', [...US_CA])
      t.fail('accepted')
    } catch (err) {
      t.notMatch((err as Error).message, /\d{4}/, (err as Error).message)
    }
  }
})

t.test('the mask keeps the country code and the last two digits only', async (t) => {
  t.equal(maskPhoneNumber('+1 415 555 0167'), '+1 ••• ••• ••67')
  t.equal(maskPhoneNumber('+44 7911 123456'), '+44 •••• ••••56')
  t.equal(maskPhoneNumber('+33 6 12 34 56 78'), '+33 • •• •• •• 78')
  t.equal(maskPhoneNumber('415 555 0167'), '••••', 'without a country code nothing is shown')
  t.equal(maskPhoneNumber(''), '••••')
  for (const masked of ['+1 ••• ••• ••67', '+44 •••• ••••56']) {
    const national = masked.replace(/^\+\d+/, '')
    t.ok((national.match(/\d/g) ?? []).length <= 4, 'at most four digits visible')
  }
})
