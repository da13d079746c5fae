// `npm run reencrypt`: after a key rotation (SECRET_KEY new, SECRET_KEY_PREVIOUS the old
// one), rewrites every stored ciphertext under the new key. When it reports 0 failed,
// SECRET_KEY_PREVIOUS can be removed. Safe to run while the service runs, and again.
import { createDatabase } from '../db/database.js'
import { loadConfigOrExit } from '../lib/config.js'
import { reEncryptSecrets } from '../lib/re-encrypt.js'
import { createSecrets } from '../lib/secrets.js'

async function main (): Promise<number> {
  const config = await loadConfigOrExit()
  const db = await createDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR })
  try {
    const secrets = createSecrets(config.SECRET_KEY, config.SECRET_KEY_PREVIOUS)
    const { updated, failed } = await reEncryptSecrets({
      db,
      secrets,
      log: {
        info: (obj, msg) => { process.stdout.write(`${msg}: ${JSON.stringify(obj)}\n`) },
        error: (obj, msg) => { process.stderr.write(`${msg}: ${JSON.stringify(obj)}\n`) }
      }
    })
    process.stdout.write(`Re-encrypted ${updated} value(s) under key ${secrets.keyId}; ${failed} could not be decrypted.\n`)
    return failed === 0 ? 0 : 1
  } finally {
    await db.close()
  }
}

main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`Re-encryption failed: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
