import { createServer } from 'node:net'

/** A TCP port nothing listens on right now, for a child process or a second server to take. */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => { resolve(port) })
    }).on('error', reject)
  })
}
