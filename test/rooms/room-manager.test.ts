import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { roomSublevel } from '../../src/rooms/room-log.ts'
import { MeshStore } from '../../src/store/index.ts'
import { runThenKill } from '../fixtures/crash-child.ts'
import { tempDir, tempStore } from '../fixtures/principals.ts'
import { alice, bob, carol, mallory, manager, meshA } from './helpers.ts'

describe('RoomManager', () => {
  it('loads a room once however many callers ask at the same time', async (t) => {
    const store = await tempStore(t)
    const first = await manager(t, meshA, { store })
    const { id } = await first.create({ name: 'general', creator: alice.did })
    await first.post(id, alice.did, 'hello')
    await first.stop()
    const again = await manager(t, meshA, { store })
    const rooms = await Promise.all(Array.from({ length: 20 }, () => again.load(id)))
    assert.equal(again.stats.loads, 1)
    assert.ok(rooms.every((r) => r === rooms[0]))
    assert.equal(rooms[0]?.messageCount, 1)
    await assert.rejects(again.load('nosuchroom'), { code: 'MESH_NOT_FOUND' })
  })

  it('creates, lists, posts and pages messages ordered by (ts, id)', async (t) => {
    let now = 1_700_000_000_000
    const rooms = await manager(t, meshA, { now: () => now })
    const { id } = await rooms.create({ name: 'general', topic: 'all things', creator: alice.did })
    assert.deepEqual(
      (await rooms.list()).map((r) => [r.id, r.name, r.topic, r.homeMesh]),
      [[id, 'general', 'all things', meshA.did]],
    )
    const ids: string[] = []
    for (let i = 0; i < 25; i++) {
      if (i % 5 !== 0) now++ // some in one millisecond: their ts still grows
      ids.push((await rooms.post(id, alice.did, `message ${i}`)).id)
    }
    const seen: string[] = []
    let after: string | undefined
    for (;;) {
      const page = await rooms.messages(id, alice.did, { limit: 10, ...(after ? { after } : {}) })
      seen.push(...page.messages.map((m) => m.id))
      if (page.nextCursor === null) break
      after = page.nextCursor
    }
    assert.equal(seen.length, 25)
    const all = (await rooms.messages(id, alice.did, { limit: 200 })).messages
    const sorted = [...all].sort((x, y) => x.ts - y.ts || (x.id < y.id ? -1 : 1))
    assert.deepEqual(
      seen,
      sorted.map((m) => m.id),
    )
    assert.deepEqual(seen, ids, 'this mesh’s posts read back in the order they were made')
    assert.equal(new Set(all.map((m) => m.ts)).size, 25)
    assert.equal(all[0]?.author, '@alice')
    await assert.rejects(rooms.messages(id, alice.did, { after: 'x'.repeat(43) }), {
      code: 'MESH_BAD_REQUEST',
    })
  })

  it('admits only members: join, members, read-only and non-members refused', async (t) => {
    const rooms = await manager(t, meshA)
    const { id } = await rooms.create({ name: 'general', creator: alice.did })
    await assert.rejects(rooms.post(id, bob.did, 'not yet'), { code: 'MESH_FORBIDDEN' })
    await assert.rejects(rooms.messages(id, bob.did), { code: 'MESH_FORBIDDEN' })
    await assert.rejects(rooms.join(id, mallory.did), { code: 'MESH_FORBIDDEN' }) // not a principal here
    const joined = await rooms.join(id, bob.did)
    assert.equal(joined.name, '@bob')
    assert.equal((await rooms.join(id, bob.did)).role, 'member') // idempotent
    const members = await rooms.members(id, bob.did)
    assert.deepEqual(members.map((m) => [m.name, m.role]).sort(), [
      ['@alice', 'owner'],
      ['@bob', 'member'],
    ])
    await rooms.post(id, bob.did, 'now I can')
  })

  it('reacts, redacts (author or moderator only) and hides redacted bodies', async (t) => {
    const rooms = await manager(t, meshA)
    const { id } = await rooms.create({ name: 'general', creator: alice.did })
    await rooms.join(id, bob.did)
    const byAlice = await rooms.post(id, alice.did, 'from alice')
    const byBob = await rooms.post(id, bob.did, 'from bob')
    await rooms.react(id, bob.did, byAlice.id, '👍')
    await rooms.react(id, alice.did, byAlice.id, '👍')
    await rooms.react(id, alice.did, byAlice.id, '🎉')
    await assert.rejects(rooms.react(id, bob.did, 'y'.repeat(43), '👍'), { code: 'MESH_NOT_FOUND' })
    await assert.rejects(rooms.redact(id, bob.did, byAlice.id), { code: 'MESH_FORBIDDEN' })
    await rooms.redact(id, bob.did, byBob.id, 'typo')
    const another = await rooms.post(id, bob.did, 'moderated')
    await rooms.redact(id, alice.did, another.id) // the owner moderates
    const page = await rooms.messages(id, alice.did)
    const view = new Map(page.messages.map((m) => [m.id, m]))
    assert.deepEqual(view.get(byAlice.id)?.reactions, { '👍': 2, '🎉': 1 })
    assert.equal(view.get(byBob.id)?.redacted, true)
    assert.equal(view.get(byBob.id)?.body, '')
    assert.equal(view.get(another.id)?.redacted, true)
    assert.equal(view.get(byAlice.id)?.redacted, undefined)
  })

  it('stores a notification for each mentioned local member', async (t) => {
    const rooms = await manager(t, meshA)
    const { id } = await rooms.create({ name: 'general', creator: alice.did })
    await rooms.join(id, bob.did)
    const m1 = await rooms.post(id, alice.did, 'hey @bob, look')
    await rooms.post(id, alice.did, `and by did ${bob.did}`)
    await rooms.post(id, alice.did, '@nobody is here, @alice talks to herself')
    const notes = await rooms.notifications(bob.did)
    assert.equal(notes.notifications.length, 2)
    assert.equal(notes.notifications[1]?.message, m1.id)
    assert.equal(notes.notifications[1]?.author, '@alice')
    assert.equal((await rooms.notifications(alice.did)).notifications.length, 0)
    const paged = await rooms.notifications(bob.did, { limit: 1 })
    assert.equal(paged.notifications.length, 1)
    const rest = await rooms.notifications(bob.did, { limit: 1, after: paged.nextCursor as string })
    assert.equal(rest.notifications[0]?.message, m1.id)
    assert.equal(rest.nextCursor, null)
  })

  it('keeps everything across a reopen, with compaction into segments', async (t) => {
    const dir = await tempDir(t)
    const path = join(dir, 'db')
    let store = new MeshStore({ path })
    await store.open()
    let rooms = await manager(t, meshA, { store, compactEvery: 10 })
    const { id } = await rooms.create({ name: 'general', creator: alice.did })
    const ids = []
    for (let i = 0; i < 37; i++) ids.push((await rooms.post(id, alice.did, `m${i}`)).id)
    await rooms.stop()
    const keys: string[] = []
    for await (const key of roomSublevel(store, id).keys()) keys.push(key)
    assert.ok(keys.filter((k) => k.startsWith('s/')).length <= 2, 'a few segments (a binary counter)')
    assert.ok(keys.filter((k) => k.startsWith('u/')).length < 10, 'merged updates deleted')
    await store.close()
    store = new MeshStore({ path })
    await store.open()
    t.after(() => store.close())
    rooms = await manager(t, meshA, { store, compactEvery: 10 })
    const page = await rooms.messages(id, alice.did, { limit: 200 })
    assert.deepEqual(new Set(page.messages.map((m) => m.id)), new Set(ids))
    await rooms.post(id, alice.did, 'after reopen')
    assert.equal((await rooms.load(id)).messageCount, 38)
  })

  it('loses no acknowledged post when SIGKILLed during a burst', async (t) => {
    const dir = await tempDir(t)
    const path = join(dir, 'db')
    let roomId = ''
    const acked: string[] = []
    await runThenKill(new URL('./crash-poster.ts', import.meta.url), [path], (line) => {
      if (line.startsWith('room ')) roomId = line.slice(5)
      else acked.push(line)
      return acked.length >= 700
    })
    const store = new MeshStore({ path })
    await store.open()
    t.after(() => store.close())
    const rooms = await manager(t, meshA, { store })
    const room = await rooms.load(roomId)
    const missing = acked.filter((id) => room.message(id) === undefined)
    assert.deepEqual(missing, [], `${missing.length} of ${acked.length} acknowledged posts lost`)
    assert.equal(room.doc.store.pendingStructs, null)
    await rooms.post(roomId, alice.did, 'alive after the crash')
  })

  it('carries foreign display names: @local_id:mesh-name', async (t) => {
    const rooms = await manager(t, meshA)
    const { id } = await rooms.create({ name: 'general', creator: alice.did })
    const room = await rooms.load(id)
    assert.equal(room.displayName(alice.did, meshA.did), '@alice')
    assert.equal(room.displayName(carol.did, meshA.did), carol.did)
  })
})
