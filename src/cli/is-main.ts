import { realpathSync } from 'node:fs'
import { pathToFileURL } from 'node:url'

/**
 * True when the module is the program node was started with, not an import: the CLIs share
 * their parsers and runners with the admin CLI. Node loads the main module by its real path,
 * so argv[1] is resolved the same way (a symlinked checkout or /app in a container).
 */
export function isMain (moduleUrl: string): boolean {
  const entry = process.argv[1]
  if (entry === undefined) return false
  try {
    return moduleUrl === pathToFileURL(realpathSync(entry)).href
  } catch {
    return false
  }
}
