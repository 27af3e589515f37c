import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { DefectionRecord } from '../../src/audit/index.ts'
import { verifyEquivocation } from '../../src/audit/index.ts'
import { createEnvelope, encodeEnvelope, MESH_AUDIT_PROTOCOL } from '../../src/connections/index.ts'
import { type Ed25519KeyPair, loadKeyHistory } from '../../src/identity/index.ts'
import { branchLog, forkAuditLog } from '../fixtures/audit-fork.ts'
import { tempStore } from '../fixtures/principals.ts'
import { waitFor } from '../p2p/nodes.ts'
import { connect, mallory } from '../rooms/helpers.ts'
import { connectOverHttp, freePort, unreachable } from './http-nodes.ts'
import { startNode, type TestNode } from './nodes.ts'

/** One raw POST of an audit request from `key` to `node`'s `/federation/send`. */
function auditEnvelope(key: Ed25519KeyPair, node: TestNode, request: Record<string, unknown>): Uint8Array {
  return encodeEnvelope(
    createEnvelope(key, {
      type: 'audit.request',
      target: node.node.did,
      protocol: MESH_AUDIT_PROTOCOL,
      body: request,
    }),
  )
}

async function post(
  node: TestNode,
  body: Uint8Array,
): Promise<{ status: number; json: { type?: string; body?: Record<string, unknown> } }> {
  const res = await fetch(`${node.node.httpUrl}/federation/send`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  })
  return { status: res.status, json: (await res.json()) as { type?: string; body?: Record<string, unknown> } }
}

const FAST_GOSSIP = { auditProtocol: { gossipIntervalMs: 300 } }

const defections = (node: TestNode) =>
  node.api.get<{ defections: DefectionRecord[] }>('/api/federation/defections').then((r) => r.defections)

describe('audit heads over phase-1 HTTP (SPEC §11, §12)', () => {
  it('A shows one log to B and another to C; B and C, joined only over HTTP, catch the equivocation by gossiping heads', async (t) => {
    const a = await startNode(t, 'alpha', { auditProtocol: { gossipIntervalMs: 0 } })
    const b = await unreachable(t, 'beta', await freePort(), FAST_GOSSIP)
    const c = await unreachable(t, 'gamma', await freePort(), FAST_GOSSIP)
    // alpha forks before anyone holds a head of its real log: beta sees one branch, gamma another.
    const key = (await loadKeyHistory(a.dataDir)).current
    const toB = await branchLog(await tempStore(t), key, a.node.did, 6, 'shown to beta')
    const toC = await branchLog(await tempStore(t), key, a.node.did, 6, 'shown to gamma')
    t.after(() => Promise.all([toB.stop(), toC.stop()]))
    t.after(
      await forkAuditLog(
        a.node.libp2p,
        () => a.node.connections.peers(),
        (asker) => (asker === c.node.did ? toC : toB),
      ),
    )
    // beta and gamma reach alpha over libp2p (they dial it); each other only over HTTP.
    await connect(b, a)
    await connect(c, a)
    await connectOverHttp(b, c)

    const [atB, atC] = await Promise.all(
      [b, c].map((node) =>
        waitFor(
          async () => (await defections(node)).find((d) => d.mesh === a.node.did),
          `${node.name} flags alpha`,
          30_000,
        ),
      ),
    )
    for (const record of [atB, atC]) {
      const proof = verifyEquivocation(record?.proof)
      assert.equal(proof.mesh, a.node.did)
      assert.notEqual(proof.older.root, proof.newer.root)
    }
    // Neither reached the other over libp2p: the heads travelled over HTTP.
    assert.equal(
      b.node.libp2p.getConnections().filter((x) => x.remotePeer.toString() === c.node.peerId).length,
      0,
    )
    assert.equal(
      c.node.libp2p.getConnections().filter((x) => x.remotePeer.toString() === b.node.peerId).length,
      0,
    )
    // Raw audit requests on beta's /federation/send: gamma's head answered; a stranger's and a malformed one refused.
    const gammaKey = (await loadKeyHistory(c.dataDir)).current
    const head = await post(b, auditEnvelope(gammaKey, b, { op: 'head' }))
    assert.equal(head.status, 200, JSON.stringify(head.json))
    assert.equal(head.json.type, 'audit.answer')
    assert.equal((head.json.body?.ok as { mesh?: string } | undefined)?.mesh, b.node.did)
    const stranger = await post(b, auditEnvelope(mallory, b, { op: 'head' }))
    assert.deepEqual(
      [stranger.status, stranger.json.type, stranger.json.body?.code],
      [409, 'audit.error', 'MESH_NOT_CONNECTED'],
    )
    const malformed = await post(b, auditEnvelope(gammaKey, b, { op: 'everything' }))
    assert.deepEqual([malformed.status, malformed.json.body?.code], [400, 'MESH_BAD_REQUEST'])
    // The honest meshes are not flagged.
    for (const node of [b, c])
      assert.deepEqual(
        (await defections(node)).map((x) => x.mesh),
        [a.node.did],
      )
  })
})
