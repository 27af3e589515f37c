/**
 * Every error the node reports to the outside world. One table maps each
 * `MESH_…` code to its HTTP status; each condition is a class matched by
 * `name` (js-libp2p style), so callers never parse messages.
 */

export const ERROR_STATUS = {
  MESH_BAD_REQUEST: 400,
  MESH_UNAUTHENTICATED: 401,
  MESH_FORBIDDEN: 403,
  MESH_NOT_FOUND: 404,
  MESH_PEER_UNKNOWN: 403,
  MESH_SIGNATURE_MISMATCH: 401,
  MESH_PROTOCOL_VERSION: 400,
  MESH_POLICY_REJECTED: 403,
  MESH_CLOCK_SKEW: 400,
  MESH_REPLAY: 409,
  MESH_UCAN_INVALID: 401,
  MESH_NOT_HUMAN_SIGNED: 403,
  MESH_TIER_FORBIDDEN: 403,
  MESH_VC_INVALID: 401,
  MESH_UPDATE_REJECTED: 422,
  MESH_TOO_LARGE: 413,
  MESH_RATE_LIMITED: 429,
  MESH_NOT_CONNECTED: 409,
  MESH_CONFLICT: 409,
  MESH_STORE_VERSION: 500,
  MESH_STORE_DAMAGED: 500,
  MESH_UNAVAILABLE: 503,
  MESH_INTERNAL: 500,
  // accountability across meshes (SPEC §11): a Merkle proof that does not hold
  MESH_PROOF_INVALID: 422,
  // store and forward (SPEC §10): a relay's mailbox for a mesh is full
  MESH_QUOTA_EXCEEDED: 429,
  // coordination fees (SPEC §10): relay receipts
  MESH_RECEIPT_INVALID: 422,
  MESH_RECEIPTS_REQUIRED: 402,
} as const

export type MeshErrorCode = keyof typeof ERROR_STATUS

/** One line per code, as documented in the README and printed by `mesh --help-errors`. */
export const ERROR_MEANING: Record<MeshErrorCode, string> = {
  MESH_BAD_REQUEST: 'The input is malformed or fails its schema (unknown fields are refused).',
  MESH_UNAUTHENTICATED: 'No valid session token, or the session challenge failed.',
  MESH_FORBIDDEN: 'Authenticated, but this principal may not do this.',
  MESH_NOT_FOUND: 'No such resource.',
  MESH_PEER_UNKNOWN: 'The peer mesh is not known or not allowed by policy.',
  MESH_SIGNATURE_MISMATCH: 'A signature does not verify against the key it claims.',
  MESH_PROTOCOL_VERSION: 'No protocol version in common with the peer.',
  MESH_POLICY_REJECTED: 'The federation policy refuses this.',
  MESH_CLOCK_SKEW: 'A timestamp is more than 60 s away from this node’s clock.',
  MESH_REPLAY: 'This message, nonce or sequence number was already seen.',
  MESH_UCAN_INVALID: 'The capability chain does not authorize this.',
  MESH_NOT_HUMAN_SIGNED: 'No human signed in the authorization chain.',
  MESH_TIER_FORBIDDEN: 'The principal’s trust tier does not allow this.',
  MESH_VC_INVALID: 'A verifiable credential is invalid, expired or untrusted.',
  MESH_UPDATE_REJECTED: 'A room update broke the room’s rules and was not applied.',
  MESH_TOO_LARGE: 'The input exceeds its size limit.',
  MESH_RATE_LIMITED: 'Too many requests; retry later.',
  MESH_NOT_CONNECTED: 'There is no accepted connection with that mesh.',
  MESH_CONFLICT: 'The resource is in a state that does not allow this.',
  MESH_STORE_VERSION: 'The data directory was written by an incompatible version.',
  MESH_STORE_DAMAGED:
    'The store is damaged (a file is missing or acknowledged writes were lost); restore from backup.',
  MESH_UNAVAILABLE: 'A dependency (registry, peer, store) cannot be reached.',
  MESH_INTERNAL: 'An unexpected internal error; see the node’s log.',
  // accountability across meshes (SPEC §11)
  MESH_PROOF_INVALID:
    'An audit log proof does not verify, or is for another mesh’s log or a log of another size than the head.',
  // store and forward (SPEC §10)
  MESH_QUOTA_EXCEEDED:
    'A relay’s mailbox for that mesh is full (items or bytes); it takes more once the mesh has collected its items.',
  // coordination fees (SPEC §10): relay receipts
  MESH_RECEIPT_INVALID:
    'A relay receipt is for another relay, out of order (a gap or an overlap), or claims more bytes than the relay carried.',
  MESH_RECEIPTS_REQUIRED:
    'The relay’s free allowance is used up and this mesh does not sign receipts for it: its circuits and reservation are cut off.',
}

export interface MeshErrorJson {
  error: { code: MeshErrorCode; message: string; details: Record<string, unknown> }
}

export class MeshError extends Error {
  readonly code: MeshErrorCode
  readonly details: Record<string, unknown>

  constructor(code: MeshErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message)
    this.name = 'MeshError'
    this.code = code
    this.details = details
  }

  get status(): number {
    return ERROR_STATUS[this.code]
  }

  toJSON(): MeshErrorJson {
    return { error: { code: this.code, message: this.message, details: this.details } }
  }
}

function errorClass(name: string, code: MeshErrorCode) {
  const cls = class extends MeshError {
    constructor(message: string, details: Record<string, unknown> = {}) {
      super(code, message, details)
      this.name = name
    }
  }
  Object.defineProperty(cls, 'name', { value: name })
  return cls
}

export const BadRequestError = errorClass('BadRequestError', 'MESH_BAD_REQUEST')
export const UnauthenticatedError = errorClass('UnauthenticatedError', 'MESH_UNAUTHENTICATED')
export const ForbiddenError = errorClass('ForbiddenError', 'MESH_FORBIDDEN')
export const NotFoundError = errorClass('NotFoundError', 'MESH_NOT_FOUND')
export const PeerUnknownError = errorClass('PeerUnknownError', 'MESH_PEER_UNKNOWN')
export const SignatureMismatchError = errorClass('SignatureMismatchError', 'MESH_SIGNATURE_MISMATCH')
export const ProtocolVersionError = errorClass('ProtocolVersionError', 'MESH_PROTOCOL_VERSION')
export const PolicyRejectedError = errorClass('PolicyRejectedError', 'MESH_POLICY_REJECTED')
export const ClockSkewError = errorClass('ClockSkewError', 'MESH_CLOCK_SKEW')
export const ReplayError = errorClass('ReplayError', 'MESH_REPLAY')
export const TooLargeError = errorClass('TooLargeError', 'MESH_TOO_LARGE')
export const RateLimitedError = errorClass('RateLimitedError', 'MESH_RATE_LIMITED')
export const NotConnectedError = errorClass('NotConnectedError', 'MESH_NOT_CONNECTED')
export const ConflictError = errorClass('ConflictError', 'MESH_CONFLICT')
export const StoreVersionError = errorClass('StoreVersionError', 'MESH_STORE_VERSION')
export const StoreDamagedError = errorClass('StoreDamagedError', 'MESH_STORE_DAMAGED')
export const UnavailableError = errorClass('UnavailableError', 'MESH_UNAVAILABLE')
// accountability across meshes (SPEC §11)
export const ProofInvalidError = errorClass('ProofInvalidError', 'MESH_PROOF_INVALID')
// coordination fees (SPEC §10)
export const ReceiptInvalidError = errorClass('ReceiptInvalidError', 'MESH_RECEIPT_INVALID')

export function isMeshError(err: unknown): err is MeshError {
  return err instanceof MeshError
}

/** The single JSON error shape of SPEC §3, for any thrown value. */
export function toErrorJson(err: unknown): { status: number; body: MeshErrorJson } {
  if (isMeshError(err)) return { status: err.status, body: err.toJSON() }
  return {
    status: 500,
    body: { error: { code: 'MESH_INTERNAL', message: 'internal error', details: {} } },
  }
}
