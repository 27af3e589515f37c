import { BadRequestError, TooLargeError } from '../errors.ts'
import { canonicalBytes } from '../identity/index.ts'
import type { StoreOperation, Sublevel } from '../store/index.ts'
import { ACTION_PATTERN, AUDIT_LIMITS, type AuditEntryInput } from './audit-row.ts'

/** An entry as it will be hashed: absent fields null, details exactly their canonical JSON. */
export interface CheckedEntry {
  action: string
  actor: string | null
  subject: string | null
  details: Record<string, unknown>
}

/** The entry, checked; MESH_BAD_REQUEST when malformed, MESH_TOO_LARGE when its details are. */
export function checkEntry(entry: AuditEntryInput): CheckedEntry {
  if (typeof entry !== 'object' || entry === null) throw new BadRequestError('an audit entry is an object')
  const { action, actor, subject, details } = entry
  if (typeof action !== 'string' || !ACTION_PATTERN.test(action)) {
    throw new BadRequestError('action must match [a-z0-9_.-]{1,128}', {
      action: String(action).slice(0, 128),
    })
  }
  if (
    actor !== undefined &&
    (typeof actor !== 'string' || !actor.startsWith('did:') || actor.length > AUDIT_LIMITS.maxActorLength)
  ) {
    throw new BadRequestError('actor must be a DID')
  }
  if (
    subject !== undefined &&
    (typeof subject !== 'string' || subject.length > AUDIT_LIMITS.maxSubjectLength)
  ) {
    throw new BadRequestError(
      `subject must be a string of at most ${AUDIT_LIMITS.maxSubjectLength} characters`,
    )
  }
  if (details !== undefined && (typeof details !== 'object' || details === null || Array.isArray(details))) {
    throw new BadRequestError('details must be an object')
  }
  // Stored as its canonical JSON read back, so the stored value is exactly what was
  // hashed (no undefined fields, no toJSON surprises, no -0).
  const bytes = canonicalBytes(details ?? {})
  if (bytes.byteLength > AUDIT_LIMITS.maxDetailsBytes) {
    throw new TooLargeError(`details exceed ${AUDIT_LIMITS.maxDetailsBytes} bytes`, {
      bytes: bytes.byteLength,
      max: AUDIT_LIMITS.maxDetailsBytes,
    })
  }
  return {
    action,
    actor: actor ?? null,
    subject: subject ?? null,
    details: JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>,
  }
}

/** A copy of the caller's operations to write with a row; none may touch `audit` (the log's own sublevel). */
export function checkExtraOperations(operations: StoreOperation[], audit: Sublevel): StoreOperation[] {
  if (!Array.isArray(operations)) throw new BadRequestError('with must be an array of store operations')
  for (const op of operations) {
    // Only the log writes its own rows; a caller's operation could otherwise overwrite history.
    if ((op as { sublevel?: unknown } | null)?.sublevel === audit) {
      throw new BadRequestError('an operation written with an audit row may not touch the audit log')
    }
  }
  return [...operations]
}
