/** What a challenge can be completed with (contract section 1, `methods`). */
export type Method = 'sms' | 'voice' | 'totp' | 'recovery'

/** RFC 8176 authentication method references for each method. */
export const AMR: Record<Method, string> = { sms: 'sms', voice: 'tel', totp: 'otp', recovery: 'recovery' }

/** The factors a user has enrolled, as the methods read them. */
export interface EnrolledFactors {
  phones: Array<{ id: string }>
  totpEnabled: boolean
  hasRecoveryCode: boolean
}

/**
 * One second-factor method. Each module says which of its methods a user can
 * complete a challenge with; the login flow asks every module and never needs
 * to know how a method works inside.
 */
export interface SecondFactor {
  readonly methods: readonly Method[]
  availableFor (factors: EnrolledFactors): Method[]
}

/** The outcome of checking one submitted code against a challenge. */
export type CodeCheck =
  | { outcome: 'accepted' }
  | { outcome: 'wrong', attemptsRemaining: number }
  | { outcome: 'closed' }
  | { outcome: 'expired' }
