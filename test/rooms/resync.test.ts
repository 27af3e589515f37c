import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as Y from 'yjs'
import { loadKeyHistory } from '../../src/identity/key-history.ts'
import type { MessageEntry, RoomOrigin } from '../../src/rooms/index.ts'
import { autoAcceptRooms, shareAct, startNode, type TestNode } from '../connections/nodes.ts'
import { boundWrite, connect, until } from './helpers.ts'

const held = async (n: TestNode, id: string) =>
  [...(await n.node.rooms.load(id)).doc.getMap('messages').values()].map((m) => (m as MessageEntry).body)

/** Two meshes sharing a room; alpha then holds a sealed message its live path never sent (as if lost on the way). */
async function lostUpdate(t: Parameters<typeof startNode>[0], resyncIntervalMs: number) {
  const rooms = { syncIntervalMs: 200, dialTimeoutMs: 3000, resyncIntervalMs }
  const a = await startNode(t, 'alpha', { rooms })
  const b = await startNode(t, 'beta', { rooms })
  await autoAcceptRooms(b)
  await connect(a, b)
  const { id } = await a.api.post<{ id: string }>('/api/rooms', { name: 'resync' })
  await a.api.post(`/api/rooms/${id}/share`, { mesh: b.node.did, ucan: await shareAct(a, id, b.node.did) })
  await a.api.post(`/api/rooms/${id}/messages`, { body: 'before' })
  await until(async () => (await held(b, id)).includes('before'), 'the live path works')
  const opened = [a.node.roomSync.stats.linksOpened, b.node.roomSync.stats.linksOpened]

  const roomA = await a.node.rooms.load(id)
  const entry: MessageEntry = {
    v: 1,
    room: id,
    author: a.architect.did,
    authorMesh: a.node.did,
    body: 'lost on the way',
    mentions: [],
    ts: Date.now(),
  }
  const key = (await loadKeyHistory(a.dataDir)).current
  const update = boundWrite(roomA, key, [entry], 0x6000_0000 + Math.floor(Math.random() * 0x0fff_ffff))
  // The replicator sends no update read from the store: this one goes nowhere live.
  Y.applyUpdate(roomA.doc, update, { source: 'store' } satisfies RoomOrigin)
  return { a, b, id, opened }
}

describe('periodic re-sync of shared rooms', () => {
  it('without it, an update lost on the way stays missing while later live posts cross', async (t) => {
    const { a, b, id } = await lostUpdate(t, 0)
    await a.api.post(`/api/rooms/${id}/messages`, { body: 'after' })
    await until(async () => (await held(b, id)).includes('after'), 'the later post crosses')
    assert.ok(!(await held(b, id)).includes('lost on the way'))
    assert.equal(a.node.roomSync.stats.resyncs, 0)
  })

  it('with it, the lost update arrives on the same link, and the check keeps no idle room loaded', async (t) => {
    const { a, b, id, opened } = await lostUpdate(t, 300)
    await until(async () => (await held(b, id)).includes('lost on the way'), 'the re-sync brings it')
    // The same links: not a reconnect's catch-up.
    assert.deepEqual([a.node.roomSync.stats.linksOpened, b.node.roomSync.stats.linksOpened], opened)

    // Once in sync, the checks go on both ways and no longer count as a use of the room.
    const roomA = a.node.rooms.peek(id)
    const roomB = b.node.rooms.peek(id)
    assert.ok(roomA !== undefined && roomB !== undefined)
    const since = { a: a.node.roomSync.stats.resyncs, b: b.node.roomSync.stats.resyncs }
    await until(
      () => a.node.roomSync.stats.resyncs >= since.a + 2 && b.node.roomSync.stats.resyncs >= since.b + 2,
      'two more checks each way',
    )
    const used = { a: roomA.usedAt, b: roomB.usedAt }
    await until(
      () => a.node.roomSync.stats.resyncs >= since.a + 5 && b.node.roomSync.stats.resyncs >= since.b + 5,
      'three checks more',
    )
    assert.deepEqual({ a: roomA.usedAt, b: roomB.usedAt }, used)
  })
})
