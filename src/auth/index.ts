/** Auth: who a caller is (sessions) and, later, what it may do (capabilities, credentials, tiers). */
export {
  type Session,
  type SessionRole,
  SessionService,
  type SessionServiceInit,
  sessionChallengeText,
} from './sessions.ts'
