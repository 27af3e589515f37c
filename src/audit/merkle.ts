/**
 * RFC 6962 §2.1 Merkle hash trees (as restated in RFC 9162 §2.1): hashing, the subtrees
 * an inclusion or consistency proof is made of, and the verification of both proofs.
 * No I/O and nothing stateful but `MemoryTree`, so an offline verifier (the CLI, a test,
 * another mesh) uses exactly what the node uses.
 *
 * - leaf hash: `sha256(0x00 || leaf)`; node hash: `sha256(0x01 || left || right)`;
 *   the empty tree: `sha256()`.
 * - A tree of n leaves splits at k, the largest power of two below n: the left subtree
 *   is perfect, the right one is the tree of the n − k leaves after it. So every subtree
 *   a proof names is `[start, end)` with `start` a multiple of a power of two at least
 *   `end − start`; its hash is the fold, right to left, of the perfect subtrees that
 *   cover it (`perfectCover`): that is how a stored tree answers from its stored nodes.
 *
 * Indexes and sizes are JS numbers (safe integers): no bitwise operators, which would
 * cut them to 32 bits.
 */
import { createHash } from 'node:crypto'

export type Hash = Buffer

/** `[start, end)`: the leaves `start … end − 1` of a subtree. */
export type Range = readonly [start: number, end: number]

/** A perfect subtree: `2^level` leaves from `index · 2^level`. */
export interface NodeId {
  level: number
  index: number
}

export const HASH_BYTES = 32
const LEAF_PREFIX = Buffer.from([0])
const NODE_PREFIX = Buffer.from([1])

/** The root of the empty tree: sha256 of nothing. */
export const EMPTY_ROOT: Hash = createHash('sha256').digest()

export function leafHash(data: Uint8Array): Hash {
  return createHash('sha256').update(LEAF_PREFIX).update(data).digest()
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Hash {
  return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest()
}

/** The largest power of two strictly below `n` (n ≥ 2). */
export function splitPoint(n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

/** The perfect subtrees that cover `[start, end)`, left to right, each as large as alignment allows. */
export function perfectCover(start: number, end: number): NodeId[] {
  const out: NodeId[] = []
  let at = start
  while (at < end) {
    let size = 1
    let level = 0
    while (at % (size * 2) === 0 && at + size * 2 <= end) {
      size *= 2
      level += 1
    }
    out.push({ level, index: at / size })
    at += size
  }
  return out
}

/** The hash of a subtree from the hashes of its perfect cover (left to right): folded right to left. */
export function foldCover(hashes: readonly Uint8Array[]): Hash {
  if (hashes.length === 0) return EMPTY_ROOT
  let acc: Hash = Buffer.from(hashes[hashes.length - 1] as Uint8Array)
  for (let i = hashes.length - 2; i >= 0; i--) acc = nodeHash(hashes[i] as Uint8Array, acc)
  return acc
}

/** RFC 6962 §2.1.1 PATH(index, D[0:size]): the subtrees whose hashes make the audit path, leaf upwards. */
export function inclusionRanges(index: number, size: number): Range[] {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) {
    throw new RangeError(`no leaf ${index} in a tree of ${size}`)
  }
  const out: Range[] = []
  // Walk down from the root, then reverse: the RFC lists the path leaf first.
  let lo = 0
  let hi = size
  while (hi - lo > 1) {
    const k = splitPoint(hi - lo)
    if (index < lo + k) {
      out.push([lo + k, hi])
      hi = lo + k
    } else {
      out.push([lo, lo + k])
      lo += k
    }
  }
  return out.reverse()
}

/** RFC 6962 §2.1.2 PROOF(m, D[0:n]) for 0 < m < n: the subtrees whose hashes make the consistency proof. */
export function consistencyRanges(m: number, n: number): Range[] {
  if (!(Number.isSafeInteger(m) && Number.isSafeInteger(n) && m > 0 && m < n)) {
    throw new RangeError(`no consistency proof from ${m} to ${n}`)
  }
  const out: Range[] = []
  let lo = 0
  let hi = n
  let whole = true // the RFC's b: the old tree is still a whole subtree of this one
  let mm = m
  while (mm !== hi - lo) {
    const k = splitPoint(hi - lo)
    if (mm <= k) {
      out.push([lo + k, hi])
      hi = lo + k
    } else {
      out.push([lo, lo + k])
      mm -= k
      lo += k
      whole = false
    }
  }
  if (!whole) out.push([lo, hi])
  return out.reverse()
}

const isHash = (h: unknown): h is Uint8Array => h instanceof Uint8Array && h.byteLength === HASH_BYTES
const equal = (a: Uint8Array, b: Uint8Array): boolean => isHash(a) && isHash(b) && Buffer.compare(a, b) === 0
const lsb = (x: number): boolean => x % 2 === 1
const half = (x: number): number => Math.floor(x / 2)

/**
 * The root an inclusion proof leads to (RFC 9162 §2.1.3.2), or undefined when the path
 * cannot be one for leaf `index` of a tree of `size` (wrong length, bad hashes).
 */
export function rootFromInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  path: readonly Uint8Array[],
): Hash | undefined {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) return
  if (!isHash(leaf) || !path.every(isHash)) return
  let fn = index
  let sn = size - 1
  let r: Hash = Buffer.from(leaf)
  for (const p of path) {
    if (sn === 0) return
    if (lsb(fn) || fn === sn) {
      r = nodeHash(p, r)
      while (!lsb(fn) && fn !== 0) {
        fn = half(fn)
        sn = half(sn)
      }
    } else {
      r = nodeHash(r, p)
    }
    fn = half(fn)
    sn = half(sn)
  }
  return sn === 0 ? r : undefined
}

/** Whether `path` proves leaf hash `leaf` at `index` in the tree of `size` whose root is `root`. */
export function verifyInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  path: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  const got = rootFromInclusion(index, size, leaf, path)
  return got !== undefined && equal(got, root)
}

/**
 * Whether `path` proves that the tree of `size2` leaves with root `root2` extends the
 * tree of `size1` with root `root1` (RFC 9162 §2.1.4.2; equal sizes need equal roots
 * and an empty path, and any tree extends the empty one).
 */
export function verifyConsistency(
  size1: number,
  size2: number,
  path: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): boolean {
  if (!(Number.isSafeInteger(size1) && Number.isSafeInteger(size2) && size1 >= 0 && size1 <= size2)) {
    return false
  }
  if (!path.every(isHash)) return false
  if (size1 === size2) return path.length === 0 && equal(root1, root2)
  if (size1 === 0) return path.length === 0
  if (path.length === 0 || !isHash(root1) || !isHash(root2)) return false
  // When the old tree is a perfect subtree of the new one, the proof leaves out its root.
  let fn = size1 - 1
  let sn = size2 - 1
  const nodes = isPowerOfTwo(size1) ? [root1, ...path] : [...path]
  while (lsb(fn)) {
    fn = half(fn)
    sn = half(sn)
  }
  let fr: Hash = Buffer.from(nodes[0] as Uint8Array)
  let sr: Hash = Buffer.from(nodes[0] as Uint8Array)
  for (const c of nodes.slice(1)) {
    if (sn === 0) return false
    if (lsb(fn) || fn === sn) {
      fr = nodeHash(c, fr)
      sr = nodeHash(c, sr)
      while (!lsb(fn) && fn !== 0) {
        fn = half(fn)
        sn = half(sn)
      }
    } else {
      sr = nodeHash(sr, c)
    }
    fn = half(fn)
    sn = half(sn)
  }
  return sn === 0 && equal(fr, root1) && equal(sr, root2)
}

function isPowerOfTwo(n: number): boolean {
  let k = 1
  while (k < n) k *= 2
  return k === n
}

/**
 * A whole tree in memory, every perfect subtree kept by level: appends in O(1)
 * amortized, proofs as a stored tree would give them. For tests, the bench and tools.
 */
export class MemoryTree {
  readonly #levels: Hash[][] = [[]]

  get size(): number {
    return (this.#levels[0] as Hash[]).length
  }

  /** Appends one leaf hash (already `leafHash`ed). */
  appendLeaf(leaf: Hash): void {
    let level = 0
    let hash: Hash = leaf
    for (;;) {
      const row = this.#levels[level] ?? []
      this.#levels[level] = row
      row.push(hash)
      const index = row.length - 1
      if (index % 2 === 0) return
      hash = nodeHash(row[index - 1] as Hash, hash)
      level += 1
    }
  }

  node(id: NodeId): Hash {
    const hash = this.#levels[id.level]?.[id.index]
    if (hash === undefined) throw new RangeError(`no node ${id.level}/${id.index}`)
    return hash
  }

  rangeHash([start, end]: Range): Hash {
    return foldCover(perfectCover(start, end).map((id) => this.node(id)))
  }

  root(size = this.size): Hash {
    return this.rangeHash([0, size])
  }

  inclusionProof(index: number, size = this.size): Hash[] {
    return inclusionRanges(index, size).map((r) => this.rangeHash(r))
  }

  consistencyProof(m: number, n = this.size): Hash[] {
    if (m === 0 || m === n) return []
    return consistencyRanges(m, n).map((r) => this.rangeHash(r))
  }
}
