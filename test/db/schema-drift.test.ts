// The migrations are hand-written SQL, so nothing else keeps them in step with
// prisma/schema.prisma: this test derives what the schema asks for from Prisma's own
// parser (the DMMF) and compares it with what the migrated database really contains.
import { readFile } from 'node:fs/promises'
import t from 'tap'
import pg from 'pg'
import internals from '@prisma/internals'
import { migratedDatabase } from '../helpers/database.js'

const SCHEMA_FILE = new URL('../../prisma/schema.prisma', import.meta.url)
// Postgres truncates identifiers to 63 bytes, and Prisma shortens default names to fit.
const MAX_IDENTIFIER = 63

interface Column { type: string, notNull: boolean, default: string | null }
interface Index { unique: boolean, columns: string[] }
interface ForeignKey { columns: string[], table: string, references: string[], onDelete: string, onUpdate: string }
interface Table {
  columns: Record<string, Column>
  primaryKey: { name: string, columns: string[] } | null
  indexes: Record<string, Index>
  foreignKeys: Record<string, ForeignKey>
  /** Constraints Prisma never creates (CHECK, UNIQUE constraints, exclusions): any is drift. */
  other: string[]
}
type Shape = Record<string, Table>

type Dmmf = Awaited<ReturnType<typeof internals.getDMMF>>
type DmmfModel = Dmmf['datamodel']['models'][number]
type DmmfField = DmmfModel['fields'][number]

// ---------------------------------------------------------------------------
// What the schema declares, read from the DMMF

function defaultName (table: string, columns: string[], suffix: string): string {
  let base = [table, ...columns].join('_')
  if (base.length >= MAX_IDENTIFIER - suffix.length) base = base.slice(0, MAX_IDENTIFIER - suffix.length)
  return base + suffix
}

/** Column type as format_type() prints it. Fails on anything the mapping does not know rather than guessing. */
function expectedType (field: DmmfField): string {
  const [native, args = []] = (field.nativeType ?? [null, []]) as [string | null, string[]]
  const precision = args.length > 0 ? `(${args.join(',')})` : ''
  const key = `${field.type}${native === null ? '' : ` @db.${native}`}`
  const base = ({
    String: 'text',
    'String @db.Text': 'text',
    'String @db.VarChar': `character varying${precision}`,
    'String @db.Uuid': 'uuid',
    Int: 'integer',
    'Int @db.SmallInt': 'smallint',
    BigInt: 'bigint',
    Float: 'double precision',
    Decimal: 'numeric(65,30)',
    Boolean: 'boolean',
    DateTime: 'timestamp(3) without time zone',
    'DateTime @db.Timestamptz': `timestamp${precision} with time zone`,
    'DateTime @db.Timestamp': `timestamp${precision} without time zone`,
    'DateTime @db.Date': 'date',
    Json: 'jsonb',
    'Json @db.Json': 'json',
    Bytes: 'bytea'
  } as Record<string, string | undefined>)[key]
  if (base === undefined || field.kind !== 'scalar') {
    throw new Error(`schema-drift test: no mapping for ${field.name} (${field.kind} ${key}); extend expectedType()`)
  }
  return field.isList ? `${base}[]` : base
}

/** The default as pg_get_expr() prints it; null when Prisma keeps it out of the database. */
function expectedDefault (field: DmmfField): string | null {
  if (!field.hasDefaultValue) return null
  const value = field.default as unknown
  if (typeof value === 'object' && value !== null && 'name' in value) {
    const fn = value as { name: string, args: unknown[] }
    if (fn.name === 'now') return 'CURRENT_TIMESTAMP'
    // Filled in by Prisma Client, never by the database.
    if (['uuid', 'cuid', 'nanoid', 'ulid'].includes(fn.name)) return null
    if (fn.name === 'dbgenerated' && typeof fn.args[0] === 'string') return fn.args[0]
    throw new Error(`schema-drift test: no rendering for default ${fn.name}() on ${field.name}; extend expectedDefault()`)
  }
  const quoted = (text: string, cast: string): string => `'${text.replaceAll("'", "''")}'::${cast}`
  if (field.type === 'String' && typeof value === 'string') return quoted(value, 'text')
  if (field.type === 'Json' && typeof value === 'string') return quoted(value, 'jsonb')
  if (field.type === 'Boolean' && typeof value === 'boolean') return String(value)
  if ((field.type === 'Int' || field.type === 'BigInt') && typeof value === 'number') return String(value)
  throw new Error(`schema-drift test: no rendering for default ${JSON.stringify(value)} on ${field.name}; extend expectedDefault()`)
}

const REFERENTIAL_ACTIONS: Record<string, string> = {
  Cascade: 'CASCADE', Restrict: 'RESTRICT', NoAction: 'NO ACTION', SetNull: 'SET NULL', SetDefault: 'SET DEFAULT'
}

function expectedShape (dmmf: Dmmf): Shape {
  const models = new Map(dmmf.datamodel.models.map((model) => [model.name, model]))
  const tableOf = (model: DmmfModel): string => model.dbName ?? model.name
  const columnOf = (model: DmmfModel, fieldName: string): string => {
    const field = model.fields.find((f) => f.name === fieldName)
    if (field === undefined) throw new Error(`${model.name}.${fieldName} is not a field`)
    return field.dbName ?? field.name
  }

  const shape: Shape = {}
  for (const model of dmmf.datamodel.models) {
    const table = tableOf(model)
    const entry: Table = { columns: {}, primaryKey: null, indexes: {}, foreignKeys: {}, other: [] }
    for (const field of model.fields) {
      if (field.kind === 'object') continue
      entry.columns[field.dbName ?? field.name] = {
        type: expectedType(field),
        // Prisma creates list columns without NOT NULL, even for a required String[].
        notNull: field.isRequired && !field.isList,
        default: expectedDefault(field)
      }
    }
    for (const field of model.fields) {
      if (field.kind !== 'object' || (field.relationFromFields ?? []).length === 0) continue
      const target = models.get(field.type)
      if (target === undefined) throw new Error(`relation ${model.name}.${field.name} points at unknown ${field.type}`)
      const columns = field.relationFromFields!.map((name) => columnOf(model, name))
      // Prisma's defaults when @relation does not say: required relations restrict, optional ones set null.
      const onDelete = field.relationOnDelete ?? (field.isRequired ? 'Restrict' : 'SetNull')
      const onUpdate = (field as { relationOnUpdate?: string }).relationOnUpdate ?? 'Cascade'
      entry.foreignKeys[defaultName(table, columns, '_fkey')] = {
        columns,
        table: tableOf(target),
        references: (field.relationToFields ?? []).map((name) => columnOf(target, name)),
        onDelete: REFERENTIAL_ACTIONS[onDelete] ?? onDelete,
        onUpdate: REFERENTIAL_ACTIONS[onUpdate] ?? onUpdate
      }
    }
    shape[table] = entry
  }

  for (const index of dmmf.datamodel.indexes) {
    const model = models.get(index.model)
    if (model === undefined) throw new Error(`index on unknown model ${index.model}`)
    const table = tableOf(model)
    const entry = shape[table]!
    const columns = index.fields.map((f) => columnOf(model, f.name))
    const dbName = (index as { dbName?: string | null }).dbName ?? undefined
    if (index.type === 'id') {
      entry.primaryKey = { name: dbName ?? defaultName(table, [], '_pkey'), columns }
    } else if (index.type === 'unique') {
      entry.indexes[dbName ?? defaultName(table, columns, '_key')] = { unique: true, columns }
    } else if (index.type === 'normal') {
      entry.indexes[dbName ?? defaultName(table, columns, '_idx')] = { unique: false, columns }
    } else {
      throw new Error(`schema-drift test: ${index.type} indexes are not handled; extend expectedShape()`)
    }
  }
  return shape
}

// ---------------------------------------------------------------------------
// What the database has, read from pg_catalog

const ACTION_CODES: Record<string, string> = { a: 'NO ACTION', r: 'RESTRICT', c: 'CASCADE', n: 'SET NULL', d: 'SET DEFAULT' }

async function actualShape (url: string): Promise<Shape> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const schema = 'current_schema()'
    const tables = await client.query<{ table: string }>(`
      SELECT c.relname AS table FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND n.nspname = ${schema} AND c.relname <> '_prisma_migrations'`)
    const shape: Shape = {}
    for (const { table } of tables.rows) {
      shape[table] = { columns: {}, primaryKey: null, indexes: {}, foreignKeys: {}, other: [] }
    }

    const columns = await client.query<{ table: string, column: string, type: string, not_null: boolean, default: string | null }>(`
      SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type,
             a.attnotnull AS not_null, pg_get_expr(d.adbin, d.adrelid) AS default
      FROM pg_attribute a
      JOIN pg_class c ON c.oid = a.attrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE n.nspname = ${schema} AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped`)
    for (const row of columns.rows) {
      const table = shape[row.table]
      if (table !== undefined) table.columns[row.column] = { type: row.type, notNull: row.not_null, default: row.default }
    }

    // Every index with its key columns in order; expression and partial indexes show up
    // as such, because the schema cannot declare either.
    const indexes = await client.query<{ table: string, name: string, unique: boolean, primary: boolean, columns: string[], method: string, partial: boolean, expressions: boolean }>(`
      SELECT t.relname AS table, i.relname AS name, x.indisunique AS unique, x.indisprimary AS primary,
             ARRAY(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
                   JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
                   ORDER BY k.ord)::text[] AS columns,
             am.amname AS method, x.indpred IS NOT NULL AS partial, x.indexprs IS NOT NULL AS expressions
      FROM pg_index x
      JOIN pg_class i ON i.oid = x.indexrelid
      JOIN pg_class t ON t.oid = x.indrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
      JOIN pg_am am ON am.oid = i.relam
      WHERE n.nspname = ${schema}`)
    const constraints = await client.query<{ table: string, name: string, type: string, columns: string[], ref_table: string | null, ref_columns: string[] | null, on_delete: string, on_update: string }>(`
      SELECT t.relname AS table, c.conname AS name, c.contype AS type,
             ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
                   JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord)::text[] AS columns,
             r.relname AS ref_table,
             ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord)
                   JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.ord)::text[] AS ref_columns,
             c.confdeltype AS on_delete, c.confupdtype AS on_update
      FROM pg_constraint c
      JOIN pg_class t ON t.oid = c.conrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
      LEFT JOIN pg_class r ON r.oid = c.confrelid
      WHERE n.nspname = ${schema} AND c.contype <> 'n'`)

    const primaryIndexNames = new Set<string>()
    for (const row of constraints.rows) {
      const table = shape[row.table]
      if (table === undefined) continue
      if (row.type === 'p') {
        table.primaryKey = { name: row.name, columns: row.columns }
        primaryIndexNames.add(row.name)
      } else if (row.type === 'f') {
        table.foreignKeys[row.name] = {
          columns: row.columns,
          table: row.ref_table ?? '?',
          references: row.ref_columns ?? [],
          onDelete: ACTION_CODES[row.on_delete] ?? row.on_delete,
          onUpdate: ACTION_CODES[row.on_update] ?? row.on_update
        }
      } else {
        table.other.push(`${row.type === 'u' ? 'UNIQUE constraint' : row.type === 'c' ? 'CHECK constraint' : `constraint (${row.type})`} ${row.name}`)
      }
    }
    for (const row of indexes.rows) {
      const table = shape[row.table]
      if (table === undefined || (row.primary && primaryIndexNames.has(row.name))) continue
      if (row.method !== 'btree' || row.partial || row.expressions) {
        table.other.push(`index ${row.name} (${row.method}${row.partial ? ', partial' : ''}${row.expressions ? ', on expressions' : ''})`)
      }
      table.indexes[row.name] = { unique: row.unique, columns: row.columns }
    }
    return shape
  } finally {
    await client.end()
  }
}

// ---------------------------------------------------------------------------
// The comparison: one readable line per difference

const show = (value: unknown): string => JSON.stringify(value)

function compareShapes (expected: Shape, actual: Shape): string[] {
  const drift: string[] = []
  for (const table of Object.keys(expected)) {
    if (actual[table] === undefined) drift.push(`table ${table}: declared in the schema, missing from the database`)
  }
  for (const table of Object.keys(actual)) {
    if (expected[table] === undefined) drift.push(`table ${table}: in the database, not in the schema`)
  }
  for (const [name, want] of Object.entries(expected)) {
    const got = actual[name]
    if (got === undefined) continue
    for (const [column, spec] of Object.entries(want.columns)) {
      const have = got.columns[column]
      if (have === undefined) { drift.push(`column ${name}.${column}: missing from the database`); continue }
      if (have.type !== spec.type) drift.push(`column ${name}.${column}: type ${have.type}, schema says ${spec.type}`)
      if (have.notNull !== spec.notNull) drift.push(`column ${name}.${column}: ${have.notNull ? 'NOT NULL' : 'nullable'}, schema says ${spec.notNull ? 'NOT NULL' : 'nullable'}`)
      if (have.default !== spec.default) drift.push(`column ${name}.${column}: default ${show(have.default)}, schema says ${show(spec.default)}`)
    }
    for (const column of Object.keys(got.columns)) {
      if (want.columns[column] === undefined) drift.push(`column ${name}.${column}: in the database, not in the schema`)
    }
    if (show(got.primaryKey) !== show(want.primaryKey)) {
      drift.push(`primary key of ${name}: ${show(got.primaryKey)}, schema says ${show(want.primaryKey)}`)
    }
    for (const [index, spec] of Object.entries(want.indexes)) {
      const have = got.indexes[index]
      if (have === undefined) drift.push(`index ${index} on ${name}: missing from the database`)
      else if (show(have) !== show(spec)) drift.push(`index ${index} on ${name}: ${show(have)}, schema says ${show(spec)}`)
    }
    for (const index of Object.keys(got.indexes)) {
      if (want.indexes[index] === undefined) drift.push(`index ${index} on ${name}: in the database, not in the schema`)
    }
    for (const [fk, spec] of Object.entries(want.foreignKeys)) {
      const have = got.foreignKeys[fk]
      if (have === undefined) drift.push(`foreign key ${fk} on ${name}: missing from the database`)
      else if (show(have) !== show(spec)) drift.push(`foreign key ${fk} on ${name}: ${show(have)}, schema says ${show(spec)}`)
    }
    for (const fk of Object.keys(got.foreignKeys)) {
      if (want.foreignKeys[fk] === undefined) drift.push(`foreign key ${fk} on ${name}: in the database, not in the schema`)
    }
    for (const extra of got.other) drift.push(`${extra} on ${name}: the schema cannot declare it`)
  }
  return drift
}

// ---------------------------------------------------------------------------

const dmmf = await internals.getDMMF({ datamodel: await readFile(SCHEMA_FILE, 'utf8') })
const expected = expectedShape(dmmf)

t.test('the expected side really comes from the schema', async (t) => {
  // Guards against a vacuous comparison (e.g. a DMMF that parsed to nothing).
  t.equal(Object.keys(expected).length, dmmf.datamodel.models.length)
  t.ok(dmmf.datamodel.models.length >= 8, 'all models parsed')
  t.same(expected.phones?.indexes.phones_user_id_slot_key, { unique: true, columns: ['user_id', 'slot'] })
  t.same(expected.users?.indexes.users_organization_id_idx, { unique: false, columns: ['organization_id'] })
  t.same(expected.api_clients?.columns.scopes, { type: 'text[]', notNull: false, default: null })
  t.same(expected.users?.columns.created_at, { type: 'timestamp(3) with time zone', notNull: true, default: 'CURRENT_TIMESTAMP' })
  t.same(expected.deliveries?.foreignKeys.deliveries_user_id_fkey, {
    columns: ['user_id'], table: 'users', references: ['id'], onDelete: 'CASCADE', onUpdate: 'CASCADE'
  })
})

t.test('the migrated database matches prisma/schema.prisma', async (t) => {
  const { url } = await migratedDatabase(t)
  const actual = await actualShape(url)
  const drift = compareShapes(expected, actual)
  t.same(drift, [], drift.length === 0 ? 'no drift' : `drift:\n  ${drift.join('\n  ')}`)
  t.same(Object.keys(actual).sort(), Object.keys(expected).sort(), 'every table in the database is a model, and every model a table')
})

t.test('the comparison reports drift', async (t) => {
  const { url, db } = await migratedDatabase(t)
  const conn = await db.connect()
  try {
    await conn.exec(`
      ALTER TABLE phones DROP COLUMN label;
      DROP INDEX users_organization_id_idx;
      DROP INDEX phones_user_id_slot_key;
      CREATE INDEX phones_user_id_slot_key ON phones (user_id, slot);
      ALTER TABLE users ALTER COLUMN role DROP DEFAULT;
      ALTER TABLE users ALTER COLUMN locked_reason SET NOT NULL;
      ALTER TABLE api_clients ALTER COLUMN revoked_at TYPE TIMESTAMPTZ(6);
      ALTER TABLE api_clients ALTER COLUMN scopes TYPE TEXT USING array_to_string(scopes, ',');
      ALTER TABLE deliveries DROP CONSTRAINT deliveries_user_id_fkey;
      ALTER TABLE deliveries ADD CONSTRAINT deliveries_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE SET NULL ON UPDATE CASCADE;
      ALTER TABLE security_events ADD COLUMN extra TEXT;
      ALTER TABLE otp_challenges ADD CONSTRAINT otp_challenges_purpose_check CHECK (purpose <> '');
      CREATE TABLE stray (id INTEGER PRIMARY KEY);
    `)
  } finally {
    await conn.release()
  }
  const drift = compareShapes(expected, await actualShape(url))
  const expectedReports = [
    /^column phones\.label: missing/,
    /^index users_organization_id_idx on users: missing/,
    /^index phones_user_id_slot_key on phones: .*"unique":false.*schema says .*"unique":true/,
    /^column users\.role: default null, schema says "'staff'::text"/,
    /^column users\.locked_reason: NOT NULL, schema says nullable/,
    /^column api_clients\.revoked_at: type timestamp\(6\) with time zone, schema says timestamp\(3\) with time zone/,
    /^column api_clients\.scopes: type text, schema says text\[\]/,
    /^foreign key deliveries_user_id_fkey on deliveries: .*SET NULL.*schema says .*CASCADE/,
    /^column security_events\.extra: in the database, not in the schema/,
    /^CHECK constraint otp_challenges_purpose_check on otp_challenges/,
    /^table stray: in the database, not in the schema/
  ]
  for (const pattern of expectedReports) {
    t.ok(drift.some((line) => pattern.test(line)), `reports ${pattern.source}`)
  }
  t.equal(drift.length, expectedReports.length, `nothing else reported:\n  ${drift.join('\n  ')}`)

  // And the reverse direction on its own: a model whose table is gone.
  await db.connect().then(async (c) => { try { await c.exec('DROP TABLE login_throttles') } finally { await c.release() } })
  t.ok(compareShapes(expected, await actualShape(url)).includes('table login_throttles: declared in the schema, missing from the database'))
})
