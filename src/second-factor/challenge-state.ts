import type { OtpChallenge } from '../generated/prisma/client.js'

export type ChallengeState = 'open' | 'completed' | 'closed' | 'expired'

export function challengeState (challenge: Pick<OtpChallenge, 'completedAt' | 'closedAt' | 'expiresAt'>, now = new Date()): ChallengeState {
  if (challenge.completedAt !== null) return 'completed'
  if (challenge.closedAt !== null) return 'closed'
  if (challenge.expiresAt <= now) return 'expired'
  return 'open'
}
