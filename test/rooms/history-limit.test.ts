import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import * as Y from 'yjs'
import { countEntries, splitDiff } from '../../src/rooms/backfill.ts'
import { hiddenHistory } from '../../src/rooms/history-limit.ts'
import { autoAcceptRooms, shareAct, startNode, type TestNode } from '../connections/nodes.ts'
import { alice, connect, content, manager, meshA, meshB, until } from './helpers.ts'

const ROOMS = { syncIntervalMs: 200, dialTimeoutMs: 3000 }

type Msg = { id: string; body: string }
async function messages(n: TestNode, room: string): Promise<Msg[]> {
  return (await n.api.get<{ messages: Msg[] }>(`/api/rooms/${room}/messages?limit=200`)).messages
}
async function stateVector(n: TestNode, room: string): Promise<string> {
  return (await n.api.get<{ stateVector: string }>(`/api/rooms/${room}`)).stateVector
}

/** Alpha with `history` messages in a room, its policy's backfillLimit `limit`, shares it with beta; both synced. */
async function shareWithHistory(t: TestContext, history: number, limit: number | null) {
  const a = await startNode(t, 'alpha', { rooms: ROOMS })
  const b = await startNode(t, 'beta', { rooms: ROOMS })
  await autoAcceptRooms(b) // rooms shared with beta are accepted at once (SPEC §9)
  await connect(a, b)
  const policy = await a.api.call('patchPolicy', { body: { backfillLimit: limit } })
  assert.equal(policy.backfillLimit, limit)
  const { id } = await a.api.post<{ id: string }>('/api/rooms', { name: 'general' })
  for (let i = 0; i < history; i++) await a.api.post(`/api/rooms/${id}/messages`, { body: `old ${i}` })
  await a.api.post(`/api/rooms/${id}/share`, { mesh: b.node.did, ucan: await shareAct(a, id, b.node.did) })
  // Beta's architect joins once the meta arrives; then both hold the same clocks.
  await until(
    async () =>
      (await messages(b, id).then(
        () => true,
        () => false,
      )) && (await stateVector(a, id)) === (await stateVector(b, id)),
    'beta joined and caught up',
  )
  return { a, b, id }
}

describe('history a newly sharing peer gets (policy backfillLimit)', () => {
  it('0: the peer sees only what is written after the share; its clocks still match', async (t) => {
    const { a, b, id } = await shareWithHistory(t, 12, 0)
    assert.deepEqual(await messages(b, id), [])
    const changed = await a.api.get<{ entries: Array<{ details: { policy: { backfillLimit: unknown } } }> }>(
      '/api/audit?action=federation.policy.changed',
    )
    assert.equal(changed.entries[0]?.details.policy.backfillLimit, 0)
    assert.equal((await messages(a, id)).length, 12)
    await a.api.post(`/api/rooms/${id}/messages`, { body: 'live from alpha' })
    await b.api.post(`/api/rooms/${id}/messages`, { body: 'live from beta' })
    await until(
      async () => (await messages(b, id)).length === 2 && (await messages(a, id)).length === 14,
      'live',
    )
    assert.deepEqual((await messages(b, id)).map((m) => m.body).sort(), ['live from alpha', 'live from beta'])
    // Nothing was refused on either side: the holes came from the mesh that answers for them.
    for (const n of [a, b]) {
      const refused = await n.api.get<{ entries: unknown[] }>('/api/federation/rejected?limit=10')
      assert.deepEqual(refused.entries, [])
    }
    // After a restart beta does not ask again for what it holds as holes.
    await b.restart({ rooms: ROOMS })
    await a.api.post(`/api/rooms/${id}/messages`, { body: 'after restart' })
    await until(async () => (await messages(b, id)).length === 3, 'after restart')
    assert.equal((await messages(b, id)).filter((m) => m.body.startsWith('old')).length, 0)
  })

  it('25: exactly the last 25 messages of history, then live ones', async (t) => {
    const { a, b, id } = await shareWithHistory(t, 40, 25)
    const want = Array.from({ length: 25 }, (_, i) => `old ${i + 15}`)
    assert.deepEqual((await messages(b, id)).map((m) => m.body).sort(), [...want].sort())
    await a.api.post(`/api/rooms/${id}/messages`, { body: 'live' })
    await until(async () => (await messages(b, id)).length === 26, 'live')
  })

  it('null (the default, also for a policy stored before the field): all history', async (t) => {
    const { b, id } = await shareWithHistory(t, 30, null)
    assert.equal((await messages(b, id)).length, 30)
  })
})

describe('backfill holes (history-limit.ts, backfill.ts)', () => {
  it('hidden messages, their seals and reactions go out as holes a replica accepts from the home mesh', async (t) => {
    const home = await manager(t, meshA)
    const { id } = await home.create({ name: 'general', creator: alice.did })
    const posted: string[] = []
    for (let i = 0; i < 10; i++) posted.push((await home.post(id, alice.did, `message ${i}`)).id)
    await home.react(id, alice.did, posted[0] as string, '👍') // of a hidden message: hidden with it
    await home.react(id, alice.did, posted[9] as string, '🎉') // of a kept one: kept
    const room = await home.load(id)
    const decidedAt = Date.now() + 60_000
    const hidden = hiddenHistory(room.doc, { decidedAt, limit: 3 })
    assert.equal(hiddenHistory(room.doc, { decidedAt, limit: null }), undefined)
    assert.equal([...(hidden ?? [])].filter((k) => k.startsWith('messages/')).length, 7)
    const far = await manager(t, meshB)
    await far.adopt({ id, homeMesh: meshA.did })
    const copy = await far.load(id)
    const plan = splitDiff(room.doc, Y.encodeStateVector(copy.doc), {
      maxEntries: 2,
      ...(hidden ? { hidden } : {}),
    })
    assert.equal(plan.totalEntries, 3 + 1 + 2) // three messages, a reaction, meta, one member
    for (const [i, chunk] of plan.chunks.entries()) {
      assert.equal(countEntries(chunk), plan.entries[i])
      const result = await copy.applyUpdate(chunk, { kind: 'peer', meshDid: meshA.did })
      assert.equal(result.error, undefined, result.error?.message ?? '')
    }
    assert.deepEqual(Y.encodeStateVector(copy.doc), Y.encodeStateVector(room.doc))
    const bodies = Object.values((content(copy) as { messages: Record<string, { body: string }> }).messages)
    assert.deepEqual(bodies.map((m) => m.body).sort(), ['message 7', 'message 8', 'message 9'])
    const reactions = Object.values(
      (content(copy) as { reactions: Record<string, { emoji: string }> }).reactions,
    )
    assert.deepEqual(
      reactions.map((r) => r.emoji),
      ['🎉'],
    )
    // The same holes from a mesh that does not answer for the client: not taken (the client is cut there).
    const other = await manager(t, meshB)
    await other.adopt({ id, homeMesh: meshA.did })
    const stranger = await other.load(id)
    const again = splitDiff(room.doc, undefined, { ...(hidden ? { hidden } : {}) })
    await stranger.applyUpdate(again.chunks[0] as Uint8Array, { kind: 'peer', meshDid: meshB.did })
    assert.deepEqual((content(stranger) as { messages: object }).messages, {})
    assert.notDeepEqual(Y.encodeStateVector(stranger.doc), Y.encodeStateVector(room.doc))
  })
})
