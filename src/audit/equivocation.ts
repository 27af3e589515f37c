/**
 * Equivocation proofs (SPEC §11): two signed tree heads of one mesh that no consistency
 * proof can join, as a self-contained document anyone verifies offline — no I/O here.
 *
 * ```
 * {v:1, mesh, older, newer, prefixRoot, path, rotation, foundBy, foundAt}
 * ```
 * - `older`, `newer`: signed tree heads of `mesh`, `older.size ≤ newer.size`.
 * - Same size: the roots differ. Nothing else is needed (`prefixRoot` null, `path` []).
 * - `older.size < newer.size`: `path` is the RFC 6962 consistency path from
 *   `older.size` to `newer.size` in the tree `newer` signed, and `prefixRoot` the root of
 *   that tree's first `older.size` leaves. The path proves `prefixRoot` from `newer.root`
 *   (finding another `prefixRoot` that passes would need a SHA-256 collision), and
 *   `prefixRoot ≠ older.root`: the mesh signed two trees, one not a prefix of the other.
 *   The path is the one the accused mesh itself answered when asked for the proof.
 * - `rotation`: the mesh's key rotation chain, when a head is signed by a key other than
 *   its identity (`mesh`), so that the key is shown to be the mesh's; else [].
 * - `foundBy`, `foundAt`: who found it and when — not evidence, not checked.
 */
import type { EquivocationProofView } from '../api/types.ts'
import { BadRequestError, ProofInvalidError, SignatureMismatchError } from '../errors.ts'
import { verifyRotationChain } from '../identity/index.ts'
import { verifyConsistency } from './merkle.ts'
import { parseTreeHead, type SignedTreeHead } from './tree-head.ts'

/** The contract's shape (src/api/schemas/audit-merkle.ts). */
export type EquivocationProof = EquivocationProofView

const HEX_HASH = /^[0-9a-f]{64}$/
const MAX_PATH = 64

/** Every key of `mesh` as its rotation chain shows it (the identity alone without one). */
export function keysOfMesh(mesh: string, rotation: unknown): string[] {
  if (!Array.isArray(rotation) || rotation.length === 0) return [mesh]
  return verifyRotationChain(rotation, { identity: mesh, now: Number.MAX_SAFE_INTEGER }).keys
}

/**
 * Orders two heads of one mesh (smaller size first) and says whether they are a same-size
 * fork. Used by whoever builds a proof; `verifyEquivocation` is what decides.
 */
export function orderHeads(a: SignedTreeHead, b: SignedTreeHead): [SignedTreeHead, SignedTreeHead] {
  return a.size <= b.size ? [a, b] : [b, a]
}

/**
 * The proof checked: MESH_BAD_REQUEST when it is not one (shape), MESH_SIGNATURE_MISMATCH
 * when a head's signature fails or its key is not the mesh's, MESH_PROOF_INVALID when
 * the heads are not an equivocation (consistent, or the path does not come from `newer`).
 */
export function verifyEquivocation(value: unknown): EquivocationProof {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BadRequestError('an equivocation proof is an object')
  }
  const p = value as Partial<EquivocationProof>
  if (p.v !== 1 || typeof p.mesh !== 'string' || !Array.isArray(p.path) || p.path.length > MAX_PATH) {
    throw new BadRequestError('not an equivocation proof (v, mesh, path)')
  }
  if (!p.path.every((h) => typeof h === 'string' && HEX_HASH.test(h))) {
    throw new BadRequestError('an equivocation proof’s path is hex hashes')
  }
  if (p.prefixRoot !== null && (typeof p.prefixRoot !== 'string' || !HEX_HASH.test(p.prefixRoot))) {
    throw new BadRequestError('prefixRoot is a hex hash or null')
  }
  let keys: string[]
  try {
    keys = keysOfMesh(p.mesh, p.rotation ?? [])
  } catch (err) {
    throw new SignatureMismatchError('the rotation chain does not join the keys to the mesh', {
      reason: (err as Error).message,
    })
  }
  const older = parseTreeHead(p.older, keys)
  const newer = parseTreeHead(p.newer, keys)
  if (older.mesh !== p.mesh || newer.mesh !== p.mesh) {
    throw new ProofInvalidError('the heads are not of the accused mesh', { reason: 'mesh', mesh: p.mesh })
  }
  if (older.size > newer.size) {
    throw new ProofInvalidError('older is the larger head', { reason: 'size' })
  }
  if (older.size === newer.size) {
    if (older.root === newer.root) {
      throw new ProofInvalidError('the heads agree: no equivocation', { reason: 'consistent' })
    }
    return proofOf(p, older, newer, keys)
  }
  if (older.size === 0) {
    throw new ProofInvalidError('every log extends the empty one', { reason: 'consistent' })
  }
  if (p.prefixRoot === null || p.prefixRoot === undefined) {
    throw new ProofInvalidError('heads of two sizes need the newer tree’s prefix root', { reason: 'path' })
  }
  const fromNewer = verifyConsistency(
    older.size,
    newer.size,
    p.path.map((h) => Buffer.from(h, 'hex')),
    Buffer.from(p.prefixRoot, 'hex'),
    Buffer.from(newer.root, 'hex'),
  )
  if (!fromNewer) {
    throw new ProofInvalidError('the path does not come from the newer head’s tree', { reason: 'path' })
  }
  if (p.prefixRoot === older.root) {
    throw new ProofInvalidError('the newer head extends the older: no equivocation', { reason: 'consistent' })
  }
  return proofOf(p, older, newer, keys)
}

function proofOf(
  p: Partial<EquivocationProof>,
  older: SignedTreeHead,
  newer: SignedTreeHead,
  keys: string[],
): EquivocationProof {
  return {
    v: 1,
    mesh: p.mesh as string,
    older,
    newer,
    prefixRoot: older.size === newer.size ? null : (p.prefixRoot as string),
    path: older.size === newer.size ? [] : (p.path as string[]),
    rotation: keys.length > 1 ? (p.rotation as EquivocationProof['rotation']) : [],
    foundBy: typeof p.foundBy === 'string' ? p.foundBy.slice(0, 256) : 'unknown',
    foundAt: typeof p.foundAt === 'string' ? p.foundAt.slice(0, 32) : '',
  }
}
