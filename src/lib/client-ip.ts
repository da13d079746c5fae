import { isIP } from 'node:net'

/**
 * The key a client address is counted under. An IPv6 client usually holds a whole /64
 * (SLAAC, privacy addresses), so one attacker could use a fresh address per request:
 * IPv6 is counted per /64. IPv4 (and IPv4-mapped IPv6) per address.
 */
export function ipCountingKey (ip: string): string {
  if (isIP(ip) !== 6) return ip
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  if (mapped !== null) return mapped[1] as string
  const [head = '', tail = ''] = ip.split('::') as [string, string?]
  let groups = head === '' ? [] : head.split(':')
  const rest = tail === '' ? [] : tail.split(':')
  if (ip.includes('::')) groups = [...groups, ...Array(8 - groups.length - rest.length).fill('0'), ...rest]
  return `${groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`
}
