/** Who did something, as written into security events. */
export interface RequestContext {
  ip: string | null
  userAgent: string | null
  /** Ties the event's log line to the request's access line; not stored with the event. */
  requestId?: string | undefined
}
