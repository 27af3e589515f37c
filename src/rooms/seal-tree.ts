import { hash as digest, randomBytes } from 'node:crypto'
import { canonicalJson, type Ed25519KeyPair } from '../identity/index.ts'

/**
 * Issue 15 (posts15): one signature for what several rooms' transactions of one turn seal.
 *
 * Each transaction's leaf — a batch record's id (seal-batch.ts), or for a lone entry the
 * hash of its seal payload (room-entries.ts) — is a leaf of a Merkle tree of TREE_LEAVES
 * leaves, the unused ones random; the signature covers the JCS of `{batchRoot: root}`
 * (`mesh` too when signed by a later key). The seal or record carries its place `at` and
 * the sibling hashes `path` from its leaf up. It names no other room: a peer of one room
 * sees TREE_DEPTH hashes it cannot tell from random ones (no count, no ids: a leaf hashes
 * its room's id and the content ids of its entries).
 */

/** Levels of the trees the writer makes: 16 leaves, whatever the number of rooms. */
export const TREE_DEPTH = 4
export const TREE_LEAVES = 2 ** TREE_DEPTH
/** Most levels a verifier follows. */
const MAX_PATH = 8
const ID_RE = /^[A-Za-z0-9_-]{43}$/

/** A leaf's place in its tree and the signature of the tree's root. */
export interface LeafSignature {
  sig: string
  at: number
  path: string[]
}

/** The hash a leaf text stands for in a tree (a batch record's id is its payload's). */
export function leafOf(text: string): string {
  return digest('sha256', text, 'base64url')
}

/** An inner node (domain-separated from a leaf, which hashes a JCS object). */
function nodeHash(left: string, right: string): string {
  return digest('sha256', `mesh-batch-node\0${left}\0${right}`, 'base64url')
}

/** The root a leaf's path leads to (`at`: its place, bit k set when it is the right child at level k). */
export function treeRoot(leaf: string, at: number, path: readonly string[]): string {
  let node = leaf
  path.forEach((sibling, level) => {
    node = (at >> level) & 1 ? nodeHash(sibling, node) : nodeHash(node, sibling)
  })
  return node
}

/** The text a tree's signature covers, for the leaf `leaf` at `at` with `path`. */
export function treeSignedText(leaf: string, at: number, path: readonly string[], mesh?: string): string {
  const root = treeRoot(leaf, at, path)
  return canonicalJson(mesh === undefined ? { batchRoot: root } : { batchRoot: root, mesh })
}

/** A place in a tree: both absent, or 1 to MAX_PATH hashes and a place among 2^length. */
export function treeOk(at: unknown, path: unknown): boolean {
  if (at === undefined && path === undefined) return true
  return (
    Array.isArray(path) &&
    path.length > 0 &&
    path.length <= MAX_PATH &&
    path.every((h) => typeof h === 'string' && ID_RE.test(h)) &&
    typeof at === 'number' &&
    Number.isInteger(at) &&
    at >= 0 &&
    at < 2 ** path.length
  )
}

/**
 * One signature for many leaves: TREE_LEAVES a tree, the unused leaves random (a sibling
 * hash tells nothing of how many rooms were written), one signature a tree.
 */
export function signLeaves(key: Ed25519KeyPair, leaves: readonly string[], mesh: string): LeafSignature[] {
  const out: LeafSignature[] = []
  for (let from = 0; from < leaves.length; from += TREE_LEAVES) {
    const level0 = leaves.slice(from, from + TREE_LEAVES)
    const real = level0.length
    while (level0.length < TREE_LEAVES) level0.push(randomBytes(32).toString('base64url'))
    const levels: string[][] = [level0]
    for (let level = level0; level.length > 1; ) {
      const up: string[] = []
      for (let i = 0; i < level.length; i += 2) up.push(nodeHash(level[i] as string, level[i + 1] as string))
      levels.push(up)
      level = up
    }
    const root = (levels.at(-1) as string[])[0] as string
    const text = canonicalJson(mesh === key.did ? { batchRoot: root } : { batchRoot: root, mesh })
    const sig = Buffer.from(key.sign(Buffer.from(text, 'utf8'))).toString('base64url')
    for (let at = 0; at < real; at++) {
      const path = levels.slice(0, -1).map((level, k) => level[(at >> k) ^ 1] as string)
      out.push({ sig, at, path })
    }
  }
  return out
}
