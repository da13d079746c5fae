// /docs in a real browser: Swagger UI must load its assets from the service (no CDN), fetch
// the document and render every operation. Needs Chromium: scripts/ensure-chromium.sh
// installs Debian's package when it can; otherwise this file skips and says why.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { parse } from 'yaml'
import { buildTestApp } from '../helpers/app.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const ENSURE = fileURLToPath(new URL('../../scripts/ensure-chromium.sh', import.meta.url))
const OPENAPI = fileURLToPath(new URL('../../openapi.yaml', import.meta.url))

// .ci/run installs Chromium before the tests; when this file has to do it, a first install
// (~110 MB, 35 s on the CI machine) must fit in tap's per-file limit (package.json: 120 s).
const ensured = spawnSync(ENSURE, { encoding: 'utf8', timeout: 90_000, env: { ...process.env, CHROMIUM_PATH: CHROMIUM } })

if (ensured.status !== 0) {
  t.skip(`Chromium is not available at ${CHROMIUM} and scripts/ensure-chromium.sh could not install it: ${(ensured.stderr || ensured.error?.message || 'no reason given').trim().split('\n').slice(-1)[0]}`)
} else {
  t.test('Swagger UI at /docs renders every operation of openapi.yaml', async (t) => {
    const document = parse(await readFile(OPENAPI, 'utf8')) as { paths: Record<string, Record<string, unknown>> }
    const expected = Object.entries(document.paths).flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`))

    const ctx = await buildTestApp(t)
    const address = await ctx.app.listen({ host: '127.0.0.1', port: 0 })
    // Root in a container: Chromium's sandbox needs user namespaces it does not get here.
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] })
    t.teardown(async () => { await browser.close() })
    const page = await browser.newPage()
    const external: string[] = []
    page.on('request', (request) => { if (!request.url().startsWith(address)) external.push(request.url()) })

    const response = await page.goto(`${address}/docs`)
    t.equal(response?.status(), 200, 'the docs page loads')
    await page.waitForSelector('.opblock-summary-path', { timeout: 30_000 })

    const rendered = await page.$$eval('.opblock', (blocks) => blocks.map((block) => {
      const method = block.querySelector('.opblock-summary-method')?.textContent?.trim() ?? ''
      const path = block.querySelector('.opblock-summary-path')?.getAttribute('data-path') ?? block.querySelector('.opblock-summary-path')?.textContent?.trim() ?? ''
      return `${method} ${path.replace(/\u200b/g, '')}`
    }))
    t.ok(rendered.includes('POST /v1/logins'), 'the login route is listed')
    t.same([...rendered].sort(), [...expected].sort(), 'the page lists exactly the operations of openapi.yaml')
    t.same(external, [], 'nothing is loaded from outside the service')
  })
}
