import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as Y from 'yjs'
import { loadKeyHistory } from '../../src/identity/key-history.ts'
import type { MessageEntry, RoomOrigin } from '../../src/rooms/index.ts'
import { SyncProgress, type SyncProgressComponents } from '../../src/rooms/progress.ts'
import { Room } from '../../src/rooms/room.ts'
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

  it('does not ask again while a catch-up from the peer is still arriving or applying: no chunk comes twice', async (t) => {
    const rooms = { syncIntervalMs: 200, dialTimeoutMs: 3000, resyncIntervalMs: 300 }
    const a = await startNode(t, 'alpha', { rooms })
    const b = await startNode(t, 'beta', { rooms })
    await autoAcceptRooms(b)
    await connect(a, b)
    const policy = await a.api.get<Record<string, unknown>>('/api/federation/policy')
    await a.api.put('/api/federation/policy', { ...policy, maxBackfillEventsPerRequest: 10 })
    const { id } = await a.api.post<{ id: string }>('/api/rooms', { name: 'slow catch-up' })
    for (let i = 0; i < 60; i++) await a.api.post(`/api/rooms/${id}/messages`, { body: `before ${i}` })

    // beta applies what alpha sends it in order, but each of the first chunks only after a
    // periodic re-sync check has run meanwhile: its catch-up is slow, as on a busy machine.
    const checks = () => b.node.roomSync.stats.resyncs + b.node.roomSync.stats.resyncsDeferred
    const original = Room.prototype.applyPeerUpdate
    let chain: Promise<unknown> = Promise.resolve()
    let fromAlpha = 0
    Room.prototype.applyPeerUpdate = function (this: Room, update: Uint8Array, peer: string) {
      if (this.id !== id || peer !== a.node.did) return original.call(this, update, peer)
      const n = ++fromAlpha
      const applied = chain.then(async () => {
        if (n <= 3) {
          const seen = checks()
          await until(() => checks() > seen, 'a re-sync check while the catch-up waits')
        }
        return original.call(this, update, peer)
      })
      chain = applied.catch(() => undefined)
      return applied
    }
    t.after(() => {
      Room.prototype.applyPeerUpdate = original
    })

    await a.api.post(`/api/rooms/${id}/share`, { mesh: b.node.did, ucan: await shareAct(a, id, b.node.did) })
    await until(async () => (await held(b, id).catch(() => [])).length === 60, 'beta caught up')
    // Checks go on after it, and find nothing more to send.
    const after = b.node.roomSync.stats.resyncs
    await until(() => b.node.roomSync.stats.resyncs >= after + 2, 'two checks after the catch-up')

    const status = await b.api.get<{ peers: Array<{ incoming: Record<string, number> }> }>(
      `/api/rooms/${id}/sync`,
    )
    const incoming = status.peers[0]?.incoming
    assert.ok(incoming !== undefined)
    assert.ok((incoming.chunks ?? 0) >= 6, `chunks ${incoming.chunks}`)
    assert.equal(incoming.chunksDone, incoming.chunks)
    // Every update from alpha was a chunk of the one catch-up: none was sent again.
    assert.equal(fromAlpha, incoming.chunks)
    // Alpha's side shows the same catch-up, not the empty answers to the checks after it.
    const outgoing = (
      await a.api.get<{ peers: Array<{ outgoing: Record<string, number> }> }>(`/api/rooms/${id}/sync`)
    ).peers[0]?.outgoing
    assert.equal(outgoing?.chunks, incoming.chunks)
    assert.equal(outgoing?.chunksDone, incoming.chunks)
    assert.ok(b.node.roomSync.stats.resyncsDeferred >= 3, `deferred ${b.node.roomSync.stats.resyncsDeferred}`)
  })
})

describe('SyncProgress.catchingUp', () => {
  it('holds from the ask until every chunk is received and applied, and lets a stalled catch-up go after the window', () => {
    let now = 1_000
    const progress = new SyncProgress({ now: () => now } as unknown as SyncProgressComponents)
    assert.equal(progress.catchingUp('p', 'r', 100), false, 'never asked')
    progress.asked('p', 'r')
    assert.equal(progress.catchingUp('p', 'r', 100), true, 'asked, no answer yet')
    now += 100
    assert.equal(progress.catchingUp('p', 'r', 100), false, 'no answer within the window')
    progress.announced('p', 'r', { entries: 2, bytes: 20, chunks: 2 })
    progress.received('p', 'r', new Uint8Array([0, 0]))
    now += 99
    assert.equal(progress.catchingUp('p', 'r', 100), true, 'one chunk of two')
    progress.received('p', 'r', new Uint8Array([0, 0]))
    progress.applied('p', 'r')
    assert.equal(progress.catchingUp('p', 'r', 100), true, 'both received, one applied')
    progress.applied('p', 'r')
    assert.equal(progress.catchingUp('p', 'r', 100), false, 'both applied')
    assert.equal(progress.catchingUp('other', 'r', 100), false, 'another peer')
  })
})
