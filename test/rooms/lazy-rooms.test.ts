import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as Y from 'yjs'
import { autoAcceptRooms, shareAct, startNode } from '../connections/nodes.ts'
import { alice, connect, manager, meshA, until } from './helpers.ts'

/** A manager on a clock the test moves. */
async function clocked(t: TestContext, idle = 60_000) {
  const clock = { now: Date.now() }
  const rooms = await manager(t, meshA, { roomIdleUnloadMs: idle, now: () => clock.now })
  return { rooms, clock }
}

describe('lazy rooms: idle rooms unloaded, loaded again on demand', () => {
  it('unloads a room idle for roomIdleUnloadMs and reloads it with its content', async (t) => {
    const { rooms, clock } = await clocked(t)
    const { id } = await rooms.create({ name: 'general', creator: alice.did })
    const posted = []
    for (let i = 0; i < 5; i++) posted.push((await rooms.post(id, alice.did, `m${i}`)).id)
    const before = await rooms.load(id)
    assert.equal(rooms.unloadIdle(), 0, 'used just now')
    clock.now += 60_000
    assert.equal(rooms.unloadIdle(), 1)
    assert.equal(rooms.loaded().length, 0)
    // Whoever kept the old Room is told to load it again.
    await assert.rejects(before.write([]), { code: 'MESH_UNAVAILABLE' })
    const loads = rooms.stats.loads
    const page = await rooms.messages(id, alice.did)
    assert.deepEqual(
      page.messages.map((m) => m.id),
      posted,
    )
    assert.equal(rooms.stats.loads, loads + 1)
    const again = await rooms.load(id)
    assert.notEqual(again, before)
    await rooms.post(id, alice.did, 'after the reload')
    assert.equal((await rooms.load(id)).messageCount, 6)
  })

  it('loads an unloaded room once for concurrent callers: one document', async (t) => {
    const { rooms, clock } = await clocked(t)
    const { id } = await rooms.create({ name: 'general', creator: alice.did })
    await rooms.post(id, alice.did, 'hello')
    clock.now += 60_000
    assert.equal(rooms.unloadIdle(), 1)
    const loads = rooms.stats.loads
    const [r1, r2, r3] = await Promise.all([
      rooms.load(id),
      rooms.load(id),
      rooms.post(id, alice.did, 'while loading').then(() => rooms.load(id)),
    ])
    assert.equal(r1, r2)
    assert.equal(r1, r3)
    assert.equal(rooms.stats.loads, loads + 1)
    assert.equal(r1?.messageCount, 2)
  })

  it('keeps a room held (a y-websocket client), one with presence of others, and never with 0', async (t) => {
    const { rooms, clock } = await clocked(t)
    const { id } = await rooms.create({ name: 'general', creator: alice.did })
    const room = await rooms.load(id)
    const release = room.hold()
    clock.now += 60_000
    assert.equal(rooms.unloadIdle(), 0, 'held')
    release()
    release() // twice is once
    // Someone else's presence in the room (a client of a peer mesh) keeps it too.
    const elsewhere = new awarenessProtocol.Awareness(new Y.Doc())
    t.after(() => elsewhere.destroy())
    elsewhere.setLocalState({ user: 'carol' })
    const state = awarenessProtocol.encodeAwarenessUpdate(elsewhere, [elsewhere.clientID])
    awarenessProtocol.applyAwarenessUpdate(room.awareness, state, 'peer')
    assert.equal(rooms.unloadIdle(), 0, 'presence of others')
    awarenessProtocol.removeAwarenessStates(room.awareness, [elsewhere.clientID], 'peer')
    assert.equal(rooms.unloadIdle(), 1)
    const never = await manager(t, meshA, { roomIdleUnloadMs: 0 })
    const other = await never.create({ name: 'kept', creator: alice.did })
    assert.equal(never.unloadIdle(), 0)
    assert.equal(never.loaded()[0]?.id, other.id)
  })

  it('an unloaded shared room reloads when its peer writes, and syncs both ways', async (t) => {
    const rooms = { syncIntervalMs: 200, dialTimeoutMs: 3000, roomIdleUnloadMs: 60_000 }
    const a = await startNode(t, 'alpha', { rooms })
    const b = await startNode(t, 'beta', { rooms })
    await connect(a, b)
    const { id } = await a.api.post<{ id: string }>('/api/rooms', { name: 'general' })
    await a.api.post(`/api/rooms/${id}/messages`, { body: 'before the unload' })
    await autoAcceptRooms(b)
    await a.api.post(`/api/rooms/${id}/share`, { mesh: b.node.did, ucan: await shareAct(a, id, b.node.did) })
    type Msg = { body: string }
    const bodies = async (n: typeof a) =>
      (await n.api.get<{ messages: Msg[] }>(`/api/rooms/${id}/messages?limit=200`)).messages.map(
        (m) => m.body,
      )
    await until(
      async () => (await bodies(b).catch((): string[] => [])).includes('before the unload'),
      'first message at beta',
    )
    // Both unload the room (idle 0 ms: every room not in use now).
    await until(async () => {
      for (const n of [a, b]) {
        for (const r of n.node.rooms.loaded()) await r.flush()
        n.node.rooms.unloadIdle(1)
      }
      return a.node.rooms.loaded().length + b.node.rooms.loaded().length === 0 ? true : undefined
    }, 'both unloaded')
    await a.api.post(`/api/rooms/${id}/messages`, { body: 'after the unload, from alpha' })
    await until(
      async () => (await bodies(b)).includes('after the unload, from alpha'),
      'alpha → beta after unload',
    )
    b.node.rooms.unloadIdle(1)
    await b.api.post(`/api/rooms/${id}/messages`, { body: 'after the unload, from beta' })
    await until(
      async () => (await bodies(a)).includes('after the unload, from beta'),
      'beta → alpha after unload',
    )
    assert.deepEqual(
      (await bodies(a)).filter((body) => body.startsWith('after')).sort(),
      (await bodies(b)).filter((body) => body.startsWith('after')).sort(),
    )
  })
})
