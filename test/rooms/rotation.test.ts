import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { KeyRotationResult } from '../../src/keys/index.ts'
import type { Room, Seal } from '../../src/rooms/index.ts'
import { autoAcceptRooms, shareAct, startNode, type TestNode } from '../connections/nodes.ts'
import { connect as connectNodes, until as pollUntil } from './helpers.ts'

const ROOMS = { syncIntervalMs: 200, dialTimeoutMs: 3000 }

/** The multi-node waits here get 20 s each. */
const WAIT_MS = 20_000
const until = <T>(check: () => Promise<T | undefined | false> | T | undefined | false, what: string) =>
  pollUntil(check, what, WAIT_MS)
const connect = (a: TestNode, b: TestNode) => connectNodes(a, b, WAIT_MS)

const share = async (from: TestNode, room: string, to: string) =>
  from.api.post(`/api/rooms/${room}/share`, { mesh: to, ucan: await shareAct(from, room, to) })

const rotate = async (node: TestNode) =>
  node.api.post<KeyRotationResult>('/api/keys/rotate', { ucan: await node.act('mesh/rotate-key') })

type Msg = { id: string; body: string; mesh: string }
const messages = async (n: TestNode, room: string): Promise<Msg[]> =>
  (await n.api.get<{ messages: Msg[] }>(`/api/rooms/${room}/messages?limit=200`)).messages

const hasBody = (n: TestNode, room: string, body: string) => async () =>
  (await messages(n, room).catch(() => [])).find((m) => m.body === body)

function sealOf(room: Room, message: string): Seal {
  return room.doc.getMap('seals').get(`messages/${message}`) as Seal
}

describe('rooms across a mesh key rotation', () => {
  it('a shared room keeps syncing both ways after the home mesh rotates; a third mesh verifies old and new seals; a restart keeps the room home', async (t) => {
    const a = await startNode(t, 'alpha', { rooms: ROOMS })
    const b = await startNode(t, 'beta', { rooms: ROOMS })
    const c = await startNode(t, 'gamma', { rooms: ROOMS })
    for (const n of [a, b, c]) await autoAcceptRooms(n)
    await connect(a, b)
    const identity = a.node.did
    const { id } = await a.api.post<{ id: string }>('/api/rooms', { name: 'general' })
    const before = await a.api.post<{ id: string }>(`/api/rooms/${id}/messages`, { body: 'before rotation' })
    await share(a, id, b.node.did)
    await until(hasBody(b, id, 'before rotation'), 'first message at beta')
    await b.api.post(`/api/rooms/${id}/messages`, { body: 'beta, before' })
    await until(hasBody(a, id, 'beta, before'), 'beta message at alpha')

    const rotated = await rotate(a)
    assert.equal(rotated.identity, identity)
    assert.notEqual(a.node.did, identity)
    assert.equal(a.node.rooms.ownMesh, identity, 'rooms name the mesh by its identity')

    // Sealed at once with the new key, for the identity; no restart.
    const after = await a.api.post<{ id: string }>(`/api/rooms/${id}/messages`, { body: 'after rotation' })
    const roomA = await a.node.rooms.load(id)
    assert.deepEqual(
      { mesh: sealOf(roomA, after.id).mesh, key: sealOf(roomA, after.id).key },
      { mesh: identity, key: a.node.did },
    )
    assert.equal(sealOf(roomA, before.id).key, undefined, 'old seals keep their format')

    // Beta follows the rotation (the PeerBook maps the new key to alpha) and syncs both ways.
    const seen = await until(hasBody(b, id, 'after rotation'), 'post-rotation message at beta')
    assert.equal(seen.mesh, identity)
    await b.api.post(`/api/rooms/${id}/messages`, { body: 'beta, after' })
    await until(hasBody(a, id, 'beta, after'), 'beta message at alpha after the rotation')
    assert.deepEqual(b.node.roomSync.links(), [identity], 'beta files the link under alpha’s identity')
    const roomB = await b.node.rooms.load(id)
    assert.equal(sealOf(roomB, after.id).key, a.node.did)

    // Gamma meets only beta, after the rotation; beta shares alpha's room and carries
    // alpha's key history with it: gamma verifies alpha's old and new seals.
    await connect(b, c)
    await share(b, id, c.node.did)
    await until(hasBody(c, id, 'after rotation'), 'post-rotation message at gamma')
    await until(hasBody(c, id, 'before rotation'), 'pre-rotation message at gamma')
    assert.deepEqual(
      c.node.rooms.meshKeys.keysOf(identity)?.map((k) => k.did),
      [identity, a.node.did],
    )
    const refusedAtC = await c.api.get<{ entries: Array<{ details?: { reason?: string } }> }>(
      '/api/federation/rejected?limit=200',
    )
    assert.deepEqual(
      refusedAtC.entries.filter((e) => /key|seal/.test(String(e.details?.reason))),
      [],
      'no seal refused at gamma',
    )

    // A restart on the new key: the room is still alpha's own, posting works and travels.
    await a.restart({ rooms: ROOMS })
    assert.equal(a.node.rooms.ownMesh, identity)
    const record = await a.api.get<{ homeMesh: string; role: string | null; federated: boolean }>(
      `/api/rooms/${id}`,
    )
    assert.equal(record.homeMesh, identity)
    assert.equal(record.role, 'owner')
    await a.api.post(`/api/rooms/${id}/messages`, { body: 'after restart' })
    await until(hasBody(b, id, 'after restart'), 'post-restart message at beta')
    await until(hasBody(c, id, 'after restart'), 'post-restart message at gamma, through beta')
    await b.api.post(`/api/rooms/${id}/messages`, { body: 'beta, after restart' })
    await until(hasBody(a, id, 'beta, after restart'), 'beta message at restarted alpha')
  })
})
