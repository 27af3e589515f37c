import { fromBase64url } from '../../../api/base64url.ts'
import type { Member, MemberKind, MemberView } from '../../../api/index.ts'

/**
 * The Members screen's data handling, free of React and the DOM so that a test can run it
 * on Node: reading a membership credential, and telling an agent from a human in a room.
 */

/** What a membership credential (VC-JWT by the mesh key, SPEC §8) states, as the console shows it. */
export interface CredentialView {
  issuer: string | undefined
  subject: string | undefined
  kind: string | undefined
  role: string | undefined
  tier: number | undefined
  issuedAt: string | undefined
  expiresAt: string | undefined
  /** The JWT's payload, whole, for the curious. */
  payload: Record<string, unknown>
}

const isoOf = (seconds: unknown): string | undefined =>
  typeof seconds === 'number' && Number.isFinite(seconds) ? new Date(seconds * 1000).toISOString() : undefined

const record = (value: unknown): Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {}

/**
 * Reads (does not verify: the node and its peers do) a VC-JWT's claims: the subject's kind,
 * role and tier from `vc.credentialSubject` (or the payload's top level), its issuer and dates.
 * Throws on what is not a JWT.
 */
export function readCredential(jwt: string): CredentialView {
  const parts = jwt.split('.')
  if (parts.length !== 3 || parts[1] === undefined) throw new Error('not a JWT')
  const payload = record(JSON.parse(new TextDecoder().decode(fromBase64url(parts[1]))))
  const vc = record(payload.vc)
  const subject = record(vc.credentialSubject)
  const pick = (key: string): unknown => subject[key] ?? payload[key]
  const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)
  const tier = pick('tier')
  return {
    issuer: text(payload.iss),
    subject: text(payload.sub) ?? text(subject.id),
    kind: text(pick('kind')),
    role: text(pick('role')),
    tier: typeof tier === 'number' ? tier : undefined,
    issuedAt: isoOf(payload.nbf ?? payload.iat),
    expiresAt: isoOf(payload.exp),
    payload,
  }
}

/**
 * A room member's kind: the room's own answer (from the member's credential, for a peer's
 * members too) when it carries one, else this mesh's member book (its local members);
 * `undefined` when neither knows (an entry from before credentials travelled, a guest).
 */
export function roomMemberKind(
  member: Member,
  book: readonly MemberView[] | undefined,
): MemberKind | undefined {
  return member.kind ?? book?.find((m) => m.did === member.did)?.kind
}

/** Whether `me` may set room roles: the room's owner or one of its moderators. */
export function canSetRoomRoles(members: readonly Member[] | undefined, me: string): boolean {
  const role = members?.find((m) => m.did === me)?.role
  return role === 'owner' || role === 'moderator'
}
