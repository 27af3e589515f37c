import { BadRequestError, SignatureMismatchError } from '../../errors.ts'
import { type Ed25519KeyPair, signCanonical, verifyCanonical } from '../../identity/index.ts'
import { decodeToken, viewOf } from './token.ts'

/**
 * A revocation as it travels between meshes (SPEC §9): a statement signed by the
 * revoking mesh's key, naming the delegation's CID, the revoker (the human whose
 * `ucan/revoke` act it carried out) and the time. The receiver keeps it with the
 * revocation, so what it refuses can always be traced to the mesh that asked.
 *
 * ```
 * {v: 1, cid, mesh, by, at, reason, signature}
 * ```
 *
 * `signature` is the mesh key's Ed25519 signature (base64url) over the RFC 8785
 * canonical JSON of every other field.
 */
export interface RevocationNotice {
  v: 1
  /** The revoked delegation's CID. */
  cid: string
  /** The revoking mesh's key (the signer). */
  mesh: string
  /** Who revoked it: the invoker of the `ucan/revoke` act. */
  by: string
  /** ISO time of the revocation. */
  at: string
  reason: string
  signature: string
}

const CID = { type: 'string', minLength: 8, maxLength: 128, pattern: '^[a-z0-9]+$' } as const
const DID = { type: 'string', maxLength: 128, pattern: '^did:[a-z0-9]+:[A-Za-z0-9._:%-]+$' } as const

/** JSON Schema of a notice (for a message body). */
export const revocationNoticeSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['v', 'cid', 'mesh', 'by', 'at', 'reason', 'signature'],
  properties: {
    v: { const: 1 },
    cid: CID,
    mesh: DID,
    by: DID,
    at: { type: 'string', minLength: 20, maxLength: 40, pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$' },
    reason: { type: 'string', maxLength: 512 },
    signature: { type: 'string', pattern: '^[A-Za-z0-9_-]{86}$' },
  },
} as const

/** Signs a notice with the mesh key. */
export function signRevocationNotice(
  key: Ed25519KeyPair,
  fields: { cid: string; by: string; at: string; reason: string },
): RevocationNotice {
  const content = {
    v: 1 as const,
    cid: fields.cid,
    mesh: key.did,
    by: fields.by,
    at: fields.at,
    reason: fields.reason,
  }
  return { ...content, signature: signCanonical(key, content) }
}

/** Whether `notice` is signed by the key it names. */
export function verifyRevocationNotice(notice: RevocationNotice): boolean {
  const { signature, ...content } = notice
  return verifyCanonical(notice.mesh, content, signature)
}

/** What a delegation says about itself, read from its token. */
export interface DelegationFacts {
  cid: string
  issuer: string
  audience: string
  capabilities: Array<{ can: string; with: string }>
  /** Expiry, seconds since the epoch; null: none. */
  exp: number | null
}

/** Reads a delegation token (MESH_BAD_REQUEST when it is not one); checks it names `cid` when given. */
export function delegationFacts(token: string, cid?: string): DelegationFacts {
  const decoded = decodeToken(token)
  if (decoded.error !== undefined) {
    throw new BadRequestError(`not a delegation token: ${decoded.error.message}`)
  }
  const view = viewOf(decoded.ok)
  const facts: DelegationFacts = {
    cid: view.cid.toString(),
    issuer: view.issuer.did(),
    audience: view.audience.did(),
    capabilities: view.capabilities.map((c) => ({ can: String(c.can), with: String(c.with) })),
    exp: Number.isFinite(view.expiration) ? view.expiration : null,
  }
  if (cid !== undefined && facts.cid !== cid) {
    throw new SignatureMismatchError('the delegation is not the one named', { cid, delegation: facts.cid })
  }
  return facts
}
