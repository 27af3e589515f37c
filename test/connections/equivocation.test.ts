import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { lpStream } from '@libp2p/utils'
import type { AuditLog, DefectionRecord } from '../../src/audit/index.ts'
import { verifyEquivocation } from '../../src/audit/index.ts'
import { AuditProtocol, MESH_INVOKE_PROTOCOL } from '../../src/connections/index.ts'
import { loadKeyHistory, peerIdFromDid } from '../../src/identity/index.ts'
import { silentLogger } from '../../src/log.ts'
import { branchLog, forkAuditLog } from '../fixtures/audit-fork.ts'
import { tempStore } from '../fixtures/principals.ts'
import { waitFor } from '../p2p/nodes.ts'
import { connect } from '../rooms/helpers.ts'
import { startNode, type TestNode } from './nodes.ts'

const FAST_GOSSIP = { auditProtocol: { gossipIntervalMs: 300 } }

/** A log under `node`'s key and identity, apart from the node's own: `rows` rows, the last `tag`ged. */
async function branch(t: TestContext, node: TestNode, rows: number, tag: string): Promise<AuditLog> {
  const key = (await loadKeyHistory(node.dataDir)).current
  const log = await branchLog(await tempStore(t), key, node.node.did, rows, tag)
  t.after(() => log.stop())
  return log
}

/** Makes `node` fork its log (the Must-show's helper): each asker is answered from the branch `pick` names. */
async function fork(t: TestContext, node: TestNode, pick: (asker: string) => AuditLog): Promise<void> {
  const undo = await forkAuditLog(node.node.libp2p, () => node.node.connections.peers(), pick)
  t.after(undo)
}

const defections = (node: TestNode) =>
  node.api.get<{ defections: DefectionRecord[] }>('/api/federation/defections').then((r) => r.defections)

async function flagged(node: TestNode, mesh: string): Promise<DefectionRecord> {
  return waitFor(
    async () => (await defections(node)).find((d) => d.mesh === mesh),
    `${node.name} flags ${mesh}`,
    20_000,
  )
}

describe('equivocation across meshes (in-process)', () => {
  it('A shows one log to B and another to C: B and C flag it, D (linked to B only) learns it from B’s proof', async (t) => {
    const a = await startNode(t, 'alpha', { auditProtocol: { gossipIntervalMs: 0 } })
    const [bb, cc, dd] = (await Promise.all(
      ['beta', 'gamma', 'delta'].map((n) => startNode(t, n, FAST_GOSSIP)),
    )) as [TestNode, TestNode, TestNode]
    // A forks before anyone holds a head of its real log.
    const toB = await branch(t, a, 6, 'shown to beta')
    const toC = await branch(t, a, 6, 'shown to gamma')
    await fork(t, a, (asker) => (asker === cc.node.did ? toC : toB))
    await connect(a, bb)
    await connect(a, cc)
    await connect(bb, cc)
    await connect(bb, dd)

    const [atB, atC] = await Promise.all([flagged(bb, a.node.did), flagged(cc, a.node.did)])
    const atD = await flagged(dd, a.node.did)
    for (const record of [atB, atC, atD]) {
      const proof = verifyEquivocation(record.proof)
      assert.equal(proof.mesh, a.node.did)
      assert.equal(proof.older.size, proof.newer.size)
      assert.notEqual(proof.older.root, proof.newer.root)
    }
    assert.ok(atD.source.startsWith('peer:'), atD.source)
    // Each wrote its federation.defection row.
    for (const node of [bb, cc, dd]) {
      const page = await node.api.get<{ entries: { action: string; subject: string }[] }>(
        '/api/audit?action=federation.defection',
      )
      assert.ok(
        page.entries.some((e) => e.subject === a.node.did),
        node.name,
      )
    }
    // Each put alpha on its deny list (a human takes it off); a request from alpha is refused.
    for (const node of [bb, cc, dd]) {
      const policy = await waitFor(async () => {
        const p = await node.api.get<{ deny: string[] }>('/api/federation/policy')
        return p.deny.includes(a.node.did) ? p : undefined
      }, `${node.name} denies alpha`)
      assert.ok(policy.deny.includes(a.node.did))
    }
    // alpha's messages are refused now: its next checkpoint exchange gets no answer from them.
    await a.node.audit.append({ action: 'test.after_defection' })
    const answered = await a.node.connections.exchangeCheckpoints()
    for (const node of [bb, cc]) assert.ok(!answered.includes(node.node.did), node.name)
    // … and so is an invocation it carries to beta, before anything is read.
    const stream = await a.node.libp2p.dialProtocol(peerIdFromDid(bb.node.did), MESH_INVOKE_PROTOCOL, {
      signal: AbortSignal.timeout(5000),
    })
    const frame = await lpStream(stream).read({ signal: AbortSignal.timeout(5000) })
    stream.abort(new Error('done'))
    const refusal = JSON.parse(Buffer.from(frame.subarray()).toString('utf8')) as { error: { code: string } }
    assert.equal(refusal.error.code, 'MESH_POLICY_REJECTED')
    // The honest meshes are not flagged by anyone.
    for (const node of [bb, cc, dd]) {
      assert.deepEqual(
        (await defections(node)).map((x) => x.mesh),
        [a.node.did],
      )
    }
  })

  it('a later head that does not extend an earlier one (different sizes) is proven from the mesh’s own answer', async (t) => {
    const a = await startNode(t, 'alpha', { auditProtocol: { gossipIntervalMs: 0 } })
    const b = await startNode(t, 'beta', FAST_GOSSIP)
    const c = await startNode(t, 'gamma', FAST_GOSSIP)
    const toB = await branch(t, a, 4, 'shown to beta')
    const toC = await branch(t, a, 9, 'shown to gamma')
    await fork(t, a, (asker) => (asker === c.node.did ? toC : toB))
    await connect(a, b)
    await connect(a, c)
    await connect(b, c)
    const record = await flagged(c, a.node.did)
    const proof = verifyEquivocation(record.proof)
    assert.deepEqual([proof.older.size, proof.newer.size], [4, 9])
    assert.ok(proof.prefixRoot !== null && proof.prefixRoot !== proof.older.root)
    await flagged(b, a.node.did)
  })

  it('an honest mesh that keeps appending is never flagged; a false accusation is refused and costs the accuser', async (t) => {
    const a = await startNode(t, 'alpha', FAST_GOSSIP)
    const b = await startNode(t, 'beta', FAST_GOSSIP)
    await connect(a, b)
    // Rounds of appends; each time B comes to hold A's newest head, checked consistent
    // with the one it held before (the head book's record, audit/head-book.ts).
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 7; i++) await a.node.audit.append({ action: 'test.filler', details: { round, i } })
      const size = a.node.audit.treeHead().size
      await waitFor(async () => {
        const held = (await b.node.audit.watchRecord(`watch/v1/head/${a.node.did}`)) as
          | { size: number }
          | undefined
        return held !== undefined && held.size >= size ? true : undefined
      }, `b holds a's head of ${size}`)
    }
    assert.deepEqual(await defections(b), [])
    assert.deepEqual(await defections(a), [])

    // B accuses A with a proof that does not hold: two heads of A that agree.
    const fromB = new AuditProtocol({
      libp2p: () => b.node.libp2p,
      peers: () => b.node.connections.peers(),
      audit: b.node.audit,
      logger: silentLogger(),
    })
    const head = await fromB.head(a.node.did)
    const c = await startNode(t, 'gamma', FAST_GOSSIP)
    await connect(b, c)
    const forged = {
      v: 1,
      mesh: a.node.did,
      older: head,
      newer: head,
      prefixRoot: null,
      path: [],
      rotation: [],
      foundBy: b.node.did,
      foundAt: new Date().toISOString(),
    }
    const sent = await fromB.forward({ mesh: a.node.did, proof: forged as never, at: '', source: 'found' })
    assert.deepEqual(sent, [])
    assert.deepEqual(await defections(c), [])
    // Recorded against B at C (the rejected log, whence B's reputation at C drops).
    await waitFor(async () => {
      const rejected = await c.api.get<{ entries: { kind: string; code: string; peer: string }[] }>(
        '/api/federation/rejected',
      )
      return rejected.entries.some(
        (e) => e.kind === 'audit.request' && e.code === 'MESH_PROOF_INVALID' && e.peer === b.node.did,
      )
        ? true
        : undefined
    }, 'the false accusation recorded at gamma')
  })
})
