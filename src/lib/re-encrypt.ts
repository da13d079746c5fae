import type { PrismaClient } from '../generated/prisma/client.js'
import type { Secrets } from './secrets.js'

/** A column holding `Secrets.encrypt` output; `index` is its blind index, recomputed with the current key. */
export interface EncryptedColumn {
  table: string
  id: string
  column: string
  index?: { column: string, purpose: 'phone' | 'email' }
}

/** Every encrypted column of the database. A new encrypted column (a TOTP secret, say) is added here and nowhere else. */
export const ENCRYPTED_COLUMNS: EncryptedColumn[] = [
  { table: 'phones', id: 'id', column: 'number_cipher', index: { column: 'number_index', purpose: 'phone' } },
  { table: 'otp_challenges', id: 'id', column: 'pending_number_cipher', index: { column: 'pending_number_index', purpose: 'phone' } },
  { table: 'totp_factors', id: 'user_id', column: 'secret_cipher' },
  { table: 'totp_factors', id: 'user_id', column: 'pending_secret_cipher' }
]

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/
function quote (name: string): string {
  if (!IDENTIFIER.test(name)) throw new Error(`not a plain identifier: ${name}`)
  return `"${name}"`
}

interface Logger { info (obj: object, msg: string): void, error (obj: object, msg: string): void }

/**
 * Rewrites every ciphertext that is not under the current key (after a rotation:
 * SECRET_KEY new, SECRET_KEY_PREVIOUS old). Each row is updated only if it still holds
 * the ciphertext that was read, so a concurrent write by the running service wins.
 * Safe to run again: rows already under the current key are not touched.
 */
export async function reEncryptSecrets ({ db, secrets, log, columns = ENCRYPTED_COLUMNS }: {
  db: { prisma: PrismaClient }, secrets: Secrets, log?: Logger, columns?: EncryptedColumn[]
}): Promise<{ updated: number, failed: number }> {
  let updated = 0
  let failed = 0
  for (const spec of columns) {
    const table = quote(spec.table)
    const id = quote(spec.id)
    const column = quote(spec.column)
    const rows = await db.prisma.$queryRawUnsafe<Array<{ id: string, value: string }>>(
      `SELECT ${id}::text AS id, ${column} AS value FROM ${table} WHERE ${column} IS NOT NULL AND split_part(${column}, '.', 2) <> $1`,
      secrets.keyId
    )
    for (const row of rows) {
      let plaintext: string
      try {
        plaintext = secrets.decrypt(row.value)
      } catch (err) {
        failed++
        log?.error({ table: spec.table, column: spec.column, id: row.id, err: { message: (err as Error).message } }, 'cannot decrypt; left as it is')
        continue
      }
      const fresh = secrets.encrypt(plaintext)
      const count = spec.index === undefined
        ? await db.prisma.$executeRawUnsafe(
          `UPDATE ${table} SET ${column} = $1 WHERE ${id}::text = $2 AND ${column} = $3`, fresh, row.id, row.value)
        : await db.prisma.$executeRawUnsafe(
          `UPDATE ${table} SET ${column} = $1, ${quote(spec.index.column)} = $4 WHERE ${id}::text = $2 AND ${column} = $3`,
          fresh, row.id, row.value, secrets.blindIndex(spec.index.purpose, plaintext))
      updated += count
    }
    log?.info({ table: spec.table, column: spec.column, rows: rows.length }, 're-encrypted under the current key')
  }
  return { updated, failed }
}
