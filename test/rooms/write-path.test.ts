import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import * as Y from 'yjs'
import type { RoomOrigin } from '../../src/rooms/index.ts'
import { MeshStore } from '../../src/store/index.ts'
import { runThenKill } from '../fixtures/crash-child.ts'
import { tempDir, tempStore } from '../fixtures/principals.ts'
import { alice, manager, meshA, meshB, sharedRoom, sync, until } from './helpers.ts'

/** Holds every write of `store` until `release` (a disk slow to fsync). */
function holdWrites(store: MeshStore): { release: () => void; held: () => number } {
  const batch = store.batch.bind(store)
  let open: () => void = () => {}
  const gate = new Promise<void>((r) => {
    open = r
  })
  let held = 0
  store.batch = async (ops) => {
    held++
    await gate
    return batch(ops)
  }
  return { release: () => open(), held: () => held }
}

describe('room write path: fan-out before durability, group commit across rooms (issue 15)', () => {
  it('readers and peers get an update as soon as it is applied, in order; its poster is answered once durable', async (t) => {
    const storeA = await tempStore(t)
    const { a, id, roomA, roomB } = await sharedRoom(t, { a: { store: storeA } })
    // What A's links and y-websocket clients are handed: the room's `update` events.
    const sent: Uint8Array[] = []
    roomA.doc.on('update', (u: Uint8Array, origin: RoomOrigin | null) => {
      if (origin?.source === 'local') sent.push(u)
    })
    const hold = holdWrites(storeA)
    const answered: string[] = []
    const posts = ['one', 'two', 'three'].map((body) =>
      a.post(id, alice.did, body).then((r) => {
        answered.push(body)
        return r
      }),
    )
    // Posts of one turn go out as one update (one transaction, one batch seal: issue 15, batch15).
    const posted = () =>
      sent.reduce(
        (n, u) =>
          n +
          Y.decodeUpdate(u).structs.filter((s) => (s as unknown as { parent: unknown }).parent === 'messages')
            .length,
        0,
      )
    await until(() => posted() === 3 && hold.held() >= 1, 'each post handed to readers')
    assert.deepEqual(answered, [], 'no poster is answered before its write is durable')
    // The peer validates and shows them (its own store is not held), before A's write is done.
    for (const u of sent)
      assert.equal((await roomB.applyUpdate(u, { kind: 'peer', meshDid: a.ownMesh })).error, undefined)
    assert.deepEqual(
      roomB.page(undefined, 10).messages.map((m) => m.body),
      ['one', 'two', 'three'],
    )
    assert.deepEqual(answered, [])
    hold.release()
    const ids = await Promise.all(posts)
    assert.deepEqual(answered, ['one', 'two', 'three'])
    for (const { id: mid } of ids) assert.ok(roomA.message(mid))
  })

  it('a post a peer holds but its origin lost before the fsync (a crash) comes back to the origin by re-sync', async (t) => {
    const storeA = await tempStore(t)
    const { a, id, roomA, roomB } = await sharedRoom(t, { a: { store: storeA } })
    const sent: Uint8Array[] = []
    roomA.doc.on('update', (u: Uint8Array, origin: RoomOrigin | null) => {
      if (origin?.source === 'local') sent.push(u)
    })
    const batch = storeA.batch.bind(storeA)
    // The disk never gets it: the process dies before the fsync (here, the write fails).
    storeA.batch = () => Promise.reject(new Error('crashed before the fsync'))
    await assert.rejects(a.post(id, alice.did, 'lost at its origin'), /crashed before the fsync/)
    assert.equal(sent.length, 1, 'the post was handed to the link before its write')
    for (const u of sent)
      assert.equal((await roomB.applyUpdate(u, { kind: 'peer', meshDid: a.ownMesh })).error, undefined)
    // The origin loads the room again from its store, without the post (its poster was never answered).
    storeA.batch = batch
    const reloaded = await a.load(id)
    assert.notEqual(reloaded, roomA)
    assert.equal(reloaded.messageCount, roomA.messageCount - 1)
    // The peer is ahead; the link's catch-up (a state-vector diff) gives the origin its post back.
    const result = await sync(roomB, reloaded, meshB.did)
    assert.equal(result.error, undefined)
    assert.deepEqual(
      reloaded
        .page(undefined, 50)
        .messages.map((m) => m.body)
        .filter((b) => b === 'lost at its origin'),
      ['lost at its origin'],
    )
    await a.post(id, alice.did, 'and it goes on')
  })

  it("several rooms' log rows share the store's writes", async (t) => {
    const store = await tempStore(t)
    const rooms = await manager(t, meshA, { store })
    const ids: string[] = []
    for (let r = 0; r < 4; r++) ids.push((await rooms.create({ name: `r${r}`, creator: alice.did })).id)
    for (const id of ids) await rooms.load(id)
    const before = store.groupStats
    await Promise.all(ids.flatMap((id) => [1, 2, 3].map((k) => rooms.post(id, alice.did, `post ${k}`))))
    const after = store.groupStats
    // One transaction a room for the posts of one turn (issue 15, batch15): 4 log rows.
    assert.equal(after.batches - before.batches, 4)
    assert.ok(
      after.writes - before.writes < 4,
      `${after.writes - before.writes} writes for 12 posts in 4 rooms`,
    )
    for (const id of ids) assert.equal((await rooms.load(id)).messageCount, 3)
  })

  it('loses no acknowledged post in any room when SIGKILLed while rooms write together', async (t) => {
    const path = join(await tempDir(t), 'db')
    let ids: string[] = []
    const acked: Array<[string, string]> = []
    await runThenKill(new URL('./crash-poster.ts', import.meta.url), [path, '4'], (line) => {
      if (line.startsWith('rooms ')) ids = line.slice(6).split(' ')
      else acked.push(line.split(' ') as [string, string])
      return acked.length >= 600
    })
    const store = new MeshStore({ path })
    await store.open()
    t.after(() => store.close())
    const rooms = await manager(t, meshA, { store })
    assert.equal(ids.length, 4)
    for (const id of ids) {
      const room = await rooms.load(id)
      const missing = acked.filter(([r, mid]) => r === id && room.message(mid) === undefined)
      assert.deepEqual(missing, [], `${missing.length} acknowledged posts lost in ${id}`)
      assert.equal(room.doc.store.pendingStructs, null, 'no hole in any room log')
      await rooms.post(id, alice.did, 'alive after the crash')
    }
  })
})
