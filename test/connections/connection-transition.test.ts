import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { actCapability, invocationToken } from '../../src/cli/chains.ts'
import { CONNECT_MESSAGE, MESH_CONNECT_PROTOCOL } from '../../src/connections/connect-protocol.ts'
import { createEnvelope, encodeEnvelope } from '../../src/connections/envelope.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { alice, bob } from '../fixtures/principals.ts'
import { meshPieces } from './connection-pieces.ts'

// Mesh A (key meshA, architect alice) and mesh B (key meshB, architect bob), each its
// connection pieces over a real store and no libp2p: what one queues, the test carries.
const meshA = new Ed25519KeyPair(Buffer.alloc(32, 21))
const meshB = new Ed25519KeyPair(Buffer.alloc(32, 22))

function decode(bytes: Uint8Array): { type: string; body: Record<string, unknown> } {
  return JSON.parse(new TextDecoder().decode(bytes))
}

describe('a connection transition from the pieces (no libp2p)', () => {
  it('local request → inbound request applied → local accept: records, audit rows, views, queued messages', async (t) => {
    const a = await meshPieces(t, meshA, alice, 'alpha')
    const b = await meshPieces(t, meshB, bob, 'beta')

    const requested = await a.local.request({
      target: meshB.did,
      ucan: await a.act('mesh/connect', meshB.did),
      actor: alice.did,
    })
    assert.equal(requested.status, 'pending')
    assert.equal(requested.direction, 'outbound')
    assert.equal(requested.peerDid, meshB.did)
    assert.deepEqual(await a.actions(), [['federation.connection.requested', alice.did]])
    const [item] = await a.outbox.pending(meshB.did)
    assert.ok(item)
    assert.equal(item.type, CONNECT_MESSAGE.request)
    assert.equal(item.connectionId, requested.id)

    // What A's outbox would send, signed by A's key, applied by B's inbound side.
    const envelope = createEnvelope(meshA, {
      id: item.envelopeId,
      type: item.type,
      target: meshB.did,
      protocol: MESH_CONNECT_PROTOCOL,
      body: item.body,
      auth: { proofs: item.proofs },
    })
    const reply = decode(await b.inbound.receive(encodeEnvelope(envelope), meshA.did))
    assert.equal(reply.type, CONNECT_MESSAGE.ack, JSON.stringify(reply.body))
    assert.equal(reply.body.status, 'pending')
    const pending = await b.book.getView(requested.id)
    assert.equal(pending.direction, 'inbound')
    assert.equal(pending.status, 'pending')
    assert.equal(pending.peerName, 'alpha')

    const accepted = await b.local.accept(requested.id, {
      ucan: await b.act('connection/accept', requested.id),
      actor: bob.did,
    })
    assert.equal(accepted.status, 'accepted')
    assert.deepEqual(
      (await b.book.list()).map((v) => [v.id, v.status]),
      [[requested.id, 'accepted']],
    )
    assert.deepEqual(await b.actions(), [
      ['federation.connection.requested', meshA.did],
      ['federation.connection.accepted', bob.did],
    ])
    const answer = await b.outbox.pending(meshA.did)
    assert.deepEqual(
      answer.map((i) => i.type),
      [CONNECT_MESSAGE.accept],
    )
    assert.equal(answer[0]?.body.requestNonce, item.body.nonce)

    // The same copy again is a duplicate: refused, recorded, nothing else written.
    const again = decode(await b.inbound.receive(encodeEnvelope(envelope), meshA.did))
    assert.equal(again.type, CONNECT_MESSAGE.error)
    assert.equal(again.body.code, 'MESH_REPLAY')
    assert.equal((again.body.details as { status?: string }).status, 'accepted')
    assert.equal((await b.book.getView(requested.id)).status, 'accepted')
  })

  it('a local act that fails after its check is released; a refused one is recorded', async (t) => {
    const a = await meshPieces(t, meshA, alice, 'alpha')
    const ucan = await a.act('connection/disconnect', 'x'.repeat(32))
    // No such connection: refused inside the transition, after the act was claimed.
    await assert.rejects(a.local.disconnect('x'.repeat(32), { ucan, actor: alice.did }), {
      code: 'MESH_NOT_FOUND',
    })
    // The act was released, so the same token is judged again (and refused for the same reason, not as a replay).
    await assert.rejects(a.local.disconnect('x'.repeat(32), { ucan, actor: alice.did }), {
      code: 'MESH_NOT_FOUND',
    })
    const refusals = (await a.audit.list({ action: 'federation.refused' })).entries
    assert.equal(refusals.length, 2)
    assert.equal(refusals[0]?.details.kind, 'http.disconnect')
    assert.equal((await a.rejected.list()).entries.length, 2)
  })

  it('an inbound request whose act is signed by the mesh key is refused and stores nothing', async (t) => {
    const b = await meshPieces(t, meshB, bob, 'beta')
    const now = Date.now()
    const envelope = createEnvelope(meshA, {
      type: CONNECT_MESSAGE.request,
      target: meshB.did,
      protocol: MESH_CONNECT_PROTOCOL,
      body: {
        connectionId: 'c'.repeat(32),
        nonce: 'n'.repeat(22),
        name: 'alpha',
        architectDid: alice.did,
        multiaddrs: [],
        protocolVersions: [MESH_CONNECT_PROTOCOL],
        agreementVersion: 1,
        decidedAt: now,
      },
      auth: {
        proofs: [
          await invocationToken(meshA, meshA.did, actCapability(meshA.did, 'mesh/connect', meshB.did), []),
        ],
      },
    })
    const reply = decode(await b.inbound.receive(encodeEnvelope(envelope), meshA.did))
    assert.equal(reply.type, CONNECT_MESSAGE.error)
    assert.equal(reply.body.code, 'MESH_NOT_HUMAN_SIGNED')
    assert.deepEqual(await b.book.list(), [])
    assert.deepEqual(await b.actions(), [['federation.refused', meshA.did]])
  })
})
