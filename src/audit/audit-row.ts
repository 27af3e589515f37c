import { createHash } from 'node:crypto'
import { canonicalBytes, verifySignature } from '../identity/index.ts'

/** What a caller records: one federation (or authority) decision. */
export interface AuditEntryInput {
  /** `area.event`, e.g. `federation.connection.accepted`; `[a-z0-9_.-]`, at most 128 characters. */
  action: string
  /** The DID of whoever decided or asked (the architect, a peer mesh), when there is one. */
  actor?: string
  /** What the decision is about: a connection id, a peer DID, a room id… At most 512 characters. */
  subject?: string
  /** Anything else worth keeping, as JSON; at most `AUDIT_LIMITS.maxDetailsBytes` in canonical form. */
  details?: Record<string, unknown>
}

/** One stored row of the audit log; every field but `hash` and `signature` is covered by `hash`. */
export interface AuditRow {
  /** Position in the log, from 1, without gaps. */
  seq: number
  /** When the row was appended (ISO 8601, the node's clock). */
  ts: string
  action: string
  actor: string | null
  subject: string | null
  details: Record<string, unknown>
  /** `hash` of the row before, or `GENESIS_HASH` for the first row. */
  prev: string
  /** sha256 (hex) of the RFC 8785 canonical JSON of the row without `hash` and `signature`. */
  hash: string
  /** did:key of the mesh key that signed this row. */
  signer: string
  /** base64url Ed25519 signature by `signer` over `auditSignedText(hash)`. */
  signature: string
}

/** The last row written: what a peer or an operator can hold on to and compare later. */
export interface AuditHead {
  seq: number
  hash: string
}

export const GENESIS_HASH = '0'.repeat(64)

export const AUDIT_LIMITS = {
  maxActionLength: 128,
  maxSubjectLength: 512,
  maxActorLength: 256,
  maxDetailsBytes: 8 * 1024,
} as const

export const ACTION_PATTERN = /^[a-z0-9_.-]{1,128}$/
export const HASH_PATTERN = /^[0-9a-f]{64}$/

/** The fields a row's hash covers, in a fixed shape (absent actor/subject are null, not missing). */
export function hashedPart(row: Omit<AuditRow, 'hash' | 'signature'>): Omit<AuditRow, 'hash' | 'signature'> {
  return {
    seq: row.seq,
    ts: row.ts,
    action: row.action,
    actor: row.actor,
    subject: row.subject,
    details: row.details,
    prev: row.prev,
    signer: row.signer,
  }
}

export function rowHash(row: Omit<AuditRow, 'hash' | 'signature'>): string {
  return createHash('sha256')
    .update(canonicalBytes(hashedPart(row)))
    .digest('hex')
}

// Domain-separated so that a mesh-key signature on an audit row can never be passed
// off as a signature on anything else the mesh key signs (manifests, heartbeats…).
export function auditSignedText(hash: string): Uint8Array {
  return new TextEncoder().encode(`mesh-audit/v1:${hash}`)
}

/** The row after `unsigned`, hashed and signed by `key` (whose did `unsigned.signer` names). */
export function signRow(
  unsigned: Omit<AuditRow, 'hash' | 'signature'>,
  key: { sign(data: Uint8Array): Uint8Array },
): AuditRow {
  const hash = rowHash(unsigned)
  const signature = Buffer.from(key.sign(auditSignedText(hash))).toString('base64url')
  return { ...unsigned, hash, signature }
}

export function verifyRowSignature(row: Pick<AuditRow, 'hash' | 'signer' | 'signature'>): boolean {
  if (typeof row.signature !== 'string' || row.signature.length > 128) return false
  return verifySignature(row.signer, auditSignedText(row.hash), Buffer.from(row.signature, 'base64url'))
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

/** True when `value` has the shape of a row; says nothing about its hash or signature. */
export function isRowShaped(value: unknown): value is AuditRow {
  if (!isObject(value)) return false
  const r = value
  return (
    Number.isSafeInteger(r.seq) &&
    (r.seq as number) >= 1 &&
    typeof r.ts === 'string' &&
    typeof r.action === 'string' &&
    (r.actor === null || typeof r.actor === 'string') &&
    (r.subject === null || typeof r.subject === 'string') &&
    isObject(r.details) &&
    typeof r.prev === 'string' &&
    typeof r.hash === 'string' &&
    typeof r.signer === 'string' &&
    typeof r.signature === 'string'
  )
}
