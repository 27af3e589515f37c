/**
 * Signed tree heads and the checks a holder makes on heads and proofs (SPEC §11). No
 * I/O: the node, a peer and the CLI (offline) check with the same functions.
 *
 * ```
 * {mesh, size, root, ts, key, sig}
 * ```
 * - `mesh`: the mesh's identity did (its genesis key; it stays when the key rotates).
 * - `size`: rows in the log; `root`: RFC 6962 Merkle root (hex) of their leaves (see
 *   merkle-store.ts), the empty tree's root for 0 rows.
 * - `ts`: when it was signed (ISO 8601, the signer's clock).
 * - `key`: the did:key that signed — the mesh key of the day; after a rotation the
 *   holder joins it to `mesh` through the mesh's rotation chain (`keys` below).
 * - `sig`: base64url Ed25519 over `mesh-audit-sth/v1:` + the RFC 8785 canonical JSON of
 *   every other field (domain-separated from rows, checkpoints, envelopes).
 *
 * Refusals, each with its code: a head whose signature fails or whose key is not one of
 * the mesh's, MESH_SIGNATURE_MISMATCH; a head older than the one held (a replay),
 * MESH_REPLAY; a proof that does not verify, that is for another mesh's log, or for a
 * log of another size than the head it is checked against, MESH_PROOF_INVALID.
 */
import { consistencyProofSchema, inclusionProofSchema, treeHeadSchema } from '../api/schemas/audit-merkle.ts'
import type {
  ConsistencyProof as ConsistencyProofJson,
  InclusionProof as InclusionProofJson,
  TreeHead,
} from '../api/types.ts'
import { BadRequestError, ProofInvalidError, ReplayError, SignatureMismatchError } from '../errors.ts'
import { type Ed25519KeyPair, verifySignature } from '../identity/index.ts'
import { lazyValidator } from '../schema.ts'
import { rowHash } from './audit-row.ts'
import { domainSignedText } from './checkpoint.ts'
import { type Hash, leafHash, verifyConsistency, verifyInclusion } from './merkle.ts'

export type SignedTreeHead = TreeHead
export type InclusionProof = InclusionProofJson
export type ConsistencyProof = ConsistencyProofJson

const validateHead = lazyValidator<SignedTreeHead>(treeHeadSchema)
const validateInclusion = lazyValidator<InclusionProof>(inclusionProofSchema)
const validateConsistency = lazyValidator<ConsistencyProof>(consistencyProofSchema)

export function treeHeadSignedText(head: Omit<SignedTreeHead, 'sig'>): Uint8Array {
  const { mesh, size, root, ts, key } = head
  return domainSignedText('mesh-audit-sth/v1:', { mesh, size, root, ts, key })
}

export function signTreeHead(
  key: Ed25519KeyPair,
  content: { mesh: string; size: number; root: Hash | string; ts: string },
): SignedTreeHead {
  const unsigned = {
    mesh: content.mesh,
    size: content.size,
    root: typeof content.root === 'string' ? content.root : content.root.toString('hex'),
    ts: content.ts,
    key: key.did,
  }
  return { ...unsigned, sig: Buffer.from(key.sign(treeHeadSignedText(unsigned))).toString('base64url') }
}

/** True when `value` is head-shaped and its `sig` verifies against its `key`. */
export function isSignedTreeHead(value: unknown): value is SignedTreeHead {
  if (!validateHead(value) || Number.isNaN(Date.parse(value.ts))) return false
  try {
    return verifySignature(value.key, treeHeadSignedText(value), Buffer.from(value.sig, 'base64url'))
  } catch {
    return false
  }
}

/**
 * A head presented by someone: MESH_BAD_REQUEST when not head-shaped,
 * MESH_SIGNATURE_MISMATCH when its signature fails, or (with `keys`, every key the
 * mesh has held by its rotation chain) when signed by a key outside them.
 */
export function parseTreeHead(
  value: unknown,
  keys?: ReadonlySet<string> | readonly string[],
): SignedTreeHead {
  if (!validateHead(value) || Number.isNaN(Date.parse(value.ts))) {
    const first = validateHead.errors?.[0]
    throw new BadRequestError(
      `not a signed tree head: ${first?.instancePath || '/'} ${first?.message ?? 'bad ts'}`.trim(),
    )
  }
  const { key } = value
  if (!isSignedTreeHead(value)) {
    throw new SignatureMismatchError('the tree head signature does not verify', { key })
  }
  if (keys !== undefined && !has(keys, value.key)) {
    throw new SignatureMismatchError('the tree head is not signed by a key of its mesh', {
      mesh: value.mesh,
      key: value.key,
    })
  }
  return value
}

/**
 * How a head received relates to the one held of the same mesh:
 * - `same`: the same size and root (whatever its ts);
 * - `newer`: signed later, another size or root (whether it extends the held one is
 *   for a consistency proof to say);
 * - refused MESH_REPLAY: signed at or before the held head but not equal to it (an old
 *   head replayed, or one signed out of order);
 * - refused MESH_PROOF_INVALID: another mesh's head.
 */
export function compareTreeHeads(held: SignedTreeHead, received: SignedTreeHead): 'same' | 'newer' {
  if (held.mesh !== received.mesh) {
    throw proofInvalid('the heads are of two meshes', 'mesh', { held: held.mesh, received: received.mesh })
  }
  if (held.size === received.size && held.root === received.root) return 'same'
  if (Date.parse(received.ts) <= Date.parse(held.ts)) {
    throw new ReplayError('the tree head is not newer than the one held', {
      held: { size: held.size, ts: held.ts },
      received: { size: received.size, ts: received.ts },
    })
  }
  return 'newer'
}

/**
 * Checks that `proof` shows its row in the log `head` signed: the same mesh and size,
 * the row's content hashing to its leaf, and the path leading to `head.root`.
 * `head` must have been checked already (`parseTreeHead`). Returns the row's seq.
 */
export function checkInclusionProof(value: unknown, head: SignedTreeHead): InclusionProof {
  if (!validateInclusion(value)) {
    throw new BadRequestError(
      `not an inclusion proof: ${validateInclusion.errors?.[0]?.message ?? ''}`.trim(),
    )
  }
  const proof = value
  if (proof.mesh !== head.mesh || proof.sth.mesh !== head.mesh) {
    throw proofInvalid('the proof is for another mesh’s log', 'mesh', { mesh: proof.mesh, head: head.mesh })
  }
  if (proof.size !== head.size || proof.root !== head.root) {
    throw proofInvalid('the proof is for a log of another size or root than the head', 'size', {
      size: proof.size,
      headSize: head.size,
    })
  }
  if (proof.seq < 1 || proof.seq > proof.size || proof.row.seq !== proof.seq) {
    throw proofInvalid('the row is not at the position the proof names', 'position', { seq: proof.seq })
  }
  const { hash, signature: _, ...content } = proof.row
  let computed: string
  try {
    computed = rowHash(content)
  } catch {
    throw proofInvalid('the row has no canonical form', 'row', { seq: proof.seq })
  }
  if (computed !== hash || leafHash(Buffer.from(hash, 'hex')).toString('hex') !== proof.leaf) {
    throw proofInvalid('the row does not hash to the proof’s leaf', 'row', { seq: proof.seq })
  }
  const ok = verifyInclusion(
    proof.seq - 1,
    proof.size,
    Buffer.from(proof.leaf, 'hex'),
    proof.path.map((p) => Buffer.from(p, 'hex')),
    Buffer.from(head.root, 'hex'),
  )
  if (!ok)
    throw proofInvalid('the inclusion path does not lead to the head’s root', 'path', { seq: proof.seq })
  return proof
}

/**
 * Checks that `proof` shows `newer` extending `older` (both heads of one mesh, checked
 * already): the proof's sizes and roots are those of the two heads and its path holds.
 */
export function checkConsistencyProof(
  value: unknown,
  older: SignedTreeHead,
  newer: SignedTreeHead,
): ConsistencyProof {
  if (!validateConsistency(value)) {
    throw new BadRequestError(
      `not a consistency proof: ${validateConsistency.errors?.[0]?.message ?? ''}`.trim(),
    )
  }
  const proof = value
  if (older.mesh !== newer.mesh || proof.mesh !== older.mesh) {
    throw proofInvalid('the proof and the heads are not of one mesh’s log', 'mesh', {
      mesh: proof.mesh,
      older: older.mesh,
      newer: newer.mesh,
    })
  }
  if (proof.from !== older.size || proof.to !== newer.size) {
    throw proofInvalid('the proof is for logs of other sizes than the heads', 'size', {
      from: proof.from,
      to: proof.to,
      older: older.size,
      newer: newer.size,
    })
  }
  const ok = verifyConsistency(
    older.size,
    newer.size,
    proof.path.map((p) => Buffer.from(p, 'hex')),
    Buffer.from(older.root, 'hex'),
    Buffer.from(newer.root, 'hex'),
  )
  if (!ok) {
    throw proofInvalid('the newer head does not extend the older one', 'path', {
      from: older.size,
      to: newer.size,
    })
  }
  return proof
}

function proofInvalid(
  message: string,
  reason: string,
  details: Record<string, unknown>,
): InstanceType<typeof ProofInvalidError> {
  return new ProofInvalidError(message, { reason, ...details })
}

function has(keys: ReadonlySet<string> | readonly string[], key: string): boolean {
  return keys instanceof Set ? keys.has(key) : (keys as readonly string[]).includes(key)
}
