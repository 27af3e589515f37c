import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createEnvelope, encodeEnvelope, type RejectedEntry } from '../../src/connections/index.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { mallory } from '../fixtures/principals.ts'
import { FAST, requestEnvelope, startNode, type TestNode } from './nodes.ts'

interface Answer {
  status: number
  json: {
    type?: string
    origin?: string
    target?: string
    body?: Record<string, unknown>
    error?: { code: string; details: Record<string, unknown> }
  }
}

async function post(node: TestNode, path: string, body: Uint8Array | string): Promise<Answer> {
  const res = await fetch(`${node.node.httpUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  })
  return { status: res.status, json: (await res.json()) as Answer['json'] }
}

/** A signed connect.error with `code` (and `reason`), with the code's status. */
function refused(answer: Answer, code: string, status: number, reason?: string): void {
  assert.equal(answer.json.type, 'connect.error', JSON.stringify(answer.json))
  assert.equal(answer.json.body?.code, code, JSON.stringify(answer.json.body))
  assert.equal(answer.status, status)
  if (reason !== undefined)
    assert.equal((answer.json.body?.details as { reason?: string } | undefined)?.reason, reason)
}

/** Nothing about `peer` is stored: no connection, no peer record; the refusal is in the rejected log. */
async function nothingStored(node: TestNode, peer: string, code?: string): Promise<void> {
  assert.equal((await node.connections()).filter((c) => c.peerDid === peer).length, 0, 'no connection')
  assert.equal((await node.peers()).filter((p) => p.did === peer).length, 0, 'no peer')
  assert.equal(await node.node.httpFederation.peers.get(peer), undefined, 'no http base')
  if (code !== undefined) {
    const rejected = await node.api.get<{ entries: RejectedEntry[] }>(
      `/api/federation/rejected?code=${code}&peer=${encodeURIComponent(peer)}`,
    )
    assert.ok(rejected.entries.length > 0, `${code} from ${peer} in rejected`)
  }
}

/** A rooms.frames envelope from `key` to `node` carrying `frames` (base64url). */
function framesEnvelope(key: Ed25519KeyPair, node: TestNode, frames: string[]) {
  return createEnvelope(key, {
    type: 'rooms.frames',
    target: node.node.did,
    protocol: '/mesh/rooms/1.0.0',
    body: { frames },
  })
}

describe('phase-1 HTTP federation: the HTTP face (SPEC §12)', () => {
  it('refuses room frames from a mesh with no accepted connection, forged, replayed, oversized and flooding, each with its code; nothing stored', async (t) => {
    const b = await startNode(t, 'beta', {
      connections: { ...FAST, httpFallback: { roomsRateLimit: { capacity: 20, refillPerSecond: 1 } } },
    })
    const { id: room } = await b.api.post<{ id: string }>('/api/rooms', { name: 'kept' })
    const roomsBefore = await b.api.get<{ rooms: unknown[] }>('/api/rooms')

    // Signed, but from a stranger: no link without an accepted connection.
    const m1 = Ed25519KeyPair.generate()
    const strangerBytes = encodeEnvelope(framesEnvelope(m1, b, []))
    const stranger = await post(b, '/federation/send', strangerBytes)
    assert.equal(stranger.json.type, 'rooms.error', JSON.stringify(stranger.json))
    assert.equal(stranger.json.body?.code, 'MESH_NOT_CONNECTED')
    assert.equal(stranger.status, 409)

    // The same bytes again: a replay.
    const replayed = await post(b, '/federation/send', strangerBytes)
    assert.equal(replayed.json.body?.code, 'MESH_REPLAY')

    // Forged: the frames changed after signing.
    const forged = framesEnvelope(m1, b, [])
    forged.body.frames = ['AAAA']
    const refusedForged = await post(b, '/federation/send', encodeEnvelope(forged))
    assert.equal(refusedForged.json.body?.code, 'MESH_SIGNATURE_MISMATCH')
    assert.equal(refusedForged.status, 401)

    // Oversized: more than the rooms body limit.
    const big = await post(
      b,
      '/federation/send',
      encodeEnvelope(framesEnvelope(m1, b, ['A'.repeat(1_500_000)])),
    )
    assert.equal(big.status, 413)
    assert.equal(big.json.error?.code, 'MESH_TOO_LARGE')

    // A connect message on /federation/send is held to the envelope limit (64 KiB) by its own check.
    const m2 = Ed25519KeyPair.generate()
    const rotated = createEnvelope(m2, {
      type: 'mesh.key-rotated',
      target: b.node.did,
      protocol: '/mesh/connect/1.0.0',
      body: { filler: 'x'.repeat(70 * 1024) },
    })
    refused(await post(b, '/federation/send', encodeEnvelope(rotated)), 'MESH_TOO_LARGE', 413)

    // Flooding: one origin's room bucket (20 here) runs out.
    const m3 = Ed25519KeyPair.generate()
    const flood = Array.from({ length: 60 }, () => encodeEnvelope(framesEnvelope(m3, b, [])))
    const answers = await Promise.all(flood.map((bytes) => post(b, '/federation/send', bytes)))
    const limited = answers.filter((a) => a.json.body?.code === 'MESH_RATE_LIMITED')
    assert.ok(limited.length >= 30, `${limited.length} rate limited`)
    for (const a of limited) assert.equal(a.status, 429)

    // Sentinel: no connection, no peer, the rooms as they were.
    assert.deepEqual(await b.connections(), [])
    assert.deepEqual(await b.peers(), [])
    assert.deepEqual(await b.api.get<{ rooms: unknown[] }>('/api/rooms'), roomsBefore)
    assert.ok(room.length > 0)
  })

  it('names its endpoints in the manifest', async (t) => {
    const b = await startNode(t, 'beta')
    const manifest = (await (await fetch(`${b.node.httpUrl}/.well-known/mesh-manifest.json`)).json()) as {
      endpoints: { federation?: Record<string, string> }
    }
    assert.deepEqual(manifest.endpoints.federation, {
      request: `${b.node.httpUrl}/connections/request`,
      accepted: `${b.node.httpUrl}/connections/accepted`,
      declined: `${b.node.httpUrl}/connections/declined`,
      disconnect: `${b.node.httpUrl}/connections/disconnect`,
      send: `${b.node.httpUrl}/federation/send`,
    })
  })

  it('takes a request over HTTP into the same state machine, and refuses replayed, forged, oversized, wrong-target, misrouted and flooding envelopes with their codes', async (t) => {
    const b = await startNode(t, 'beta', {
      connections: {
        retryBaseMs: 100,
        retryMaxMs: 500,
        sendTimeoutMs: 3000,
        probeIntervalMs: 0,
        rateLimit: { capacity: 5, refillPerSecond: 0.1 },
      },
    })

    // A valid request: pending, the peer's HTTP base kept for the answer.
    const good = Ed25519KeyPair.generate()
    const request = await requestEnvelope(good, mallory, b)
    ;(request.body as Record<string, unknown>).http = 'http://127.0.0.1:9/'
    const resigned = createEnvelope(good, {
      id: request.id,
      type: request.type,
      target: request.target,
      protocol: request.protocol,
      body: request.body,
      ...(request.auth !== undefined ? { auth: request.auth } : {}),
    })
    const bytes = encodeEnvelope(resigned)
    const ack = await post(b, '/connections/request', bytes)
    assert.equal(ack.status, 200)
    assert.equal(ack.json.type, 'connect.ack', JSON.stringify(ack.json))
    assert.equal(ack.json.body?.status, 'pending')
    assert.equal(ack.json.origin, b.node.did)
    assert.equal(ack.json.target, good.did)
    assert.equal((await b.connections()).filter((c) => c.peerDid === good.did).length, 1)
    assert.equal(await b.node.httpFederation.peers.get(good.did), 'http://127.0.0.1:9')

    // Replayed: the same bytes again.
    refused(await post(b, '/connections/request', bytes), 'MESH_REPLAY', 409, 'duplicate')
    assert.equal((await b.connections()).filter((c) => c.peerDid === good.did).length, 1)

    // Forged: the body changed after signing.
    const m1 = Ed25519KeyPair.generate()
    const forged = await requestEnvelope(m1, mallory, b)
    forged.body.name = 'someone-else'
    refused(await post(b, '/connections/request', encodeEnvelope(forged)), 'MESH_SIGNATURE_MISMATCH', 401)
    await nothingStored(b, m1.did, 'MESH_SIGNATURE_MISMATCH')

    // An origin claiming another mesh's key, signed by the attacker's.
    const m2 = Ed25519KeyPair.generate()
    const impostor = { ...(await requestEnvelope(m2, mallory, b)), origin: good.did }
    refused(await post(b, '/connections/request', encodeEnvelope(impostor)), 'MESH_SIGNATURE_MISMATCH', 401)
    await nothingStored(b, m2.did)

    // Wrong target: meant for another mesh.
    const m3 = Ed25519KeyPair.generate()
    const other = await startNode(t, 'gamma')
    const elsewhere = await requestEnvelope(m3, mallory, other)
    refused(
      await post(b, '/connections/request', encodeEnvelope(elsewhere)),
      'MESH_REPLAY',
      409,
      'wrong-target',
    )
    await nothingStored(b, m3.did, 'MESH_REPLAY')

    // Oversized: refused before it is read, with the plain error shape.
    const m4 = Ed25519KeyPair.generate()
    const big = await requestEnvelope(m4, mallory, b)
    ;(big.body as Record<string, unknown>).note = 'x'.repeat(70 * 1024)
    const tooLarge = await post(b, '/connections/request', encodeEnvelope(big))
    assert.equal(tooLarge.status, 413)
    assert.equal(tooLarge.json.error?.code, 'MESH_TOO_LARGE')
    await nothingStored(b, m4.did)

    // Not an envelope, and an envelope posted to another type's path.
    const junk = await post(b, '/federation/send', '{"hello":1}')
    assert.equal(junk.status, 400)
    assert.equal(junk.json.error?.code, 'MESH_BAD_REQUEST')
    const m5 = Ed25519KeyPair.generate()
    const misrouted = await post(
      b,
      '/connections/accepted',
      encodeEnvelope(await requestEnvelope(m5, mallory, b)),
    )
    assert.equal(misrouted.status, 400)
    assert.equal(misrouted.json.error?.code, 'MESH_BAD_REQUEST')
    await nothingStored(b, m5.did)

    // Flooding: one origin's bucket (5 here) runs out; a signed MESH_RATE_LIMITED after it.
    const m6 = Ed25519KeyPair.generate()
    const answers: Answer[] = []
    for (let i = 0; i < 8; i++) {
      const flood = await requestEnvelope(m6, mallory, b)
      flood.body.name = `flood-${i}`
      answers.push(await post(b, '/connections/request', encodeEnvelope(flood)))
    }
    const limited = answers.filter((a) => a.json.body?.code === 'MESH_RATE_LIMITED')
    assert.ok(limited.length >= 3, JSON.stringify(answers.map((a) => a.json.body?.code)))
    for (const a of limited) refused(a, 'MESH_RATE_LIMITED', 429)
    await nothingStored(b, m6.did, 'MESH_RATE_LIMITED')

    // Sentinel: after all of it, beta holds the one request it took, and nothing else.
    const connections = await b.connections()
    assert.deepEqual(
      connections.map((c) => [c.peerDid, c.status]),
      [[good.did, 'pending']],
    )
    assert.deepEqual(
      (await b.peers()).map((p) => p.did),
      [good.did],
    )
  })
})
