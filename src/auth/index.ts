/**
 * Auth: who a caller is (sessions), what it may do (the authority: capabilities, UCAN
 * chains, credentials, tiers, reputation), and their HTTP routes.
 */
export * from './acts/index.ts'
export * from './authority/index.ts'
export { InteractionReporter, type InteractionReporterInit } from './interaction-reporter.ts'
// members: enrolment and removal (SPEC §8)
export { type EnrolInput, MEMBER_ACTS, MemberService, type MemberServiceInit } from './member-service.ts'
export {
  DEFAULT_ROLE,
  type Member,
  MemberBook,
  type MemberBookInit,
  type MemberKind,
  type MemberPrincipal,
  type MemberView,
} from './members.ts'
// revocation that travels (SPEC §9)
export {
  type RevocationAnnouncement,
  RevocationService,
  type RevocationServiceInit,
  type RevokeInput,
  type RevokeResult,
  type RevokingPeer,
} from './revocation-service.ts'
export {
  type Session,
  type SessionRole,
  SessionService,
  type SessionServiceInit,
  sessionChallengeText,
} from './sessions.ts'
export { type TrustView, trustView } from './trust-view.ts'
