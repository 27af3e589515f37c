import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { AuditPage, AuditVerifyReport } from '../../src/audit/index.ts'
import {
  createEnvelope,
  encodeEnvelope,
  MESH_CONNECT_PROTOCOL,
  type RejectedEntry,
} from '../../src/connections/index.ts'
import {
  createRotationRecord,
  Ed25519KeyPair,
  type RotationRecord,
  readRetiredKey,
} from '../../src/identity/index.ts'
import type { KeyRotationResult, KeysView } from '../../src/keys/index.ts'
import type { MeshManifest } from '../../src/manifest/index.ts'
import { mallory } from '../fixtures/principals.ts'
import { startHost, waitFor } from '../p2p/nodes.ts'
import { acceptedConnection, bothAt } from './both-at.ts'
import { decide, requestConnection, sendRaw, startNode, statusAt, type TestNode } from './nodes.ts'

const rotate = async (node: TestNode) =>
  node.api.post<KeyRotationResult>('/api/keys/rotate', { ucan: await node.act('mesh/rotate-key') })

describe('key rotation between two in-process meshes', () => {
  it('the connection survives a rotation; only the chain introduces the new key', async (t) => {
    const a = await startNode(t, 'alpha')
    const b = await startNode(t, 'beta')
    const identity = a.node.did
    const {
      id,
      views: [, before],
    } = await acceptedConnection(a, b)

    // Only the architect's act rotates: a member's act, or an act for another subject, is refused.
    await assert.rejects(
      a.api.post('/api/keys/rotate', { ucan: await a.act('mesh/rotate-key', undefined, mallory) }),
      (err: { code?: string }) => err.code === 'MESH_FORBIDDEN' || err.code === 'MESH_UCAN_INVALID',
    )
    await assert.rejects(
      a.api.post('/api/keys/rotate', {
        ucan: await a.act('mesh/rotate-key', undefined, undefined, b.node.did),
      }),
    )

    const result = await rotate(a)
    assert.equal(result.identity, identity)
    assert.equal(result.previous, identity)
    assert.equal(result.seq, 1)
    assert.notEqual(result.did, identity)
    assert.equal(a.node.did, result.did)
    assert.equal(a.node.peerId, result.peerId)
    assert.deepEqual(result.announcedTo, [b.node.did])
    const keys = await a.api.get<KeysView>('/api/keys')
    assert.deepEqual(keys.keys, [identity, result.did])

    // B learns the new key through the announcement; the connection is unchanged.
    const peer = await waitFor(async () => {
      const p = (await b.peers()).find((x) => x.did === identity)
      return p !== undefined && p.keys.length === 2 ? p : undefined
    }, 'beta holds alpha’s new key')
    assert.deepEqual(peer.keys, [identity, result.did])
    const after = await statusAt(b, id)
    assert.ok(after)
    assert.equal(after.status, 'accepted')
    assert.equal(after.agreementVersion, before.agreementVersion)
    assert.equal(after.peerDid, identity)
    assert.equal(after.peerKeyDid, result.did)
    assert.notEqual(after.peerKeyFingerprint, before.peerKeyFingerprint)

    // The manifest lists both keys, the second with the record that introduced it.
    const manifest = (await (
      await fetch(`${a.node.httpUrl}/.well-known/mesh-manifest.json`)
    ).json()) as MeshManifest
    assert.equal(manifest.did, result.did)
    assert.deepEqual(
      manifest.keyHistory.map((k) => k.did),
      [identity, result.did],
    )
    assert.ok(manifest.keyHistory[0]?.validUntil)
    assert.equal(manifest.keyHistory[1]?.rotation?.previous, identity)
    assert.equal(manifest.keyHistory[1]?.rotationSignature, manifest.keyHistory[1]?.rotation?.sigPrevious)

    // Mallory forges a rotation of alpha to her key: refused, logged, nothing changes.
    const m = await startHost(t, { key: mallory })
    const real = manifest.keyHistory[1]?.rotation as RotationRecord
    const forged = createRotationRecord(mallory, new Ed25519KeyPair(Buffer.alloc(32, 9)), {
      identity,
      seq: 2,
    })
    const claimed = { ...forged, previous: result.did, next: mallory.did }
    const attack = createEnvelope(mallory, {
      type: 'mesh.key-rotated',
      target: b.node.did,
      protocol: MESH_CONNECT_PROTOCOL,
      body: { connectionId: id, identity, rotations: [real, claimed] },
    })
    const reply = await sendRaw(m.libp2p, b, encodeEnvelope(attack))
    assert.equal(reply.type, 'connect.error')
    assert.equal(reply.body.code, 'MESH_SIGNATURE_MISMATCH', JSON.stringify(reply.body))
    // An envelope from a key no chain introduced, about alpha's connection: refused.
    const hijack = createEnvelope(mallory, {
      type: 'connect.disconnect',
      target: b.node.did,
      protocol: MESH_CONNECT_PROTOCOL,
      body: { connectionId: id, agreementVersion: 1, architectDid: mallory.did, decidedAt: Date.now() },
      auth: { proofs: [await a.act('connection/disconnect', id)] },
    })
    const hijacked = await sendRaw(m.libp2p, b, encodeEnvelope(hijack))
    assert.equal(hijacked.body.code, 'MESH_SIGNATURE_MISMATCH', JSON.stringify(hijacked.body))
    const rejected = await b.api.get<{ entries: RejectedEntry[] }>(
      `/api/federation/rejected?code=MESH_SIGNATURE_MISMATCH&peer=${encodeURIComponent(mallory.did)}`,
    )
    assert.ok(rejected.entries.length >= 2)
    // The retired key (as if stolen) no longer speaks for alpha.
    const oldKey = await readRetiredKey(a.dataDir, identity)
    const o = await startHost(t, { key: oldKey })
    const stale = createEnvelope(oldKey, {
      type: 'connect.disconnect',
      target: b.node.did,
      protocol: MESH_CONNECT_PROTOCOL,
      body: { connectionId: id, agreementVersion: 1, architectDid: a.architect.did, decidedAt: Date.now() },
      auth: { proofs: [await a.act('connection/disconnect', id)] },
    })
    const staleReply = await sendRaw(o.libp2p, b, encodeEnvelope(stale))
    assert.equal(staleReply.body.code, 'MESH_SIGNATURE_MISMATCH')
    assert.equal((staleReply.body.details as { reason?: string }).reason, 'retired-key')
    assert.deepEqual((await b.peers()).find((x) => x.did === identity)?.keys, [identity, result.did])
    assert.equal((await statusAt(b, id))?.status, 'accepted')

    // Sentinel: alpha's own messages, signed by the new key, are accepted.
    await decide(a, id, 'disconnect')
    await bothAt(a, b, id, 'disconnected')
    const id2 = await requestConnection(a, b)
    const [, pending] = await bothAt(a, b, id2, 'pending')
    assert.equal(pending.peerDid, identity)
    await decide(b, id2, 'accept')
    await bothAt(a, b, id2, 'accepted')
    // And beta reaches alpha at its new key (by identity).
    await decide(b, id2, 'disconnect')
    await bothAt(a, b, id2, 'disconnected')

    const rows = await b.api.get<AuditPage>('/api/audit?action=federation.peer.key_rotated')
    assert.equal(rows.entries.length, 1)

    // A restart of alpha runs on the new key; its audit log (rows by both keys) verifies.
    await a.restart()
    assert.equal(a.node.did, result.did)
    const report = await a.api.get<AuditVerifyReport>('/api/audit/verify')
    assert.equal(report.ok, true, JSON.stringify(report.problems))
    const rotatedRow = await a.api.get<AuditPage>('/api/audit?action=audit.key.rotated')
    assert.equal(rotatedRow.entries.length, 1)
    const id3 = await requestConnection(b, a)
    await bothAt(a, b, id3, 'pending')
  })

  it('refresh fetches a rotation a peer missed, from the manifest', async (t) => {
    const a = await startNode(t, 'alpha')
    const b = await startNode(t, 'beta')
    const identity = a.node.did
    const { id } = await acceptedConnection(a, b)

    // Beta is away while alpha rotates; alpha's announcement waits in its outbox.
    await b.stop()
    const result = await rotate(a)
    await a.node.connections.outbox.stop()
    await b.restart()
    assert.deepEqual((await b.peers()).find((p) => p.did === identity)?.keys, [identity])
    // A member cannot refresh; the architect can.
    const refreshed = await b.api.post<{ keys: string[]; keyFingerprint: string }>(
      `/api/federation/peers/${encodeURIComponent(identity)}/refresh`,
      { manifestUrl: a.node.httpUrl },
    )
    assert.deepEqual(refreshed.keys, [identity, result.did])
    assert.equal((await statusAt(b, id))?.peerKeyDid, result.did)
    await assert.rejects(
      b.api.post(`/api/federation/peers/${encodeURIComponent(b.node.did)}/refresh`, {}),
      (err: { code?: string }) => err.code === 'MESH_PEER_UNKNOWN',
    )
  })
})
