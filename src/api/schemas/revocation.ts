import { b64url, CREDENTIALS, PRESENTATION, STRING, strictObject, UCAN } from './common.ts'

/** Revocation people can use (SPEC §9): delegations this mesh's humans issued, and revocations. */

/** A delegation's CID (CIDv1, base32 lower case). */
export const CID = { type: 'string', minLength: 8, maxLength: 128, pattern: '^[a-z0-9]+$' } as const

/** A delegation token with its proofs (base64url CAR): larger than an act, which it may embed. */
export const DELEGATION = b64url(32 * 1024)

/** A revocation notice as it travels, signed by the revoking mesh's key. */
export const revocationNoticeViewSchema = strictObject(
  { v: { const: 1 }, cid: STRING, mesh: STRING, by: STRING, at: STRING, reason: STRING, signature: STRING },
  ['v', 'cid', 'mesh', 'by', 'at', 'reason', 'signature'],
)

/** One revocation held here: by this mesh (`mesh` = its did) or by a peer (`mesh` = the peer). */
export const revocationSchema = strictObject(
  {
    cid: STRING,
    by: STRING,
    reason: STRING,
    at: STRING,
    /** The `ucan/revoke` invocation's CID; a peer's revocation: its notice's signature. */
    invocation: STRING,
    mesh: STRING,
    notice: revocationNoticeViewSchema,
  },
  ['cid', 'by', 'reason', 'at', 'invocation'],
)

const capabilityRefSchema = strictObject({ can: STRING, with: STRING }, ['can', 'with'])

/** A delegation one of this mesh's principals issued, as recorded here. */
export const issuedDelegationSchema = strictObject(
  {
    cid: STRING,
    issuer: STRING,
    audience: STRING,
    capabilities: { type: 'array', items: capabilityRefSchema },
    /** Expiry, seconds since the epoch; null: none. */
    exp: { type: ['integer', 'null'] },
    recordedAt: STRING,
    recordedBy: STRING,
    token: STRING,
    revoked: { anyOf: [{ type: 'null' }, revocationSchema] },
  },
  ['cid', 'issuer', 'audience', 'capabilities', 'exp', 'recordedAt', 'recordedBy', 'token', 'revoked'],
)

/** `GET /api/auth/delegations`. */
export const delegationListSchema = strictObject(
  {
    delegations: { type: 'array', items: issuedDelegationSchema },
    revocations: { type: 'array', items: revocationSchema },
  },
  ['delegations', 'revocations'],
)

/** `POST /api/auth/delegations {delegation}`: records a delegation a principal of this mesh issued. */
export const recordDelegationBodySchema = strictObject({ delegation: DELEGATION }, ['delegation'])

/**
 * `POST /api/auth/revoke {cid, ucan, delegation?}`: `ucan` is a `ucan/revoke` act (with =
 * the mesh, `nb.ucan` = the CID) of the architect or of the delegation's issuer; `delegation`
 * is its token when this mesh has not recorded it.
 */
export const revokeBodySchema = strictObject(
  { cid: CID, ucan: UCAN, delegation: DELEGATION, credentials: CREDENTIALS, presentation: PRESENTATION },
  ['cid', 'ucan'],
)

export const revokeResultSchema = strictObject(
  {
    revocation: revocationSchema,
    /** Peers the signed notice was queued for. */
    announcedTo: { type: 'array', items: STRING },
  },
  ['revocation', 'announcedTo'],
)
