import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import {
  EMPTY_ROOT,
  type Hash,
  leafHash,
  MemoryTree,
  nodeHash,
  rootFromInclusion,
  splitPoint,
  verifyConsistency,
  verifyInclusion,
} from '../../src/audit/merkle.ts'

interface Vectors {
  leaves: string[]
  roots: string[]
  emptyRoot: string
  inclusionProofs: { leaf: number; size: number; proof: string[] }[]
  consistencyProofs: { size1: number; size2: number; proof: string[] }[]
}
const vectors = JSON.parse(
  readFileSync(new URL('../fixtures/rfc6962-vectors.json', import.meta.url), 'utf8'),
) as Vectors

const h = (hex: string): Hash => Buffer.from(hex, 'hex')
const flip = (hash: Hash, bit: number): void => {
  hash.writeUInt8(hash.readUInt8(0) ^ bit, 0)
}
const hexes = (hashes: Hash[]): string[] => hashes.map((x) => x.toString('hex'))

// RFC 6962 §2.1 MTH written straight from its recursive definition: the reference the
// incremental tree is checked against.
function mth(leaves: Hash[]): Hash {
  if (leaves.length === 0) return EMPTY_ROOT
  if (leaves.length === 1) return leaves[0] as Hash
  const k = splitPoint(leaves.length)
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)))
}

function treeOf(leaves: Hash[]): MemoryTree {
  const tree = new MemoryTree()
  for (const leaf of leaves) tree.appendLeaf(leaf)
  return tree
}

const vectorTree = treeOf(vectors.leaves.map((l) => leafHash(h(l))))

describe('merkle: RFC 6962 reference vectors', () => {
  it('the empty root and the roots of trees of 1 to 8 leaves', () => {
    assert.equal(EMPTY_ROOT.toString('hex'), vectors.emptyRoot)
    assert.equal(new MemoryTree().root().toString('hex'), vectors.emptyRoot)
    vectors.roots.forEach((root, i) => {
      assert.equal(vectorTree.root(i + 1).toString('hex'), root, `root of ${i + 1}`)
    })
  })

  it('inclusion proofs: generated as the vectors, verified, and every corruption refused', () => {
    for (const { leaf, size, proof } of vectors.inclusionProofs) {
      const index = leaf - 1
      assert.deepEqual(hexes(vectorTree.inclusionProof(index, size)), proof, `proof ${leaf}/${size}`)
      const root = h(vectors.roots[size - 1] as string)
      const leafH = leafHash(h(vectors.leaves[index] as string))
      const path = proof.map(h)
      assert.ok(verifyInclusion(index, size, leafH, path, root))
      // The corruptions of the reference verifier's own test.
      const wrong: [number, number, Hash, Hash[], Hash][] = [
        [index - 1, size, leafH, path, root],
        [index + 1, size, leafH, path, root],
        [index, size * 2, leafH, path, root],
        [index, Math.floor(size / 2), leafH, path, root],
        [index, size, leafHash(Buffer.from('WrongLeaf')), path, root],
        [index, size, leafH, path, EMPTY_ROOT],
        [index, size, leafH, [...path, root], root],
        [index, size, leafH, [root, ...path], root],
        [index, size, leafH, [...path, Buffer.alloc(0)], root],
        ...path.map((_, i): [number, number, Hash, Hash[], Hash] => {
          const bad = path.map((p) => Buffer.from(p))
          flip(bad[i] as Hash, 8)
          return [index, size, leafH, bad, root]
        }),
      ]
      if (path.length > 0) wrong.push([index, size, leafH, path.slice(0, -1), root])
      for (const [i, s, l, p, r] of wrong) {
        assert.equal(verifyInclusion(i, s, l, p, r), false, `corrupt ${leaf}/${size} → ${i}/${s}`)
      }
    }
  })

  it('consistency proofs: generated as the vectors, verified, and every corruption refused', () => {
    for (const { size1, size2, proof } of vectors.consistencyProofs) {
      assert.deepEqual(hexes(vectorTree.consistencyProof(size1, size2)), proof, `proof ${size1}→${size2}`)
      const r1 = h(vectors.roots[size1 - 1] as string)
      const r2 = h(vectors.roots[size2 - 1] as string)
      const path = proof.map(h)
      assert.ok(verifyConsistency(size1, size2, path, r1, r2))
      if (path.length === 0) continue
      const wrong: [number, number, Hash[], Hash, Hash][] = [
        [size1 - 1, size2, path, r1, r2],
        [size1 + 1, size2, path, r1, r2],
        [size1, size2 * 2, path, r1, r2],
        [size1, Math.floor(size2 / 2), path, r1, r2],
        [size1, size2, path, r2, r1],
        [size1, size2, path, EMPTY_ROOT, r2],
        [size1, size2, [], r1, r2],
        [size1, size2, [...path, r1], r1, r2],
        [size1, size2, [r2, ...path], r1, r2],
        [size1, size2, [path[0] as Hash, ...path], r1, r2],
        [size1, size2, path.slice(0, -1), r1, r2],
        ...path.map((_, i): [number, number, Hash[], Hash, Hash] => {
          const bad = path.map((p) => Buffer.from(p))
          flip(bad[i] as Hash, 16)
          return [size1, size2, bad, r1, r2]
        }),
      ]
      for (const [s1, s2, p, a, b] of wrong) {
        assert.equal(verifyConsistency(s1, s2, p, a, b), false, `corrupt ${size1}→${size2} as ${s1}→${s2}`)
      }
    }
  })

  it('the trivial consistency cases of the reference verifier', () => {
    const a = leafHash(Buffer.from('a'))
    const b = leafHash(Buffer.from('b'))
    assert.ok(verifyConsistency(0, 0, [], a, a))
    assert.ok(verifyConsistency(0, 1, [], a, b))
    assert.ok(verifyConsistency(1, 1, [], b, b))
    assert.equal(verifyConsistency(1, 1, [], a, b), false)
    assert.equal(verifyConsistency(1, 0, [], a, b), false)
    assert.equal(verifyConsistency(2, 1, [], a, b), false)
    assert.equal(verifyConsistency(1, 2, [], a, b), false)
    assert.equal(verifyConsistency(1, 1, [EMPTY_ROOT], a, a), false)
    assert.equal(verifyConsistency(0, 1, [EMPTY_ROOT], a, a), false)
  })
})

describe('merkle: cross-checked against the recursive definition', () => {
  const leaves = Array.from({ length: 70 }, (_, i) => leafHash(Buffer.from(`row ${i}`)))
  const tree = treeOf(leaves)

  it('every root of 0 to 70 leaves equals MTH', () => {
    for (let n = 0; n <= leaves.length; n++) {
      assert.deepEqual(tree.root(n), mth(leaves.slice(0, n)), `n=${n}`)
    }
  })

  it('every inclusion proof of every leaf in every size verifies, and not for another leaf', () => {
    for (let n = 1; n <= leaves.length; n++) {
      const root = mth(leaves.slice(0, n))
      for (let i = 0; i < n; i++) {
        const path = tree.inclusionProof(i, n)
        assert.deepEqual(rootFromInclusion(i, n, leaves[i] as Hash, path), root, `${i}/${n}`)
        if (n > 1) assert.equal(verifyInclusion(i, n, leaves[(i + 1) % n] as Hash, path, root), false)
      }
    }
  })

  it('every consistency proof between every pair of sizes verifies, and not against another root', () => {
    for (let n = 1; n <= leaves.length; n++) {
      const rn = mth(leaves.slice(0, n))
      for (let m = 1; m <= n; m++) {
        const rm = mth(leaves.slice(0, m))
        const path = tree.consistencyProof(m, n)
        assert.ok(verifyConsistency(m, n, path, rm, rn), `${m}→${n}`)
        if (m < n) {
          // A fork: the same size m, another last leaf.
          const forked = mth([...leaves.slice(0, m - 1), leafHash(Buffer.from('forged'))])
          assert.equal(verifyConsistency(m, n, path, forked, rn), false, `fork ${m}→${n}`)
        }
      }
    }
  })
})
