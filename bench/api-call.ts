/** One JSON call to the service under measurement, authenticated with the bench's key. */
export async function apiCall (base: string, apiKey: string, method: string, path: string, body?: unknown): Promise<{ status: number, json: any }> {
  const response = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await response.text()
  return { status: response.status, json: text === '' ? null : JSON.parse(text) }
}
