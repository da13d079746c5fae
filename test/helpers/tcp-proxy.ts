// A TCP proxy a test can cut: put it between the service and the shared PostgreSQL to
// make "the database went away" happen to this test's connections only.
//
//   const proxy = await startTcpProxy(t, { host: '127.0.0.1', port: 5432 })
//   proxy.cut()      // destroy every open connection and refuse new ones
//   proxy.hang()     // keep connections open but stop forwarding: a black hole
//   proxy.restore()  // forward again
import { createServer, connect, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'

export type ProxyMode = 'forward' | 'cut' | 'hang'

export interface TcpProxy {
  readonly port: number
  readonly mode: ProxyMode
  /** Connections currently open through the proxy. */
  readonly open: number
  cut (): void
  hang (): void
  restore (): void
  close (): Promise<void>
}

interface Teardown { teardown (fn: () => unknown): void }

export async function startTcpProxy (t: Teardown, target: { host: string, port: number }): Promise<TcpProxy> {
  let mode: ProxyMode = 'forward'
  const pairs = new Set<{ client: Socket, upstream: Socket }>()

  const server = createServer((client) => {
    client.on('error', () => {})
    if (mode === 'cut') {
      // Closed straight away: the driver sees the connection end before the server greeting.
      client.destroy()
      return
    }
    const upstream = connect(target.port, target.host)
    upstream.on('error', () => { client.destroy() })
    const pair = { client, upstream }
    pairs.add(pair)
    const forget = () => { pairs.delete(pair); client.destroy(); upstream.destroy() }
    client.on('close', forget)
    upstream.on('close', forget)
    // Data is only passed on in forward mode; in hang mode it is held back (and dropped).
    client.on('data', (chunk) => { if (mode === 'forward') upstream.write(chunk) })
    upstream.on('data', (chunk) => { if (mode === 'forward') client.write(chunk) })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port

  const proxy: TcpProxy = {
    port,
    get mode () { return mode },
    get open () { return pairs.size },
    cut () {
      mode = 'cut'
      for (const { client, upstream } of pairs) { client.destroy(); upstream.destroy() }
      pairs.clear()
    },
    hang () { mode = 'hang' },
    restore () {
      // Connections that lived through a hang have lost bytes: they are unusable, close them.
      if (mode === 'hang') for (const { client, upstream } of pairs) { client.destroy(); upstream.destroy() }
      mode = 'forward'
    },
    async close () {
      for (const { client, upstream } of pairs) { client.destroy(); upstream.destroy() }
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
  t.teardown(async () => { await proxy.close() })
  return proxy
}
