import { OTP_TTL_MS } from '../lib/limits.js'

// The texts users receive. Contract section 3 fixes the code SMS word for word;
// clients and support scripts quote it, so change it only with the contract.

const TTL_MINUTES = Math.round(OTP_TTL_MS / 60_000)

/**
 * The code SMS. With a WebOTP domain the `@domain #code` line comes last, as the
 * WebOTP spec requires, so browsers on that origin can fill the code in.
 */
export function codeSms (code: string, webotpDomain?: string): string {
  const text = `Your Studio Pro verification code is ${code}. It expires in ${TTL_MINUTES} minutes.`
  return webotpDomain === undefined || webotpDomain === '' ? text : `${text}\n@${webotpDomain} #${code}`
}

/**
 * What a voice call says. Digits are separated by commas so text-to-speech reads
 * "one, two, three" rather than "one hundred twenty-three thousand", and the
 * code is said twice because the callee often misses the first reading.
 */
export function codeSpeech (code: string): string {
  const spoken = code.split('').join(', ')
  return `Your Studio Pro verification code is ${spoken}. Again, your code is ${spoken}.`
}

export type NoticeKind = 'phone_added' | 'phone_removed' | 'primary_changed' | 'two_factor_reset' | 'recovery_code_used'
  | 'authenticator_added' | 'authenticator_removed'

// Short enough that, with the default support contact, each notice fits one
// 160-character SMS segment: a split notice costs double and may arrive out of order.
const NOTICE_EVENTS: Record<NoticeKind, string> = {
  phone_added: 'A phone was added to two-step verification on your account.',
  phone_removed: 'A phone was removed from two-step verification on your account.',
  primary_changed: 'Your primary phone for two-step verification was changed.',
  two_factor_reset: 'Two-step verification on your account was reset.',
  recovery_code_used: 'Your recovery code was used to sign in; a new one was issued.',
  authenticator_added: 'An authenticator app was set up for two-step verification.',
  authenticator_removed: 'An authenticator app was removed from two-step verification.'
}

/**
 * A security notice (contract section 2). It never carries a code or a link:
 * it goes to a phone that may no longer be the user's, and a link in an
 * unexpected SMS is what phishing looks like.
 */
export function noticeSms (kind: NoticeKind, supportContact: string): string {
  return `Studio Pro: ${NOTICE_EVENTS[kind]} If this wasn't you, contact your studio or ${supportContact} right away.`
}
