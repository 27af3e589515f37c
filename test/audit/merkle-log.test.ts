import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import {
  AuditLog,
  checkConsistencyProof,
  checkInclusionProof,
  compareTreeHeads,
  MemoryTree,
  parseTreeHead,
  rowLeaf,
  type SignedTreeHead,
  signTreeHead,
} from '../../src/audit/index.ts'
import type { MeshStore } from '../../src/store/index.ts'
import { alice, bob, mallory, tempStore } from '../fixtures/principals.ts'

async function startedLog(
  t: TestContext,
  store: MeshStore,
  init: { key?: typeof alice; mesh?: string } = {},
) {
  let clock = Date.parse('2026-01-01T00:00:00Z')
  const audit = new AuditLog({ store, key: init.key ?? alice, mesh: init.mesh, now: () => (clock += 1000) })
  await audit.start()
  t.after(() => audit.stop())
  return audit
}

async function fill(audit: AuditLog, n: number, tag = 'row'): Promise<string[]> {
  const hashes: string[] = []
  for (let i = 0; i < n; i++) {
    const row = await audit.append({ action: 'federation.connection.accepted', subject: `${tag}-${i}` })
    hashes.push(row.hash)
  }
  return hashes
}

function memoryTreeOf(hashes: string[]): MemoryTree {
  const tree = new MemoryTree()
  for (const hash of hashes) tree.appendLeaf(rowLeaf(hash))
  return tree
}

const codeOf = (code: string) => (err: unknown) => (err as { code?: string }).code === code

describe('audit log as a Merkle log', () => {
  it('the signed tree head is the RFC 6962 root of the rows, signed by the mesh key', async (t) => {
    const audit = await startedLog(t, await tempStore(t))
    const empty = audit.treeHead()
    assert.equal(empty.size, 0)
    assert.equal(empty.root, new MemoryTree().root().toString('hex'))
    const hashes = await fill(audit, 37)
    const head = parseTreeHead(audit.treeHead(), audit.knownKeys())
    assert.equal(head.size, 37)
    assert.equal(head.mesh, alice.did)
    assert.equal(head.key, alice.did)
    assert.equal(head.root, memoryTreeOf(hashes).root().toString('hex'))
  })

  it('every row has an inclusion proof that verifies against the head, and for an earlier size', async (t) => {
    const audit = await startedLog(t, await tempStore(t))
    const hashes = await fill(audit, 21)
    const head = audit.treeHead()
    for (let seq = 1; seq <= 21; seq++) {
      const proof = await audit.inclusionProof(seq)
      assert.equal(proof.row.hash, hashes[seq - 1])
      checkInclusionProof(proof, head)
    }
    const earlier = await audit.inclusionProof(3, 10)
    assert.equal(earlier.root, memoryTreeOf(hashes.slice(0, 10)).root().toString('hex'))
    // Checked against a head of size 10 (its fields, re-signed here as the log would have then).
    checkInclusionProof(
      earlier,
      signTreeHead(alice, { mesh: alice.did, size: 10, root: earlier.root, ts: head.ts }),
    )
  })

  it('every pair of heads the log signed as it grew is joined by a consistency proof', async (t) => {
    const audit = await startedLog(t, await tempStore(t))
    const heads: SignedTreeHead[] = [audit.treeHead()]
    for (let i = 0; i < 19; i++) {
      await fill(audit, 1, `r${i}`)
      heads.push(audit.treeHead())
    }
    for (const older of heads) {
      for (const newer of heads) {
        if (newer.size < older.size) continue
        const proof = await audit.consistencyProof(older.size, newer.size)
        checkConsistencyProof(proof, older, newer)
      }
    }
  })

  it('survives a restart: the same root, appends go on, the old head is extended', async (t) => {
    const store = await tempStore(t)
    const first = await startedLog(t, store)
    const hashes = await fill(first, 13)
    const before = first.treeHead()
    await first.stop()
    const second = await startedLog(t, store)
    assert.equal(second.treeHead().root, before.root)
    hashes.push(...(await fill(second, 6, 'after')))
    const after = second.treeHead()
    assert.equal(after.root, memoryTreeOf(hashes).root().toString('hex'))
    checkConsistencyProof(await second.consistencyProof(before.size, after.size), before, after)
  })

  it('a log written before the tree existed gets its tree at start (backfill)', async (t) => {
    const store = await tempStore(t)
    const first = await startedLog(t, store)
    const hashes = await fill(first, 25)
    const root = first.treeHead().root
    await first.stop()
    // Remove every tree key: the store as an older node left it.
    const sub = store.sublevel('audit')
    for await (const key of sub.keys({ gte: 'tree/', lt: 'tree/~' })) await sub.del(key)
    const second = await startedLog(t, store)
    assert.equal(second.treeHead().root, root)
    hashes.push(...(await fill(second, 3, 'more')))
    assert.equal(second.treeHead().root, memoryTreeOf(hashes).root().toString('hex'))
    checkInclusionProof(await second.inclusionProof(7), second.treeHead())
  })

  it('key rotation keeps one log: the head names the new key, proofs join heads across it', async (t) => {
    const audit = await startedLog(t, await tempStore(t))
    await fill(audit, 5)
    const before = audit.treeHead()
    await audit.rotateKey(bob)
    await fill(audit, 4, 'rotated')
    const after = parseTreeHead(audit.treeHead(), audit.knownKeys())
    assert.equal(after.key, bob.did)
    assert.equal(after.mesh, alice.did)
    checkConsistencyProof(await audit.consistencyProof(before.size, after.size), before, after)
  })

  it('each append writes O(log n) tree nodes, in the row’s batch', async (t) => {
    const store = await tempStore(t)
    const audit = await startedLog(t, store)
    await fill(audit, 64)
    let nodes = 0
    for await (const _ of store.sublevel('audit').keys({ gte: 'tree/v1/n/', lt: 'tree/v1/n/~' })) nodes++
    // 64 leaves + 32 + 16 + 8 + 4 + 2 + 1 parents: 2n − 1.
    assert.equal(nodes, 127)
  })
})

describe('audit Merkle log: refusals', () => {
  it('bad positions are MESH_BAD_REQUEST, positions past the log MESH_NOT_FOUND', async (t) => {
    const audit = await startedLog(t, await tempStore(t))
    await fill(audit, 4)
    await assert.rejects(audit.inclusionProof(0), codeOf('MESH_BAD_REQUEST'))
    await assert.rejects(audit.inclusionProof(1.5), codeOf('MESH_BAD_REQUEST'))
    await assert.rejects(audit.inclusionProof(3, 2), codeOf('MESH_BAD_REQUEST'))
    await assert.rejects(audit.inclusionProof(5), codeOf('MESH_NOT_FOUND'))
    await assert.rejects(audit.inclusionProof(1, 9), codeOf('MESH_NOT_FOUND'))
    await assert.rejects(audit.consistencyProof(3, 2), codeOf('MESH_BAD_REQUEST'))
    await assert.rejects(audit.consistencyProof(-1), codeOf('MESH_BAD_REQUEST'))
    await assert.rejects(audit.consistencyProof(2, 5), codeOf('MESH_NOT_FOUND'))
    await assert.rejects(audit.consistencyProof(7), codeOf('MESH_NOT_FOUND'))
  })

  it('a forged head is MESH_SIGNATURE_MISMATCH: altered, or signed by a key not of the mesh', async (t) => {
    const audit = await startedLog(t, await tempStore(t))
    await fill(audit, 3)
    const head = audit.treeHead()
    assert.throws(
      () => parseTreeHead({ ...head, root: 'ab'.repeat(32) }, audit.knownKeys()),
      codeOf('MESH_SIGNATURE_MISMATCH'),
    )
    const byMallory = signTreeHead(mallory, { mesh: alice.did, size: 3, root: head.root, ts: head.ts })
    assert.throws(() => parseTreeHead(byMallory, audit.knownKeys()), codeOf('MESH_SIGNATURE_MISMATCH'))
    assert.throws(() => parseTreeHead({ ...head, extra: 1 }), codeOf('MESH_BAD_REQUEST'))
  })

  it('a replayed old head is MESH_REPLAY', async (t) => {
    const audit = await startedLog(t, await tempStore(t))
    await fill(audit, 2)
    const old = audit.treeHead()
    await fill(audit, 2, 'later')
    const held = audit.treeHead()
    assert.equal(compareTreeHeads(held, audit.treeHead()), 'same')
    assert.throws(() => compareTreeHeads(held, old), codeOf('MESH_REPLAY'))
    assert.equal(compareTreeHeads(old, held), 'newer')
  })

  it('a proof for another mesh’s log, or for a log of another size, is MESH_PROOF_INVALID', async (t) => {
    const ours = await startedLog(t, await tempStore(t))
    const theirs = await startedLog(t, await tempStore(t), { key: bob })
    await fill(ours, 8)
    await fill(theirs, 8)
    const older = ours.treeHead()
    await fill(ours, 3, 'more')
    await fill(theirs, 3, 'more')
    const newer = ours.treeHead()
    // Another mesh's consistency proof, and another mesh's inclusion proof.
    const foreign = await theirs.consistencyProof(8, 11)
    assert.throws(() => checkConsistencyProof(foreign, older, newer), codeOf('MESH_PROOF_INVALID'))
    assert.throws(
      () => checkConsistencyProof({ ...foreign, mesh: alice.did }, older, newer),
      codeOf('MESH_PROOF_INVALID'),
    )
    const theirInclusion = theirsProof(await theirs.inclusionProof(2))
    assert.throws(() => checkInclusionProof(theirInclusion, newer), codeOf('MESH_PROOF_INVALID'))
    // Another size.
    const wrongSize = await ours.consistencyProof(7, 11)
    assert.throws(() => checkConsistencyProof(wrongSize, older, newer), codeOf('MESH_PROOF_INVALID'))
    const inclusionAt10 = await ours.inclusionProof(2, 10)
    assert.throws(() => checkInclusionProof(inclusionAt10, newer), codeOf('MESH_PROOF_INVALID'))
  })

  it('a row that is not in the log has no proof that verifies; a fork is not consistent', async (t) => {
    const audit = await startedLog(t, await tempStore(t))
    await fill(audit, 6)
    const head = audit.treeHead()
    const proof = await audit.inclusionProof(4)
    // The row changed: its hash no longer matches.
    const altered = { ...proof, row: { ...proof.row, subject: 'something else' } }
    assert.throws(() => checkInclusionProof(altered, head), codeOf('MESH_PROOF_INVALID'))
    // Another row's proof claimed for this position.
    const other = await audit.inclusionProof(5)
    assert.throws(
      () => checkInclusionProof({ ...other, seq: 4, row: { ...other.row, seq: 4 } }, head),
      codeOf('MESH_PROOF_INVALID'),
    )
    // A tampered path.
    const path = [...proof.path]
    path[0] = 'ff'.repeat(32)
    assert.throws(() => checkInclusionProof({ ...proof, path }, head), codeOf('MESH_PROOF_INVALID'))

    // A fork under one key: the same first 4 rows, then two different histories.
    const forkA = await startedLog(t, await tempStore(t))
    const forkB = await startedLog(t, await tempStore(t))
    await fill(forkA, 4, 'shared')
    await fill(forkB, 4, 'shared')
    const common = forkA.treeHead()
    await fill(forkA, 3, 'shown-to-b')
    await fill(forkB, 3, 'shown-to-c')
    const a = forkA.treeHead()
    const b = forkB.treeHead()
    assert.equal(a.size, b.size)
    assert.notEqual(a.root, b.root)
    // Each branch extends the common head, but no proof joins them.
    checkConsistencyProof(await forkA.consistencyProof(4, 7), common, a)
    checkConsistencyProof(await forkB.consistencyProof(4, 7), common, b)
    const same = await forkA.consistencyProof(7, 7)
    assert.throws(() => checkConsistencyProof(same, a, b), codeOf('MESH_PROOF_INVALID'))
  })
})

// An inclusion proof passed off as this mesh's (its mesh field rewritten).
function theirsProof<T extends { mesh: string }>(proof: T): T {
  return { ...proof, mesh: alice.did }
}
