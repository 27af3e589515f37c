/**
 * Auth: who a caller is (sessions), what it may do (the authority: capabilities, UCAN
 * chains, credentials, tiers, reputation), and their HTTP routes.
 */
export * from './acts/index.ts'
export * from './authority/index.ts'
export { InteractionReporter, type InteractionReporterInit } from './interaction-reporter.ts'
export { type Member, MemberBook, type MemberBookInit, type MemberPrincipal } from './members.ts'
export {
  type Session,
  type SessionRole,
  SessionService,
  type SessionServiceInit,
  sessionChallengeText,
} from './sessions.ts'
export { type TrustView, trustView } from './trust-view.ts'
