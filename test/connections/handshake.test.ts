import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { AuditPage, AuditVerifyReport } from '../../src/audit/index.ts'
import { waitFor } from '../p2p/nodes.ts'
import { bothAt } from './both-at.ts'
import { decide, listenOf, requestConnection, startNode, statusAt } from './nodes.ts'

describe('connection handshake between two in-process meshes', () => {
  it('request → accept → disconnect → re-request the other way → decline; states equal after each step', async (t) => {
    const a = await startNode(t, 'alpha')
    const b = await startNode(t, 'beta')

    const id = await requestConnection(a, b, 'hello from alpha')
    const [outA, inB] = await bothAt(a, b, id, 'pending')
    assert.equal(outA.direction, 'outbound')
    assert.equal(inB.direction, 'inbound')
    assert.equal(inB.peerDid, a.node.did)
    assert.equal(inB.peerName, 'alpha')
    assert.equal(inB.note, 'hello from alpha')

    // Only an inbound pending request can be accepted: alpha cannot accept its own.
    await assert.rejects(decide(a, id, 'accept'), { code: 'MESH_CONFLICT' })

    assert.deepEqual(await decide(b, id, 'accept'), { id, status: 'accepted' })
    const [accA] = await bothAt(a, b, id, 'accepted')
    assert.equal(accA.agreementVersion, 1)

    // alpha learns beta's name from the ack to its request, which under load may be handled
    // after beta's accept arrived: wait for it rather than race it.
    const beta = await waitFor(
      async () => (await a.peers()).find((p) => p.did === b.node.did && p.name !== null),
      'alpha knows beta by name',
    )
    assert.equal(beta.state, 'accepted')
    assert.equal(beta.name, 'beta')
    assert.match(beta.keyFingerprint, /^SHA256:/)
    assert.ok(beta.eventsSent24h >= 1 && beta.eventsReceived24h >= 1)

    await decide(a, id, 'disconnect')
    await bothAt(a, b, id, 'disconnected')
    await assert.rejects(decide(b, id, 'disconnect'), { code: 'MESH_CONFLICT' })

    // Re-request from the other side: a new connection id and, once accepted, agreement version 2.
    const id2 = await requestConnection(b, a)
    assert.notEqual(id2, id)
    await bothAt(a, b, id2, 'pending')
    await decide(a, id2, 'decline')
    await bothAt(a, b, id2, 'declined')

    const id3 = await requestConnection(b, a)
    await bothAt(a, b, id3, 'pending')
    await decide(a, id3, 'accept')
    const [v3] = await bothAt(a, b, id3, 'accepted')
    assert.equal(v3.agreementVersion, 2)

    // A second request while connected is refused locally.
    await assert.rejects(requestConnection(a, b), { code: 'MESH_CONFLICT' })

    for (const node of [a, b]) {
      const report = await node.api.get<AuditVerifyReport>('/api/audit/verify')
      assert.equal(report.ok, true, JSON.stringify(report.problems))
      const page = await node.api.get<AuditPage>('/api/audit?action=federation.connection.&limit=100')
      const actions = page.entries.map((e) => e.action)
      assert.ok(actions.includes('federation.connection.requested'))
      assert.ok(actions.includes('federation.connection.accepted'))
      assert.ok(actions.includes('federation.connection.disconnected'))
      assert.ok(actions.includes('federation.connection.declined'))
    }
  })

  it('auto-accept: the request is accepted at once, still audited, both sides accepted', async (t) => {
    const a = await startNode(t, 'gamma')
    const b = await startNode(t, 'delta')
    const policy = await b.api.get<Record<string, unknown>>('/api/federation/policy')
    await b.api.put('/api/federation/policy', { ...policy, autoAccept: true })
    const id = await requestConnection(a, b)
    await bothAt(a, b, id, 'accepted')
    const page = await b.api.get<AuditPage>('/api/audit?action=federation.connection.accepted')
    assert.equal(page.entries.at(-1)?.details.autoAccept, true)
    const pageA = await a.api.get<AuditPage>('/api/audit?action=federation.connection.accepted')
    assert.equal(pageA.entries.length, 1)
  })

  it('a request to a mesh that is offline is delivered when it comes back (same data dir and port)', async (t) => {
    const a = await startNode(t, 'epsilon')
    const b = await startNode(t, 'zeta')
    const listen = listenOf(b.node)
    const target = b.addr()
    const bDid = b.node.did
    await b.stop()
    const res = await a.api.post<{ id: string }>('/api/connections', {
      target,
      ucan: await a.act('mesh/connect', bDid),
    })
    await waitFor(async () => {
      const c = await statusAt(a, res.id)
      return c?.lastError !== null && c?.lastError !== undefined
    }, 'a delivery failure on alpha')
    const failed = await statusAt(a, res.id)
    assert.equal(failed?.status, 'pending')
    assert.ok(
      ['connect-refused', 'timeout', 'network'].includes(failed?.lastError?.kind ?? ''),
      JSON.stringify(failed),
    )
    // alpha restarts too: the queued request survives in its outbox.
    await a.restart()
    await b.restart({ listen })
    await bothAt(a, b, res.id, 'pending')
    const delivered = a.lines.some((l) => l.event === 'federation.send.failed')
    assert.ok(delivered)
  })
})
