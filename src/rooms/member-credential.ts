import { MEMBERSHIP_CREDENTIAL } from '../auth/index.ts'
import { verifySignature } from '../identity/index.ts'
import type { MeshKey, SealKeys } from './mesh-keys.ts'
import { MEMBERSHIP_ENDED, type MemberEntry, ROOM_LIMITS } from './room-entries.ts'

/**
 * Kinds across meshes (SPEC §4, §8): a member entry carries the member's membership
 * credential (`vc`, a VC-JWT issued by its mesh), so that every replica — the peers'
 * included — can tell a human from an agent, verifiably. A replica checks it when the
 * entry arrives (validate-update.ts `checkRules`, synchronously, from memory):
 *
 * - a compact EdDSA JWS of type `MeshMembershipCredential`, whose subject is the entry's
 *   `did`, with `kind` human|agent;
 * - issued by the member's own mesh (`entry.mesh`): by its identity's key or a later key
 *   of its history as this replica knows it (mesh-keys.ts), the credential naming that
 *   key as its mesh (a mesh vouches only for its own members); a retired key's
 *   credential counts only when issued before the key was retired;
 * - the signature verifies against the issuing key;
 * - in time at the entry's date (`nbf` ≤ ts ≤ `exp`, ±60 s) when the member's own mesh
 *   sealed it; not for an ending (`removed`: a removal always lands), nor for the home
 *   mesh's copy of a foreign member's entry (a role change keeps the credential it took).
 *
 * An entry without `vc` (written before credentials travelled, or a guest under a
 * chain) still stands: its kind is unknown (the member view leaves `kind` out).
 */

export type MemberKind = 'human' | 'agent'

/** Why a member entry's credential was refused (`details.vc` of a `member-credential` refusal). */
export type CredentialProblem = 'malformed' | 'subject' | 'issuer' | 'retired-key' | 'signature' | 'expired'

export interface CredentialClaims {
  issuer: string
  subject: string
  kind: MemberKind
  role: string
  tier: number
  /** Seconds since the epoch. */
  nbf: number | undefined
  exp: number
}

interface Decoded {
  claims: CredentialClaims
  signingInput: string
  signature: Uint8Array
}

const SKEW_MS = ROOM_LIMITS.maxFutureSkewMs

/** Decodes a membership credential without checking its signature; undefined when malformed. */
function decode(jwt: string): Decoded | undefined {
  const parts = jwt.split('.')
  if (parts.length !== 3 || !/^[A-Za-z0-9_-]{86}$/.test(parts[2] as string)) return undefined
  const [h, p, s] = parts as [string, string, string]
  try {
    const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as Record<string, unknown>
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>
    if (!isRecord(header) || !isRecord(payload)) return undefined
    if ((header.alg !== 'EdDSA' && header.alg !== 'Ed25519') || 'cty' in header || 'crit' in header)
      return undefined
    const vc = payload.vc as { type?: unknown; credentialSubject?: Record<string, unknown> } | undefined
    const subject = vc?.credentialSubject
    const types = Array.isArray(vc?.type) ? vc.type : [vc?.type]
    if (!isRecord(subject) || !types.includes(MEMBERSHIP_CREDENTIAL)) return undefined
    const { iss, sub, nbf, exp } = payload
    const { kind, role, tier, mesh } = subject
    if (typeof iss !== 'string' || typeof sub !== 'string' || typeof exp !== 'number') return undefined
    if (nbf !== undefined && typeof nbf !== 'number') return undefined
    if ((kind !== 'human' && kind !== 'agent') || typeof role !== 'string' || typeof tier !== 'number')
      return undefined
    if (mesh !== iss || (subject.id !== undefined && subject.id !== sub)) return undefined
    return {
      claims: { issuer: iss, subject: sub, kind, role, tier, nbf, exp },
      signingInput: `${h}.${p}`,
      signature: new Uint8Array(Buffer.from(s, 'base64url')),
    }
  } catch {
    return undefined
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * The problem with `entry`'s credential, or undefined when it has none or it holds.
 * `keys`: which keys speak for which mesh identity (without it, only the identity's own key).
 */
export function credentialProblem(
  entry: MemberEntry,
  keys: SealKeys | undefined,
  sealedBy: string = entry.mesh,
): { problem: CredentialProblem; message: string } | undefined {
  if (entry.vc === undefined) return undefined
  const decoded = decode(entry.vc)
  if (decoded === undefined) return fail('malformed', 'the member’s credential is no membership credential')
  const { claims } = decoded
  if (claims.subject !== entry.did) return fail('subject', 'the member’s credential names another member')
  const key = issuingKey(keys, entry.mesh, claims.issuer)
  if (key === undefined)
    return fail('issuer', 'the member’s credential is not issued by a key of the member’s mesh')
  // Undated (no nbf): issued whenever; a retired key's credential must say it came before.
  const issuedAt = claims.nbf === undefined ? undefined : claims.nbf * 1000
  if (key.retiredAt !== undefined && (issuedAt === undefined || issuedAt > key.retiredAt + SKEW_MS))
    return fail('retired-key', 'the member’s credential was issued by a key its mesh had retired')
  if (!verifySignature(claims.issuer, new TextEncoder().encode(decoded.signingInput), decoded.signature))
    return fail('signature', 'the member’s credential does not verify')
  // The home mesh re-sealing a foreign member (a role change) keeps the credential it took.
  if (
    entry.role !== MEMBERSHIP_ENDED &&
    sealedBy === entry.mesh &&
    ((issuedAt !== undefined && entry.ts < issuedAt - SKEW_MS) || entry.ts > claims.exp * 1000 + SKEW_MS)
  )
    return fail('expired', 'the member’s credential was not in time at the entry’s date')
  return undefined
}

function fail(problem: CredentialProblem, message: string) {
  return { problem, message }
}

/** The key of `mesh`'s history that `issuer` is (the identity itself when nothing else is known). */
function issuingKey(keys: SealKeys | undefined, mesh: string, issuer: string): MeshKey | undefined {
  const history = keys?.keysOf(mesh)
  const known = history?.find((k) => k.did === issuer)
  if (known !== undefined) return known
  return issuer === mesh && history === undefined ? { did: mesh } : undefined
}

/** The credential's claims, unverified (every entry a replica holds was checked on arrival). */
export function credentialClaims(entry: MemberEntry): CredentialClaims | undefined {
  return entry.vc === undefined ? undefined : decode(entry.vc)?.claims
}

/** The member's kind as its credential says; undefined when the entry carries none (unknown). */
export function memberKind(entry: MemberEntry): MemberKind | undefined {
  return credentialClaims(entry)?.kind
}
