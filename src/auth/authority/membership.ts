/**
 * The membership verifier peers use to tell a human from an agent (SPEC §4, §8): a
 * membership credential (VC-JWT) of the mesh `mesh`, signed by that mesh's key, in
 * time, not revoked. Refusals are `MESH_VC_INVALID` with `details.reason`: `mesh` (a
 * credential of another mesh, or none), `revoked`, `signature`, expired, malformed.
 */
import type { CredentialVerifier, MembershipClaims } from './credentials.ts'
import type { AuthorityFailure } from './failure.ts'
import type { Result } from './result.ts'

/** What a verified membership credential says, with its expiry (seconds since the epoch). */
export interface Membership extends MembershipClaims {
  exp: number
  /** sha-256 of the JWT, base64url (what a revocation names). */
  credential: string
}

export async function verifyMembership(
  verifier: Pick<CredentialVerifier, 'verifyCredential'>,
  jwt: unknown,
  options: { mesh: string; now?: number },
): Promise<Result<Membership, AuthorityFailure>> {
  const result = await verifier.verifyCredential(jwt, { now: options.now ?? Date.now() })
  if (result.error !== undefined) return result
  const { membership, issuer, exp, id } = result.ok
  if (membership === undefined) {
    return membershipFailure('not a membership credential', { credential: id, issuer, reason: 'type' })
  }
  if (issuer !== options.mesh || membership.mesh !== options.mesh) {
    return membershipFailure('a membership credential of another mesh', {
      credential: id,
      issuer,
      expected: options.mesh,
      reason: 'mesh',
    })
  }
  return { ok: { ...membership, exp, credential: id } }
}

function membershipFailure(
  message: string,
  details: Record<string, unknown>,
): { ok?: undefined; error: AuthorityFailure } {
  return { error: { code: 'MESH_VC_INVALID', message, proof: 'vc', details } }
}
