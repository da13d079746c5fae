import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max'
import { ApiError } from './errors.js'

/** Number types a code can reach. Premium-rate, shared-cost, pagers and unknown types cost money or reach nobody. */
const ACCEPTED_TYPES = new Set(['MOBILE', 'FIXED_LINE', 'FIXED_LINE_OR_MOBILE', 'VOIP'])

export interface NormalisedPhone {
  e164: string
  country: CountryCode
  masked: string
}

/** What people type around the digits of a number; anything else means it is not (only) a number. */
const NUMBER_CHARACTERS = /^\+?[\d\s().\-]+$/

/** Accepts E.164 or the default country's national form; answers the contract's 422 codes. */
export function normalisePhoneNumber (input: string, defaultCountry: CountryCode, allowed: readonly CountryCode[]): NormalisedPhone {
  const text = input.trim()
  // libphonenumber fishes a number out of any text ("call 415... now") and drops an extension:
  // a code must go to exactly what the user typed, and no SMS or call reaches an extension.
  const parsed = NUMBER_CHARACTERS.test(text) ? parsePhoneNumberFromString(text, defaultCountry) : undefined
  if (parsed === undefined || !parsed.isValid() || parsed.country === undefined || parsed.ext !== undefined) {
    throw new ApiError('invalid_phone_number', 'phoneNumber is not a valid phone number')
  }
  if (!allowed.includes(parsed.country)) {
    throw new ApiError('phone_country_not_allowed', `phoneNumber: numbers from ${parsed.country} are not accepted`)
  }
  const type = parsed.getType()
  if (type === undefined || !ACCEPTED_TYPES.has(type)) {
    throw new ApiError('invalid_phone_number', 'phoneNumber must be a mobile, fixed-line or VoIP number')
  }
  return { e164: parsed.number, country: parsed.country, masked: maskPhoneNumber(parsed.formatInternational()) }
}

/** `+1 415 555 0167` becomes `+1 ••• ••• ••67`: the country code and last two digits stay. */
export function maskPhoneNumber (international: string): string {
  const match = /^(\+\d+)(.*)$/.exec(international)
  if (match === null) return '••••'
  const [, countryCode, national] = match as unknown as [string, string, string]
  const digits = national.replace(/\D/g, '').length
  let seen = 0
  const masked = national.replace(/\d/g, (digit) => (++seen > digits - 2 ? digit : '•'))
  return countryCode + masked
}
