import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { AuditLog, type EquivocationProof, verifyEquivocation } from '../../src/audit/index.ts'
import { alice, bob, mallory, tempStore } from '../fixtures/principals.ts'

async function branch(t: TestContext, rows: number, tag: string, key = alice) {
  let clock = Date.parse('2026-01-01T00:00:00Z')
  const log = new AuditLog({ store: await tempStore(t), key, mesh: alice.did, now: () => (clock += 1000) })
  await log.start()
  t.after(() => log.stop())
  for (let i = 0; i < rows; i++) {
    await log.append({ action: 'test.row', details: { i, ...(i === rows - 1 ? { tag } : {}) } })
  }
  return log
}

const base = {
  v: 1 as const,
  rotation: [],
  foundBy: bob.did,
  foundAt: '2026-01-01T00:00:00Z',
  mesh: alice.did,
}
const codeOf = (code: string) => (err: unknown) => (err as { code?: string }).code === code

describe('equivocation proofs', () => {
  it('two heads of one size with two roots verify as one; agreeing heads are refused', async (t) => {
    const [x, y] = [await branch(t, 5, 'x'), await branch(t, 5, 'y')]
    const proof: EquivocationProof = {
      ...base,
      older: x.treeHead(),
      newer: y.treeHead(),
      prefixRoot: null,
      path: [],
    }
    assert.equal(verifyEquivocation(JSON.parse(JSON.stringify(proof))).mesh, alice.did)
    assert.throws(() => verifyEquivocation({ ...proof, newer: x.treeHead() }), codeOf('MESH_PROOF_INVALID'))
  })

  it('heads of two sizes: the newer tree’s own path shows another prefix root', async (t) => {
    const [x, y] = [await branch(t, 3, 'x'), await branch(t, 8, 'y')]
    const answer = await y.consistencyProof(3)
    const proof: EquivocationProof = {
      ...base,
      older: x.treeHead(),
      newer: y.treeHead(),
      prefixRoot: answer.fromRoot,
      path: answer.path,
    }
    verifyEquivocation(proof)
    // Claimed against a head the newer tree does extend: refused.
    const y3 = await branch(t, 8, 'y')
    const honest = await y3.consistencyProof(3)
    assert.throws(
      () => verifyEquivocation({ ...proof, older: { ...y.treeHead() }, prefixRoot: honest.fromRoot }),
      codeOf('MESH_PROOF_INVALID'),
    )
    // A path that does not come from the newer tree: refused.
    assert.throws(
      () => verifyEquivocation({ ...proof, path: ['00'.repeat(32)] }),
      codeOf('MESH_PROOF_INVALID'),
    )
  })

  it('forged heads, heads of another mesh and malformed proofs are refused with their codes', async (t) => {
    const [x, y] = [await branch(t, 4, 'x'), await branch(t, 4, 'y')]
    const ok: EquivocationProof = {
      ...base,
      older: x.treeHead(),
      newer: y.treeHead(),
      prefixRoot: null,
      path: [],
    }
    // A key that is not the mesh's (no rotation chain joins it).
    const byMallory = await branch(t, 4, 'm', mallory)
    assert.throws(
      () => verifyEquivocation({ ...ok, newer: byMallory.treeHead() }),
      codeOf('MESH_SIGNATURE_MISMATCH'),
    )
    assert.throws(
      () => verifyEquivocation({ ...ok, older: { ...ok.older, root: 'ab'.repeat(32) } }),
      codeOf('MESH_SIGNATURE_MISMATCH'),
    )
    assert.throws(() => verifyEquivocation({ ...ok, mesh: bob.did }), codeOf('MESH_SIGNATURE_MISMATCH'))
    assert.throws(() => verifyEquivocation({ ...ok, v: 2 }), codeOf('MESH_BAD_REQUEST'))
    assert.throws(() => verifyEquivocation('{}'), codeOf('MESH_BAD_REQUEST'))
  })
})

describe('the head book', () => {
  it('holds heads that extend, refuses a forged head and a replayed one from the mesh itself, flags a fork', async (t) => {
    const { HeadBook } = await import('../../src/audit/index.ts')
    const { silentLogger } = await import('../../src/log.ts')
    let clock = Date.parse('2026-02-01T00:00:00Z')
    const source = new AuditLog({ store: await tempStore(t), key: alice, now: () => (clock += 1000) })
    await source.start()
    t.after(() => source.stop())
    const own = new AuditLog({ store: await tempStore(t), key: bob })
    await own.start()
    t.after(() => own.stop())
    const found: string[] = []
    const book = new HeadBook({
      audit: own,
      logger: silentLogger(),
      keysOf: async () => ({ keys: [alice.did], rotation: [] }),
      ask: async (_mesh, from) => source.consistencyProof(from),
      onDefection: (r) => found.push(r.mesh),
    })
    await source.append({ action: 'test.row' })
    const old = source.treeHead()
    assert.equal(await book.take(old, { fresh: true }), 'held')
    await source.append({ action: 'test.row' })
    const now = source.treeHead()
    assert.equal(await book.take(now, { fresh: true }), 'held')
    // The old head again, from the mesh itself: a replay.
    await assert.rejects(book.take(old, { fresh: true }), codeOf('MESH_REPLAY'))
    // Passed on by a peer, an old head is only old.
    assert.equal(await book.take(old), 'older')
    // Forged: altered, or signed by a key not the mesh's.
    await assert.rejects(book.take({ ...now, size: 9 }), codeOf('MESH_SIGNATURE_MISMATCH'))
    const fork = await branch(t, 2, 'other')
    assert.equal(await book.take(fork.treeHead()), 'defection')
    assert.deepEqual(found, [alice.did])
    assert.equal((await book.defections()).length, 1)
  })
})

describe('equivocation proofs across a key rotation', () => {
  it('heads signed by a rotated key verify with the rotation chain the proof carries, not without', async (t) => {
    const { createRotationRecord } = await import('../../src/identity/index.ts')
    // alice's mesh, rotated to mallory's key (the key names do not matter here).
    const rotation = [
      createRotationRecord(alice, mallory, {
        identity: alice.did,
        seq: 1,
        ts: Date.parse('2026-01-01T00:00:00Z'),
      }),
    ]
    const signedBy = async (rows: number, tag: string) => {
      let clock = Date.parse('2026-01-02T00:00:00Z')
      const log = new AuditLog({
        store: await tempStore(t),
        key: mallory,
        mesh: alice.did,
        now: () => (clock += 1000),
      })
      await log.start()
      t.after(() => log.stop())
      for (let i = 0; i < rows; i++) await log.append({ action: 'test.row', details: { i, tag } })
      return log.treeHead()
    }
    const proof: EquivocationProof = {
      ...base,
      older: await signedBy(3, 'x'),
      newer: await signedBy(3, 'y'),
      prefixRoot: null,
      path: [],
      rotation: rotation as unknown as EquivocationProof['rotation'],
    }
    assert.equal(verifyEquivocation(proof).newer.key, mallory.did)
    assert.throws(() => verifyEquivocation({ ...proof, rotation: [] }), codeOf('MESH_SIGNATURE_MISMATCH'))
    // A chain of another identity does not join the key to this mesh.
    const foreign = [
      createRotationRecord(bob, mallory, {
        identity: bob.did,
        seq: 1,
        ts: Date.parse('2026-01-01T00:00:00Z'),
      }),
    ]
    assert.throws(
      () => verifyEquivocation({ ...proof, rotation: foreign as unknown as EquivocationProof['rotation'] }),
      codeOf('MESH_SIGNATURE_MISMATCH'),
    )
  })
})

describe('heads of a rotated mesh passed on with its chain', () => {
  it('a mesh with no peer record: refused without the chain, held with it, and the chain kept to pass on', async (t) => {
    const { createRotationRecord } = await import('../../src/identity/index.ts')
    const { HeadBook } = await import('../../src/audit/index.ts')
    const { silentLogger } = await import('../../src/log.ts')
    const chain = [
      createRotationRecord(alice, mallory, {
        identity: alice.did,
        seq: 1,
        ts: Date.parse('2026-01-01T00:00:00Z'),
      }),
    ]
    let clock = Date.parse('2026-01-02T00:00:00Z')
    const rotated = new AuditLog({
      store: await tempStore(t),
      key: mallory,
      mesh: alice.did,
      now: () => (clock += 1000),
    })
    await rotated.start()
    t.after(() => rotated.stop())
    await rotated.append({ action: 'test.row' })
    const own = new AuditLog({ store: await tempStore(t), key: bob })
    await own.start()
    t.after(() => own.stop())
    const book = new HeadBook({
      audit: own,
      logger: silentLogger(),
      keysOf: async () => undefined,
      ask: async () => undefined,
    })
    const head = rotated.treeHead()
    await assert.rejects(book.take(head), codeOf('MESH_SIGNATURE_MISMATCH'))
    assert.equal(await book.take(head, { chain }), 'held')
    assert.equal((await book.chainOf(alice.did))?.length, 1)
    // Later heads verify with the chain kept.
    await rotated.append({ action: 'test.row' })
    assert.notEqual(await book.take(rotated.treeHead()), 'defection')
  })
})
