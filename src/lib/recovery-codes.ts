import { randomInt } from 'node:crypto'
import { RECOVERY_CODE_ALPHABET, RECOVERY_CODE_GROUP_LENGTH, RECOVERY_CODE_GROUPS } from './limits.js'

export function generateRecoveryCode (): string {
  const groups: string[] = []
  for (let g = 0; g < RECOVERY_CODE_GROUPS; g++) {
    let group = ''
    for (let i = 0; i < RECOVERY_CODE_GROUP_LENGTH; i++) group += RECOVERY_CODE_ALPHABET[randomInt(RECOVERY_CODE_ALPHABET.length)]
    groups.push(group)
  }
  return groups.join('-')
}

/** People copy codes by hand: case, spaces and dashes must not make a right code wrong. */
export function canonicalRecoveryCode (input: string): string {
  return input.toUpperCase().replace(/[\s-]/g, '')
}

export function recoveryKit (input: { email: string, code: string, issuedAt: Date, supportContact: string }): string {
  const date = input.issuedAt.toISOString().slice(0, 10)
  return [
    'Studio Pro - recovery code',
    '',
    `Account: ${input.email}`,
    `Recovery code: ${input.code}`,
    `Issued: ${date}`,
    '',
    'Keep this page somewhere safe, away from your phone.',
    'Use the code to sign in when you cannot get a text, a call or an',
    'authenticator code (lost or replaced phone, no signal). It works once;',
    'after you use it you are given a new one. Getting a new code, or',
    'verifying a phone, makes this one stop working.',
    '',
    'Three wrong recovery codes in a row lock the account.',
    `Locked out or lost this page? Contact ${input.supportContact}.`,
    ''
  ].join('\n')
}
