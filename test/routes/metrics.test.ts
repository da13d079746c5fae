import { test } from 'tap'
import { buildTestApp } from '../helpers/app.js'

test('/metrics exposes request latency by route template, never by raw URL', async (t) => {
  const ctx = await buildTestApp(t)
  await ctx.request('GET', '/health', undefined, null)
  await ctx.request('GET', '/v1/users/00000000-0000-0000-0000-000000000000')
  await ctx.request('GET', '/no-such-route-abc123', undefined, null)

  const response = await ctx.request('GET', '/metrics', undefined, null)
  t.equal(response.statusCode, 200)
  t.match(response.headers['content-type'], /^text\/plain/)
  const body = response.body
  t.match(body, /spa_http_request_duration_seconds_count\{method="GET",route="\/health",status="200"\} 1/)
  t.match(body, /spa_http_request_duration_seconds_count\{method="GET",route="\/v1\/users\/:[a-zA-Z]+",status="\d{3}"\} 1/)
  t.match(body, /route="unmatched",status="404"/)
  t.notMatch(body, /00000000-0000-0000-0000-000000000000/, 'ids from URLs never become labels')
  t.notMatch(body, /no-such-route-abc123/, 'unknown paths never become labels')
  t.match(body, /# TYPE spa_codes_sent_total counter/)
})
