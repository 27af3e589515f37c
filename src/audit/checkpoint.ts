import { checkpointSchema } from '../api/schemas/audit.ts'
import { BadRequestError, SignatureMismatchError } from '../errors.ts'
import { canonicalBytes, type Ed25519KeyPair, verifySignature } from '../identity/index.ts'
import * as precompiled from '../kernel/precompiled-validators.ts'
import { lazyValidator } from '../schema.ts'
import { GENESIS_HASH, HASH_PATTERN } from './audit-row.ts'

/**
 * A signed checkpoint of one mesh's audit log: "my log had `size` rows, the last one
 * hashing to `head`", signed by the mesh key at `ts`.
 *
 * ```
 * {mesh, size, head, ts, signer, sig}
 * ```
 *
 * - `mesh`: the mesh's identity did (its genesis key; it stays when the key rotates).
 * - `size`: rows in the log (the seq of the last row); 0 for an empty log.
 * - `head`: the `hash` of row `size`, or `GENESIS_HASH` for an empty log.
 * - `ts`: when it was signed (ISO 8601, the signer's clock).
 * - `signer`: the did:key that signed (the mesh key of the day).
 * - `sig`: base64url Ed25519 over `mesh-audit-checkpoint/v1:` + the RFC 8785 canonical
 *   JSON of every other field (domain-separated from rows, envelopes and heartbeats).
 *
 * Whoever holds one (a peer, the operator) can later check that the log still extends
 * it: at least `size` rows, and row `size` still hashes to `head`. A log cut back and
 * its head rolled back with it verifies on its own; it does not against a checkpoint
 * held elsewhere. This is the minimal form of SPEC §11's signed tree heads: a hash
 * chain instead of a Merkle tree, so extension past `size` is checked by the log's
 * owner (it has the rows), not by the holder.
 */
export interface AuditCheckpoint {
  mesh: string
  size: number
  head: string
  ts: string
  signer: string
  sig: string
}

/** JSON Schema of a checkpoint (HTTP bodies, the connect protocol): the contract's one definition. */
export { checkpointSchema }

// issue 15 (cold start): precompiled, since the audit log checks its checkpoint at start
const validateShape = lazyValidator<AuditCheckpoint>(checkpointSchema, precompiled.checkpoint)

/** `prefix` then the RFC 8785 canonical JSON of `content`: what a domain-separated signature covers. */
export function domainSignedText(prefix: string, content: unknown): Uint8Array {
  const body = canonicalBytes(content)
  const head = new TextEncoder().encode(prefix)
  const out = new Uint8Array(head.byteLength + body.byteLength)
  out.set(head)
  out.set(body, head.byteLength)
  return out
}

export function checkpointSignedText(content: Omit<AuditCheckpoint, 'sig'>): Uint8Array {
  const { mesh, size, head, ts, signer } = content
  return domainSignedText('mesh-audit-checkpoint/v1:', { mesh, size, head, ts, signer })
}

export function signCheckpoint(
  key: Ed25519KeyPair,
  content: { mesh: string; size: number; head: string | null; ts: string },
): AuditCheckpoint {
  const unsigned = {
    mesh: content.mesh,
    size: content.size,
    head: content.head ?? GENESIS_HASH,
    ts: content.ts,
    signer: key.did,
  }
  return {
    ...unsigned,
    sig: Buffer.from(key.sign(checkpointSignedText(unsigned))).toString('base64url'),
  }
}

/** True when `value` is checkpoint-shaped and its `sig` verifies against its `signer`. */
export function isSignedCheckpoint(value: unknown): value is AuditCheckpoint {
  if (!validateShape(value) || Number.isNaN(Date.parse(value.ts))) return false
  if (value.size === 0 ? value.head !== GENESIS_HASH : !HASH_PATTERN.test(value.head)) return false
  try {
    return verifySignature(value.signer, checkpointSignedText(value), Buffer.from(value.sig, 'base64url'))
  } catch {
    return false
  }
}

/**
 * A checkpoint presented by someone (the operator, a request): MESH_BAD_REQUEST when
 * it is not checkpoint-shaped, MESH_SIGNATURE_MISMATCH when its signature does not hold
 * or it is signed by a key outside `keys` (when given).
 */
export function parseCheckpoint(value: unknown, keys?: ReadonlySet<string>): AuditCheckpoint {
  if (!validateShape(value) || Number.isNaN(Date.parse(value.ts))) {
    const first = validateShape.errors?.[0]
    throw new BadRequestError(
      `not an audit checkpoint: ${first?.instancePath || '/'} ${first?.message ?? 'bad ts'}`.trim(),
    )
  }
  const { signer } = value
  if (!isSignedCheckpoint(value)) {
    throw new SignatureMismatchError('the checkpoint signature does not verify', { signer })
  }
  if (keys !== undefined && !keys.has(value.signer)) {
    throw new SignatureMismatchError('the checkpoint is not signed by a key of this mesh', {
      signer: value.signer,
    })
  }
  return value
}

/**
 * How a checkpoint received later relates to one held from the same mesh:
 * - `same`: the same size and head;
 * - `longer`: more rows (whether the first `earlier.size` are unchanged is for the
 *   log's owner to check, against `earlier` handed back to it);
 * - `stale`: signed before `earlier` (a late or replayed copy): says nothing;
 * - `shorter`: signed later, but fewer rows: the log was cut back (truncated, or its
 *   store restored from an older copy);
 * - `forked`: signed later, the same size, another head: row `size` was rewritten.
 */
export type CheckpointRelation = 'same' | 'longer' | 'stale' | 'shorter' | 'forked'

export function compareCheckpoints(earlier: AuditCheckpoint, later: AuditCheckpoint): CheckpointRelation {
  if (later.size === earlier.size && later.head === earlier.head) return 'same'
  if (Date.parse(later.ts) < Date.parse(earlier.ts)) return 'stale'
  if (later.size < earlier.size) return 'shorter'
  if (later.size === earlier.size) return 'forked'
  return 'longer'
}
