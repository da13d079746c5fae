/** Who did something, as written into security events. */
export interface RequestContext {
  ip: string | null
  userAgent: string | null
}
