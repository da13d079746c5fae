// `npm run reencrypt`: after a key rotation (SECRET_KEY new, SECRET_KEY_PREVIOUS the old
// one), rewrites every stored ciphertext under the new key. When it reports 0 failed,
// SECRET_KEY_PREVIOUS can be removed. Safe to run while the service runs, and again.
import { createDatabase, type Database } from '../db/database.js'
import { loadConfigOrExit, type Config } from '../lib/config.js'
import { reEncryptSecrets } from '../lib/re-encrypt.js'
import { createSecrets } from '../lib/secrets.js'
import { isMain } from './is-main.js'

/** The whole command against an open database; the admin CLI's `reencrypt` runs it too. Exit code 0 when nothing failed. */
export async function runReencrypt (config: Pick<Config, 'SECRET_KEY' | 'SECRET_KEY_PREVIOUS'>, db: Database, out: (text: string) => void, err: (text: string) => void): Promise<number> {
  const secrets = createSecrets(config.SECRET_KEY, config.SECRET_KEY_PREVIOUS)
  const { updated, failed } = await reEncryptSecrets({
    db,
    secrets,
    log: {
      info: (obj, msg) => { out(`${msg}: ${JSON.stringify(obj)}\n`) },
      error: (obj, msg) => { err(`${msg}: ${JSON.stringify(obj)}\n`) }
    }
  })
  out(`Re-encrypted ${updated} value(s) under key ${secrets.keyId}; ${failed} could not be decrypted.\n`)
  return failed === 0 ? 0 : 1
}

async function main (): Promise<number> {
  const config = await loadConfigOrExit()
  const db = await createDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR })
  try {
    return await runReencrypt(config, db, (text) => process.stdout.write(text), (text) => process.stderr.write(text))
  } finally {
    await db.close()
  }
}

if (isMain(import.meta.url)) main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`Re-encryption failed: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
