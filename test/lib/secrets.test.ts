// Issue 2, section 5: codes stored as HMAC under a key derived from SECRET_KEY and compared
// in constant time; phone numbers encrypted at rest (AES-256-GCM) with a keyed blind index.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { createSecrets } from '../../src/lib/secrets.js'

const key = randomBytes(32)
const secrets = createSecrets(key)
const other = createSecrets(randomBytes(32))

t.test('encrypt then decrypt gives the plaintext back, unicode included', async (t) => {
  for (const plaintext of ['+14155550167', '', 'ünïcödé ☎️ 𝄞', 'x'.repeat(10_000)]) {
    t.equal(secrets.decrypt(secrets.encrypt(plaintext)), plaintext)
  }
})

t.test('a ciphertext shows neither the plaintext nor its digits, and is new every time', async (t) => {
  const a = secrets.encrypt('+14155550167')
  const b = secrets.encrypt('+14155550167')
  t.not(a, b, 'a fresh IV per encryption')
  for (const c of [a, b]) {
    t.notMatch(c, '4155550167')
    t.notMatch(Buffer.from(c.split('.')[2] ?? '', 'base64').toString('latin1'), '4155550167')
    t.match(c, /^v1\.[0-9a-f]{8}\.[A-Za-z0-9+/]+=*$/, 'versioned and tagged with the key id')
  }
})

t.test('any changed byte of a ciphertext is detected', async (t) => {
  const ciphertext = secrets.encrypt('+14155550167')
  const [version, id, payload] = ciphertext.split('.') as [string, string, string]
  const raw = Buffer.from(payload, 'base64')
  for (let i = 0; i < raw.length; i++) {
    const tampered = Buffer.from(raw)
    tampered[i] = (tampered[i] as number) ^ 0x01
    t.throws(() => secrets.decrypt(`${version}.${id}.${tampered.toString('base64')}`), `byte ${i} (${i < 12 ? 'iv' : i < 28 ? 'tag' : 'body'})`)
  }
})

t.test('truncated, empty, foreign and malformed ciphertexts are refused', async (t) => {
  const ciphertext = secrets.encrypt('+14155550167')
  const [version, id, payload] = ciphertext.split('.') as [string, string, string]
  const raw = Buffer.from(payload, 'base64')
  t.throws(() => secrets.decrypt(`${version}.${id}.${raw.subarray(0, 16).toString('base64')}`), 'a 4-byte tag is not enough')
  t.throws(() => secrets.decrypt(`${version}.${id}.${raw.subarray(0, 27).toString('base64')}`), 'shorter than iv and tag')
  t.throws(() => secrets.decrypt(`${version}.${id}.`), 'empty payload')
  t.throws(() => secrets.decrypt(`${version}.${id}`), 'no payload')
  t.throws(() => secrets.decrypt(`v2.${id}.${payload}`), 'unknown version')
  t.throws(() => secrets.decrypt('garbage'), 'garbage')
  t.throws(() => other.decrypt(ciphertext), /key [0-9a-f]{8} is neither SECRET_KEY nor SECRET_KEY_PREVIOUS/, 'another key is named by id, not by value')
  const [, otherId] = other.encrypt('x').split('.') as [string, string]
  t.throws(() => other.decrypt(`${version}.${otherId}.${payload}`), 'another key cannot open it even with its own id')
})

t.test('the blind index is deterministic per key and purpose, and reveals nothing', async (t) => {
  const index = secrets.blindIndex('phone', '+14155550167')
  t.equal(secrets.blindIndex('phone', '+14155550167'), index, 'same input, same index')
  t.match(index, /^[0-9a-f]{64}$/)
  t.notMatch(index, '4155550167')
  t.not(secrets.blindIndex('phone', '+14155550168'), index, 'another number')
  t.not(secrets.blindIndex('email', '+14155550167'), index, 'another purpose')
  t.not(other.blindIndex('phone', '+14155550167'), index, 'another key')
})

t.test('code hashes are bound to their challenge and keyed', async (t) => {
  const hash = secrets.codeHash('challenge-a', '123456')
  t.match(hash, /^[0-9a-f]{64}$/)
  t.equal(secrets.codeHash('challenge-a', '123456'), hash)
  t.not(secrets.codeHash('challenge-b', '123456'), hash, 'useless for another challenge')
  t.not(secrets.codeHash('challenge-a', '123457'), hash)
  t.not(other.codeHash('challenge-a', '123456'), hash, 'useless under another key')
})

t.test('sameHash compares digests, refusing different lengths and empty ones', async (t) => {
  const hash = secrets.codeHash('c', '123456')
  t.equal(secrets.sameHash(hash, hash), true)
  t.equal(secrets.sameHash(hash, secrets.codeHash('c', '654321')), false)
  t.equal(secrets.sameHash(hash, hash.slice(0, 62)), false, 'shorter')
  t.equal(secrets.sameHash('', ''), false, 'empty never matches')
  t.equal(secrets.sameHash(hash, 'not hex at all'), false)
})
