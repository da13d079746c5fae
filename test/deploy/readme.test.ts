// The README is what a newcomer and ops follow: its configuration table must list every
// setting the service reads, so a new setting cannot go undocumented.
import t from 'tap'
import { readFile } from 'node:fs/promises'
import { CONFIG_VARIABLES } from '../../src/lib/config.js'

const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8')

t.test('the configuration table lists every setting with a default and a meaning', async (t) => {
  const rows = new Map(readme.split('\n')
    .map((line) => /^\| `([A-Z0-9_]+)` \|(.*)$/.exec(line))
    .filter((match) => match !== null)
    .map((match) => [match[1]!, match[2]!.split(' | ')]))
  for (const name of Object.keys(CONFIG_VARIABLES)) {
    const cells = rows.get(name)
    t.ok(cells !== undefined, `${name} has a row in the README's configuration table`)
    t.ok(cells !== undefined && cells.length >= 2 && cells.every((cell) => cell.replace('|', '').trim() !== ''), `${name} has a default and a meaning`)
  }
  for (const name of rows.keys()) t.ok(name in CONFIG_VARIABLES, `the README's ${name} is a real setting`)
})

t.test('the README gives the commands the contract promises', async (t) => {
  for (const command of ['npm ci', 'npm start', 'npm test', 'npm run --silent keys -- create --name', 'npm run openapi']) {
    t.ok(readme.includes(command), command)
  }
})
