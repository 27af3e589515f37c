import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { RoomSyncStatus } from '../../src/rooms/index.ts'
import { connect, until } from '../rooms/helpers.ts'
import { autoAcceptRooms, shareAct, startNode, type TestNode } from './nodes.ts'

const ROOMS = { syncIntervalMs: 200, dialTimeoutMs: 3000 }

type Msg = { id: string; body: string }
async function messages(n: TestNode, room: string): Promise<Msg[]> {
  return (await n.api.get<{ messages: Msg[] }>(`/api/rooms/${room}/messages?limit=200`)).messages
}
async function sync(n: TestNode, room: string): Promise<RoomSyncStatus> {
  return n.api.get<RoomSyncStatus>(`/api/rooms/${room}/sync`)
}
async function bodies(n: TestNode, room: string): Promise<string[]> {
  return (await messages(n, room)).map((m) => m.body).sort()
}
const code = (err: unknown) => (err as { code?: string }).code

describe('paused connections (POST /api/connections/:id/pause|resume)', () => {
  it('a pause holds every message both ways; resume delivers each exactly once', async (t) => {
    const a = await startNode(t, 'alpha', { rooms: ROOMS })
    const b = await startNode(t, 'beta', { rooms: ROOMS })
    await autoAcceptRooms(b) // rooms shared with beta are accepted at once (SPEC §9)
    await connect(a, b)
    const { id: room } = await a.api.post<{ id: string }>('/api/rooms', { name: 'general' })
    await a.api.post(`/api/rooms/${room}/share`, {
      mesh: b.node.did,
      ucan: await shareAct(a, room, b.node.did),
    })
    await a.api.post(`/api/rooms/${room}/messages`, { body: 'before' })
    await until(async () => (await messages(b, room).catch(() => [])).length === 1, 'first message at beta')
    const [connection] = await a.connections()
    assert.ok(connection !== undefined)
    const id = connection.id

    // The act must be connection/pause on this connection: another act, or another id, is refused.
    for (const ucan of [
      await a.act('connection/resume', id),
      await a.act('connection/pause', 'f'.repeat(32)),
    ]) {
      await assert.rejects(a.api.post(`/api/connections/${id}/pause`, { ucan }), (err) =>
        ['MESH_UCAN_INVALID', 'MESH_FORBIDDEN', 'MESH_BAD_REQUEST'].includes(code(err) ?? ''),
      )
    }
    // Only a paused connection resumes; a body with more than the act, or an oversized act, is malformed.
    await assert.rejects(
      a.api.post(`/api/connections/${id}/resume`, { ucan: await a.act('connection/resume', id) }),
      (err) => code(err) === 'MESH_CONFLICT',
    )
    for (const body of [
      { ucan: await a.act('connection/pause', id), extra: 1 },
      { ucan: 'u'.repeat(17 * 1024) },
      {},
    ])
      await assert.rejects(
        a.api.post(`/api/connections/${id}/pause`, body),
        (err) => code(err) === 'MESH_BAD_REQUEST',
      )
    const pauseAct = await a.act('connection/pause', id)
    const paused = await a.api.call('pauseConnection', { params: { id }, body: { ucan: pauseAct } })
    assert.deepEqual(paused, { id, status: 'paused' })
    assert.equal((await a.connections())[0]?.status, 'paused')
    // Once is enough: a second pause is a conflict; an unknown connection is not found.
    await assert.rejects(
      a.api.post(`/api/connections/${id}/pause`, { ucan: await a.act('connection/pause', id) }),
      (err) => code(err) === 'MESH_CONFLICT',
    )
    const unknown = 'a'.repeat(32)
    await assert.rejects(
      a.api.post(`/api/connections/${unknown}/pause`, { ucan: await a.act('connection/pause', unknown) }),
      (err) => code(err) === 'MESH_NOT_FOUND',
    )
    // The link is closed as the pause is answered.
    assert.equal((await sync(a, room)).peers[0]?.link, 'closed')

    for (let i = 0; i < 5; i++) {
      await a.api.post(`/api/rooms/${room}/messages`, { body: `alpha while paused ${i}` })
      await b.api.post(`/api/rooms/${room}/messages`, { body: `beta while paused ${i}` })
    }
    // Beta keeps trying to sync: each attempt is refused by alpha, and nothing crosses.
    const refusals = async () =>
      (
        await a.api.get<{ entries: Array<{ peer: string | null; code: string }> }>(
          '/api/federation/rejected?limit=200',
        )
      ).entries.filter((e) => e.peer === b.node.did && e.code === 'MESH_NOT_CONNECTED').length
    await until(async () => (await refusals()) >= 2, 'beta refused twice while paused', 20_000)
    assert.deepEqual(
      await bodies(b, room),
      ['before', ...Array.from({ length: 5 }, (_, i) => `beta while paused ${i}`)].sort(),
    )
    assert.deepEqual(
      await bodies(a, room),
      ['before', ...Array.from({ length: 5 }, (_, i) => `alpha while paused ${i}`)].sort(),
    )
    // Invocations are refused too, with the state named.
    await assert.rejects(
      a.api.post('/api/outbound/invoke', { mesh: b.node.did, ucan: await a.act('mesh/connect', b.node.did) }),
      (err) =>
        code(err) === 'MESH_NOT_CONNECTED' &&
        (err as { details?: { state?: string } }).details?.state === 'paused',
    )

    // Resume: the link reopens and each message arrives once, on both sides.
    const resumed = await a.api.call('resumeConnection', {
      params: { id },
      body: { ucan: await a.act('connection/resume', id) },
    })
    assert.deepEqual(resumed, { id, status: 'accepted' })
    // The pause act was spent: replayed, it is refused.
    await assert.rejects(
      a.api.post(`/api/connections/${id}/pause`, { ucan: pauseAct }),
      (err) => code(err) === 'MESH_REPLAY',
    )
    const all = [
      'before',
      ...Array.from({ length: 5 }, (_, i) => `alpha while paused ${i}`),
      ...Array.from({ length: 5 }, (_, i) => `beta while paused ${i}`),
    ].sort()
    await until(
      async () => (await messages(a, room)).length === 11 && (await messages(b, room)).length === 11,
      'caught up',
    )
    for (const n of [a, b]) {
      const list = await messages(n, room)
      assert.deepEqual(list.map((m) => m.body).sort(), all)
      assert.equal(new Set(list.map((m) => m.id)).size, 11)
    }
    await a.api.post(`/api/rooms/${room}/messages`, { body: 'after' })
    await until(async () => (await messages(b, room)).length === 12, 'live again')

    // Both steps are in the audit log, by the architect.
    const audit = await a.api.get<{ entries: Array<{ action: string; actor: string; subject: string }> }>(
      '/api/audit?limit=200',
    )
    const steps = audit.entries.filter(
      (e) => e.action.startsWith('federation.connection.') && e.subject === id,
    )
    assert.deepEqual(
      steps
        .map((e) => e.action)
        .filter((x) => x.endsWith('paused') || x.endsWith('resumed'))
        .sort(),
      ['federation.connection.paused', 'federation.connection.resumed'],
    )
    assert.ok(
      steps.every(
        (e) => e.actor === a.architect.did || e.action.endsWith('accepted') || e.action.endsWith('requested'),
      ),
    )
  })
  it('the outbox holds while paused, also across a restart: a key rotation reaches the peer only after resume', async (t) => {
    const a = await startNode(t, 'alpha')
    const b = await startNode(t, 'beta')
    await autoAcceptRooms(b) // rooms shared with beta are accepted at once (SPEC §9)
    await connect(a, b)
    const identity = a.node.did
    const [connection] = await a.connections()
    const id = connection?.id as string
    await a.api.call('pauseConnection', {
      params: { id },
      body: { ucan: await a.act('connection/pause', id) },
    })
    const rotated = await a.api.post<{ did: string }>('/api/keys/rotate', {
      ucan: await a.act('mesh/rotate-key'),
    })
    const held = () =>
      a.lines.filter((l) => l.event === 'federation.outbox.held' && l.peer === b.node.did).length
    await until(async () => held() >= 1, 'the announcement held')
    await a.restart()
    await until(async () => held() >= 2, 'held again after the restart')
    assert.equal((await a.connections())[0]?.status, 'paused')
    const queued = (await a.peers()).find((p) => p.did === b.node.did)
    assert.equal(queued?.queued, 1)
    assert.deepEqual((await b.peers()).find((p) => p.did === identity)?.keys, [identity])

    await a.api.call('resumeConnection', {
      params: { id },
      body: { ucan: await a.act('connection/resume', id) },
    })
    await until(
      async () => (await b.peers()).find((p) => p.did === identity)?.keys.at(-1) === rotated.did,
      'beta learns the new key',
    )
    // Beta applies the message before alpha has its answer: the queue empties then.
    await until(
      async () => (await a.peers()).find((p) => p.did === b.node.did)?.queued === 0,
      'alpha’s outbox empty once beta answered',
    )
    assert.equal((await a.connections())[0]?.status, 'accepted')
  })
})
