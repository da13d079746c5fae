// Every limit and security constant of the service, each with the reason for its value.
import { availableParallelism } from 'node:os'

/** Length of one-time codes: contract section 3 fixes six digits. */
export const OTP_DIGITS = 6
/** A code stays usable for ten minutes after it is sent (contract section 3). */
export const OTP_TTL_MS = 10 * 60_000
/** A challenge outlives one code so a late resend still gets its full ten minutes. */
export const CHALLENGE_TTL_MS = 15 * 60_000
/** Wrong codes per challenge before it closes (contract section 3). */
export const MAX_CODE_ATTEMPTS_PER_CHALLENGE = 5
/** Sends per challenge (contract section 3): caps SMS cost of one login. */
export const MAX_SENDS_PER_CHALLENGE = 5
/** Minimum wait between two sends of one challenge (contract section 3); RESEND_COOLDOWN_SECONDS overrides it. */
export const RESEND_COOLDOWN_MS = 30_000

/** Wrong recovery codes in a row that lock the account until support unlocks it (contract section 3). */
export const MAX_RECOVERY_FAILURES = 3

/**
 * Wrong one-time codes in a row, across challenges, before the account's code checks pause.
 * NIST SP 800-63B 5.2.2 caps consecutive failed attempts at 100; ten keeps an online
 * guess of a 6-digit code at 1 in 100,000 per lock-out period.
 */
export const MAX_ACCOUNT_CODE_FAILURES = 10
/** The pause after MAX_ACCOUNT_CODE_FAILURES: long enough to make guessing hopeless, short enough not to strand a user. */
export const ACCOUNT_CODE_LOCKOUT_MS = 15 * 60_000

/** Wrong passwords for one email that are free before the throttle starts: typos happen. */
export const PASSWORD_FAILURES_BEFORE_THROTTLE = 5
/** First throttle wait after the free failures; it doubles with each further failure. */
export const PASSWORD_THROTTLE_BASE_MS = 30_000
/** The longest throttle wait: wrong passwords slow an account down but never lock it (contract section 3). */
export const PASSWORD_THROTTLE_MAX_MS = 15 * 60_000

// Defaults of the configurable abuse limits (src/lib/config.ts; 0 turns one off).
/** Password checks per client IP per minute: a person mistypes a few times; a spray across accounts tries thousands. */
export const DEFAULT_LOGIN_PER_IP_PER_MINUTE = 30
/** Code sends per client IP per minute: each is a paid SMS or call. */
export const DEFAULT_SEND_PER_IP_PER_MINUTE = 10
/** Code and recovery-code checks per client IP per minute: caps guessing across many challenges. */
export const DEFAULT_VERIFY_PER_IP_PER_MINUTE = 30
/** Requests per API key per minute: 100/s caps a leaked or runaway key without slowing a busy studio backend. */
export const DEFAULT_API_KEY_PER_MINUTE = 6000
/** Codes to one number per hour / day: a person needs a few; an SMS-pumping scheme needs hundreds. */
export const DEFAULT_SMS_PER_NUMBER_PER_HOUR = 10
export const DEFAULT_SMS_PER_NUMBER_PER_DAY = 30
/** Codes for one client IP per hour: one attacker cycling through many numbers. */
export const DEFAULT_SMS_PER_IP_PER_HOUR = 30
/** Codes to one country calling code per day: caps the bill of a pumping burst to one region. */
export const DEFAULT_SMS_PER_PREFIX_PER_DAY = 5000

/** Password length bounds (contract section 1); 256 bounds the argon2 input. */
export const PASSWORD_MIN_LENGTH = 8
export const PASSWORD_MAX_LENGTH = 256

/** Verified phones per user: one primary and backups (contract section 2). */
export const MAX_PHONES_PER_USER = 3
/** Phone verifications a user may start per hour: each one is a paid SMS or call. */
export const PHONE_VERIFICATIONS_PER_HOUR = 5

/** Recovery code: 20 symbols of a 31-symbol alphabet = 99 bits (80 is the floor), in groups of 4 for reading aloud. */
export const RECOVERY_CODE_GROUPS = 5
export const RECOVERY_CODE_GROUP_LENGTH = 4
/** No 0/O, 1/I/L: the code must survive being read aloud over the phone and typed by hand. */
export const RECOVERY_CODE_ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ'

/** Largest request body: every legitimate body is well under 4 KiB. */
export const BODY_LIMIT_BYTES = 16 * 1024

/** OWASP Password Storage Cheat Sheet's argon2id baseline: m=19 MiB, t=2, p=1. */
export const ARGON2_DEFAULTS = { memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const

/**
 * argon2 admission control (src/lib/hash-gate.ts): one hash in flight per core but one. The
 * core left over runs the event loop and PostgreSQL, so a password flood cannot starve code
 * checks; on 2 cores one hash at a time gave the same login rate as two (bench, issue 6).
 */
export const HASH_CONCURRENCY = Math.max(1, availableParallelism() - 1)
/** Hashes waiting for a slot: beyond this a login is refused at once (503 overloaded), not queued. */
export const HASH_QUEUE_MAX = 64
/** Longest a login waits for a hash slot: a user would rather retry than stare at a spinner. */
export const HASH_MAX_WAIT_MS = 2_000
/**
 * The share of a hash slot's time hashing may use while logins are being refused: each hash
 * is then followed by a rest as long as itself. A flood's wrong passwords otherwise kept a
 * whole core busy, and code checks beside it fell under half their pace (bench, issue 6).
 */
export const HASH_SHARE_WHEN_OVERLOADED = 0.5

/** Events returned per page at most. */
export const EVENTS_PAGE_MAX = 200

/** Wait for a new PostgreSQL connection: a database that is away answers 503 quickly instead of queueing requests. */
export const DB_CONNECT_TIMEOUT_MS = 5_000
/**
 * Longest a request's query may run, both client-side (a silent network drop) and as the
 * server's statement_timeout; every query of this service is an indexed lookup or one-row write.
 */
export const DB_QUERY_TIMEOUT_MS = 5_000
/**
 * A recovery code replaced this recently, during the login being answered, means a wrong
 * answer was probably the double submit of the code just consumed: refunded, not counted.
 */
export const RECOVERY_DOUBLE_SUBMIT_WINDOW_MS = 5_000

/** Device tokens: 256 random bits, far beyond guessing; only their SHA-256 is stored. */
export const DEVICE_TOKEN_BYTES = 32
/** Contract section 6: rememberDeviceDays and enrollmentGraceDays are 0..90. */
export const POLICY_MAX_DAYS = 90
/** Remembered devices a user may list at once; older ones past it still work but are not listed. */
export const DEVICES_LIST_MAX = 100

/** RFC 6238 parameters every authenticator app supports by default (contract section 4): SHA-1, 6 digits, 30 s. */
export const TOTP_DIGITS = 6
export const TOTP_PERIOD_SECONDS = 30
/** Steps either side of now a code is accepted for: ±1 forgives a phone clock 30 s off and a slow typist (RFC 6238 section 5.2). */
export const TOTP_WINDOW_STEPS = 1
/** 160-bit secrets: RFC 4226 section 4 recommends it, and it is the HMAC-SHA-1 block-fitting key length apps expect. */
export const TOTP_SECRET_BYTES = 20
/** A TOTP enrolment not confirmed with a first code within ten minutes is void: its secret was shown once, on screen. */
export const TOTP_ENROLLMENT_TTL_MS = 10 * 60_000
/** /ready gives each dependency this long: an orchestrator probing every few seconds must get an answer before its own timeout. */
export const READY_CHECK_TIMEOUT_MS = 1_000
