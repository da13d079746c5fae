import { defineConfig } from 'prisma/config'

// The CLI is only used for `prisma generate` here: migrations are hand-written
// SQL applied by the service itself (src/db/migrate.ts), so no URL is needed.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://localhost/unused' }
})
