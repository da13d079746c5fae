import t from 'tap'
import { ipCountingKey } from '../../src/lib/client-ip.js'

t.test('IPv4 is counted per address, IPv6 per /64', async (t) => {
  t.equal(ipCountingKey('203.0.113.7'), '203.0.113.7')
  t.equal(ipCountingKey('::ffff:203.0.113.7'), '203.0.113.7', 'IPv4-mapped is the IPv4 address')
  t.equal(ipCountingKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd'), '2001:db8:1:2::/64')
  t.equal(ipCountingKey('2001:0db8:0001:0002::1'), '2001:db8:1:2::/64', 'leading zeros do not make another key')
  t.equal(ipCountingKey('2001:db8::1'), '2001:db8:0:0::/64')
  t.equal(ipCountingKey('2001:db8:0:0:ffff::2'), ipCountingKey('2001:db8::1'), 'the same /64 written two ways')
  t.not(ipCountingKey('2001:db8:0:1::1'), ipCountingKey('2001:db8::1'), 'the next /64 is another client')
  t.equal(ipCountingKey('::1'), '0:0:0:0::/64')
})
