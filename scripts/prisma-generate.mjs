// Generates the Prisma client offline. Prisma 7's CLI looks for a schema-engine
// binary it would otherwise download; `generate` never runs it, so any existing
// file satisfies the check. Runs on `npm ci`, before tests and before builds.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const cli = fileURLToPath(new URL('../node_modules/prisma/build/index.js', import.meta.url))
if (!existsSync(cli)) {
  // A production install (npm ci --omit=dev) has no CLI: the image generated the client at build time.
  process.exit(0)
}
const env = { ...process.env, PRISMA_HIDE_UPDATE_MESSAGE: '1' }
env.PRISMA_SCHEMA_ENGINE_BINARY ??= process.execPath
const result = spawnSync(process.execPath, [cli, 'generate'], { stdio: ['ignore', 'ignore', 'inherit'], env })
process.exit(result.status ?? 1)
