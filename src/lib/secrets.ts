import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto'

export interface Secrets {
  /** HMAC of a one-time code bound to its challenge: a stored hash is useless for another challenge. */
  codeHash (challengeId: string, code: string): string
  /** HMAC of a recovery code: the code is 99 random bits, so a keyed fast hash is as strong as argon2 here. */
  recoveryCodeHash (code: string): string
  /** Constant-time comparison of two hex digests. */
  sameHash (a: string, b: string): boolean
  /** Keyed blind index: equality lookups on a value stored only encrypted. */
  blindIndex (purpose: 'phone' | 'email', value: string): string
  /** AES-256-GCM, tagged with the key id so that a later key rotation can tell keys apart. */
  encrypt (plaintext: string): string
  decrypt (ciphertext: string): string
}

function derive (secretKey: Buffer, label: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secretKey, Buffer.alloc(0), `studio-pro-auth/${label}`, 32))
}

export function createSecrets (secretKey: Buffer): Secrets {
  const codeKey = derive(secretKey, 'otp-code')
  const indexKey = derive(secretKey, 'blind-index')
  const recoveryKey = derive(secretKey, 'recovery-code')
  const encryptionKey = derive(secretKey, 'encryption')
  const keyId = createHash('sha256').update(encryptionKey).digest('hex').slice(0, 8)

  return {
    codeHash (challengeId, code) {
      return createHmac('sha256', codeKey).update(`${challengeId}:${code}`).digest('hex')
    },
    recoveryCodeHash (code) {
      return createHmac('sha256', recoveryKey).update(code).digest('hex')
    },
    sameHash (a, b) {
      const left = Buffer.from(a, 'hex')
      const right = Buffer.from(b, 'hex')
      return left.length === right.length && left.length > 0 && timingSafeEqual(left, right)
    },
    blindIndex (purpose, value) {
      return createHmac('sha256', indexKey).update(`${purpose}:${value}`).digest('hex')
    },
    encrypt (plaintext) {
      const iv = randomBytes(12)
      const cipher = createCipheriv('aes-256-gcm', encryptionKey, iv)
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
      return `v1.${keyId}.${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`
    },
    decrypt (ciphertext) {
      const [version, id, payload] = ciphertext.split('.')
      if (version !== 'v1' || id !== keyId || payload === undefined) {
        throw new Error(`cannot decrypt: key ${id ?? '?'} is not the current key`)
      }
      const raw = Buffer.from(payload, 'base64')
      const decipher = createDecipheriv('aes-256-gcm', encryptionKey, raw.subarray(0, 12))
      decipher.setAuthTag(raw.subarray(12, 28))
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')
    }
  }
}
