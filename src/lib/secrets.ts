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
  /** Decrypts under the current key or, during a rotation, the previous one. */
  decrypt (ciphertext: string): string
  /** Id of the current encryption key, as it appears in its ciphertexts. */
  readonly keyId: string
  /** True when `ciphertext` is not under the current key: `npm run reencrypt` rewrites it. */
  isStale (ciphertext: string): boolean
}

function derive (secretKey: Buffer, label: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secretKey, Buffer.alloc(0), `studio-pro-auth/${label}`, 32))
}

function encryptionKeyOf (secretKey: Buffer): { id: string, key: Buffer } {
  const key = derive(secretKey, 'encryption')
  return { id: createHash('sha256').update(key).digest('hex').slice(0, 8), key }
}

/**
 * `previousKey` (SECRET_KEY_PREVIOUS) only decrypts: after a rotation, numbers written
 * under the old key stay readable until `npm run reencrypt` has rewritten them.
 */
export function createSecrets (secretKey: Buffer, previousKey?: Buffer): Secrets {
  const codeKey = derive(secretKey, 'otp-code')
  const indexKey = derive(secretKey, 'blind-index')
  const recoveryKey = derive(secretKey, 'recovery-code')
  const current = encryptionKeyOf(secretKey)
  const encryptionKey = current.key
  const keyId = current.id
  const decryptionKeys = new Map([[keyId, encryptionKey]])
  if (previousKey !== undefined) {
    const previous = encryptionKeyOf(previousKey)
    if (!decryptionKeys.has(previous.id)) decryptionKeys.set(previous.id, previous.key)
  }

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
    keyId,
    isStale (ciphertext) {
      return ciphertext.split('.')[1] !== keyId
    },
    decrypt (ciphertext) {
      const [version, id, payload] = ciphertext.split('.')
      const key = id === undefined ? undefined : decryptionKeys.get(id)
      if (version !== 'v1' || key === undefined || payload === undefined) {
        throw new Error(`cannot decrypt: key ${id ?? '?'} is neither SECRET_KEY nor SECRET_KEY_PREVIOUS`)
      }
      const raw = Buffer.from(payload, 'base64')
      const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12))
      decipher.setAuthTag(raw.subarray(12, 28))
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')
    }
  }
}
