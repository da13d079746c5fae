import { Agent, request } from 'node:http'

export interface Answer { status: number, body: string, headers: Record<string, string | string[] | undefined>, localPort: number, at: number }

/**
 * A client that sends its requests one after another on one keep-alive connection, as an
 * HTTP/1.1 client pool does: `localPort` tells which connection carried each.
 */
export function oneConnection (port: number, headers: Record<string, string> = {}) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  return {
    async send (method: string, path: string, body?: unknown): Promise<Answer> {
      return await new Promise((resolve, reject) => {
        const payload = body === undefined ? undefined : JSON.stringify(body)
        const req = request({
          host: '127.0.0.1',
          port,
          path,
          method,
          agent,
          headers: { ...headers, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) }
        }, (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (chunk: string) => { text += chunk })
          res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers, localPort, at: Date.now() }) })
        })
        let localPort = 0
        req.on('socket', (socket) => {
          if (socket.localPort !== undefined) localPort = socket.localPort
          else socket.once('connect', () => { localPort = socket.localPort ?? 0 })
        })
        req.on('error', reject)
        req.end(payload)
      })
    },
    close () { agent.destroy() }
  }
}
