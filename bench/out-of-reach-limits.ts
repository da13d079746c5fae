// One client from one address logs in and sends thousands of times in a bench: every limit
// and budget stays on (its work is part of what a request costs) but is raised out of reach.
export const OUT_OF_REACH_LIMITS: Record<string, string> = {
  SMS_PER_NUMBER_PER_HOUR: '1000000',
  SMS_PER_NUMBER_PER_DAY: '1000000',
  SMS_PER_IP_PER_HOUR: '1000000',
  SMS_PER_PREFIX_PER_DAY: '100000000',
  DEFAULT_SMS_DAILY_LIMIT: '100000000',
  RATE_LIMIT_API_KEY_PER_MINUTE: '10000000',
  RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE: '1000000',
  RATE_LIMIT_SEND_PER_IP_PER_MINUTE: '1000000',
  RATE_LIMIT_VERIFY_PER_IP_PER_MINUTE: '1000000'
}
