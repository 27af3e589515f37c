/**
 * Issue 15 (batch15): the node's writes of one event-loop turn go in one transaction
 * under one batch seal; peers check the batch record once and each entry against it.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as Y from 'yjs'
import {
  contentId,
  type MemberEntry,
  type MessageEntry,
  type ReactionEntry,
  type Room,
  refusalOf,
  sealKey,
  splitDiff,
} from '../../src/rooms/index.ts'
import { makeSeal } from '../../src/rooms/room-entries.ts'
import type { BatchSeal, SealBatch } from '../../src/rooms/seal-batch.ts'
import { tempStore } from '../fixtures/principals.ts'
import { batchUpdate, capture, fromA, fromC, message, put, records } from './batch-helpers.ts'
import {
  alice,
  bob,
  carol,
  craft,
  manager,
  meshA,
  meshB,
  meshC,
  sharedRoom,
  twoNodesSharing,
  until,
} from './helpers.ts'

/** An entry written by `client` with a batch seal pointing at place `i` of the record `recordKey`. */
function borrowing(
  room: Room,
  map: 'messages' | 'clients',
  key: string,
  value: unknown,
  mesh: string,
  recordKey: string,
  i: number,
  client: number,
): Uint8Array {
  return craft(
    room,
    (doc) => {
      doc.getMap(map).set(key, value)
      const seal: BatchSeal = { mesh, hash: contentId(value), batch: recordKey.slice(6), i }
      doc.getMap('seals').set(sealKey(map, key), seal)
    },
    client,
  )
}

describe('one seal per turn (issue 15, batch15)', () => {
  it('posts of one turn: one transaction, one batch record; a refused write rejects only itself; durable', async (t) => {
    const store = await tempStore(t)
    const { a, id, roomA, roomB } = await sharedRoom(t, { a: { store } })
    const sent = capture(roomA)
    const before = records(roomA).length
    const stray: ReactionEntry = {
      v: 1,
      room: id,
      message: 'x'.repeat(43),
      emoji: '👍',
      author: alice.did,
      authorMesh: meshA.did,
      ts: Date.now(),
    }
    // Posts through the node's post path (each awaits its access check first: a microtask apart).
    const results = await Promise.allSettled([
      a.post(id, alice.did, 'one'),
      roomA.write([{ map: 'reactions', key: contentId(stray), value: stray }]), // names no message
      a.post(id, alice.did, 'two'),
    ])
    assert.equal(results[0].status, 'fulfilled')
    assert.equal(results[2].status, 'fulfilled')
    assert.equal(results[1].status, 'rejected')
    const one = roomA.message((results[0] as PromiseFulfilledResult<{ id: string }>).value.id) as MessageEntry
    const two = roomA.message((results[2] as PromiseFulfilledResult<{ id: string }>).value.id) as MessageEntry
    assert.equal((results[1] as PromiseRejectedResult).reason.code, 'MESH_NOT_FOUND')
    assert.equal(sent.length, 1, 'one transaction')
    const added = records(roomA).slice(before)
    assert.equal(added.length, 1, 'one batch record')
    const [recordKey, record] = added[0] as [string, SealBatch]
    assert.deepEqual(
      record.entries.map(([m, k]) => `${m}/${k}`),
      [`messages/${contentId(one)}`, `messages/${contentId(two)}`],
    )
    const seal = roomA.doc.getMap('seals').get(sealKey('messages', contentId(two))) as BatchSeal
    assert.deepEqual(seal, { mesh: meshA.did, hash: contentId(two), batch: recordKey.slice(6), i: 1 })
    assert.equal(roomA.doc.getMap('reactions').has(contentId(stray)), false)
    // A peer takes it, checking the record once.
    const r = await roomB.applyUpdate(sent[0] as Uint8Array, fromA)
    assert.equal(refusalOf(r), undefined, String(refusalOf(r)?.message))
    assert.ok(roomB.message(contentId(one)) && roomB.message(contentId(two)))
    // Durable on return: a restart reads them back.
    await a.stop()
    const again = await manager(t, meshA, { store })
    const reloaded = await again.load(id)
    assert.equal(reloaded.message(contentId(two))?.body, 'two')
    assert.ok(reloaded.doc.getMap('seals').has(recordKey))
  })

  it('flush waits for the writes queued for the end of the turn', async (t) => {
    const { id, roomA } = await sharedRoom(t)
    const m = message(id, 'queued')
    const written = roomA.write(put(m))
    assert.equal(roomA.inUse, true, 'a queued write keeps the room loaded')
    await roomA.flush()
    assert.ok(roomA.message(contentId(m)))
    await written
  })

  it('a write of more entries than a record may list gets several records; a peer takes them', async (t) => {
    const { id, roomA, roomB } = await sharedRoom(t)
    const before = records(roomA).length
    const many = Array.from({ length: 1100 }, (_, i) => message(id, `bulk ${i}`, alice.did, Date.now() + i))
    const sv = Y.encodeStateVector(roomB.doc)
    await roomA.write(many.flatMap(put))
    assert.deepEqual(
      records(roomA)
        .slice(before)
        .map(([, r]) => r.entries.length),
      [1024, 76],
    )
    for (const chunk of splitDiff(roomA.doc, sv).chunks) {
      const r = await roomB.applyUpdate(chunk, fromA)
      assert.equal(refusalOf(r), undefined, String(refusalOf(r)?.message))
    }
    assert.ok(many.every((m) => roomB.message(contentId(m))))
  })

  it('a single write keeps today’s seal, byte for byte in shape', async (t) => {
    const { id, roomA } = await sharedRoom(t)
    const m = message(id, 'alone')
    await roomA.write(put(m))
    const seal = roomA.doc.getMap('seals').get(sealKey('messages', contentId(m))) as Record<string, unknown>
    assert.deepEqual(Object.keys(seal).sort(), ['hash', 'mesh', 'sig'])
  })

  it('a catch-up cut in small chunks keeps each record with its first entry; the peer takes every chunk', async (t) => {
    const { id, roomA, roomB } = await sharedRoom(t)
    const sv = Y.encodeStateVector(roomB.doc)
    // A first turn of 7 fills a chunk of 7 exactly: the next record must not close it alone.
    const first = Array.from({ length: 7 }, (_, i) => message(id, `f${i}`, alice.did, Date.now() + i))
    await Promise.all(first.map((m) => roomA.write(put(m))))
    const msgs = Array.from({ length: 40 }, (_, i) => message(id, `m${i}`, alice.did, Date.now() + i))
    await Promise.all(msgs.map((m) => roomA.write(put(m))))
    msgs.push(...first)
    assert.ok(records(roomA).some(([, r]) => r.entries.length === 40))
    const plan = splitDiff(roomA.doc, sv, { maxEntries: 7 })
    assert.ok(plan.chunks.length >= 6)
    for (const chunk of plan.chunks) {
      const r = await roomB.applyUpdate(chunk, fromA)
      assert.equal(refusalOf(r), undefined, String(refusalOf(r)?.message))
    }
    for (const m of msgs) assert.ok(roomB.message(contentId(m)))
  })

  it('hostile batches are refused with their code, nothing stored; a sentinel after them arrives', async (t) => {
    const { a, id, roomA, roomB } = await sharedRoom(t)
    const sealsBefore = roomB.doc.getMap('seals').size
    let baseline = roomB.messageCount
    const attack = async (what: string, update: Uint8Array, reason: string, kept = 0, from = fromA) => {
      const r = await roomB.applyUpdate(update, from)
      assert.equal(refusalOf(r)?.details.reason, reason, `${what}: ${refusalOf(r)?.message}`)
      assert.equal(roomB.messageCount, baseline + kept, `${what}: nothing refused stored`)
      baseline += kept
    }
    const msgs = (tag: string) => [message(id, `${tag} 1`), message(id, `${tag} 2`)]
    let client = 700_001
    // Forged signature.
    const forged = batchUpdate(roomB, meshA, msgs('forged'), client++, {
      record: (r) => ({
        ...r,
        sig: `${r.sig.slice(0, 10)}${r.sig[10] === 'A' ? 'B' : 'A'}${r.sig.slice(11)}`,
      }),
    })
    await attack('forged signature', forged.full, 'bad-seal')
    // Wrong index, wrong hash.
    await attack(
      'wrong i',
      batchUpdate(roomB, meshA, msgs('wrong i'), client++, {
        seal: (s, i) => ({ ...s, i: i === 1 ? 2 : i === 2 ? 1 : i }),
      }).full,
      'bad-seal',
    )
    await attack(
      'wrong hash',
      batchUpdate(roomB, meshA, msgs('wrong hash'), client++, {
        seal: (s, i) => (i === 2 ? { ...s, hash: contentId({ other: 1 }) } : s),
      }).full,
      'bad-seal',
      1, // its batch-mate is kept (salvage)
    )
    // Signed for another room (a replay there): the id and signature bind the room.
    const replayed = batchUpdate(roomB, meshA, msgs('replayed'), client++, { room: 'other-room-1' })
    await attack('another room', replayed.full, 'bad-seal')
    // An entry of beta's pointing to alpha's batch record (in the room) is refused.
    const own = [message(id, 'real 1'), message(id, 'real 2')]
    const genuineClient = client++
    const genuine = batchUpdate(roomB, meshA, own, genuineClient)
    assert.equal(refusalOf(await roomB.applyUpdate(genuine.full, fromA)), undefined)
    const stored = roomB.doc.getMap('seals').get(genuine.recordKey) as SealBatch
    assert.ok(stored)
    const betaClient = Number(
      Object.entries(roomB.doc.getMap('clients').toJSON()).find(([, b]) => b.mesh === meshB.did)?.[0],
    )
    const m = { ...message(id, 'borrowed', carol.did), authorMesh: meshB.did }
    const borrowed = borrowing(
      roomB,
      'messages',
      contentId(m),
      m,
      meshB.did,
      genuine.recordKey,
      1,
      betaClient,
    )
    const r = await roomB.applyUpdate(borrowed, { kind: 'peer', meshDid: meshB.did })
    assert.equal(refusalOf(r)?.details.reason, 'bad-seal', String(refusalOf(r)?.message))
    assert.equal(roomB.messageCount, baseline + 2)
    baseline = roomB.messageCount
    // A binding under another client id, in the place of one the record lists (same content, same hash).
    const [, listedBinding] = (stored.entries[0] ?? []) as [string, string, string]
    assert.notEqual(listedBinding, undefined)
    const squatter = 700_999
    const binding = { mesh: meshA.did, room: id }
    const squat = borrowing(
      roomB,
      'clients',
      String(squatter),
      binding,
      meshA.did,
      genuine.recordKey,
      0,
      squatter,
    )
    const r3 = await roomB.applyUpdate(squat, fromC)
    assert.equal(refusalOf(r3)?.details.reason, 'bad-seal', String(refusalOf(r3)?.message))
    assert.equal(roomB.doc.getMap('clients').has(String(squatter)), false)
    // A record alone (genuine, none of its entries in the update or the room): an orphan.
    const lone = batchUpdate(roomB, meshA, msgs('lone'), client++)
    const alone = craft(roomB, (doc) => doc.getMap('seals').set(lone.recordKey, lone.record), genuineClient)
    const r4 = await roomB.applyUpdate(alone, fromA)
    assert.equal(refusalOf(r4)?.details.reason, 'orphan-seal', String(refusalOf(r4)?.message))
    assert.equal(roomB.doc.getMap('seals').has(lone.recordKey), false)
    // A key outside alpha's history signs for alpha.
    const r2 = await roomB.applyUpdate(
      batchUpdate(roomB, meshA, msgs('stranger'), client++, { signer: meshC }).full,
      fromA,
    )
    assert.equal(refusalOf(r2)?.details.reason, 'unknown-key', String(refusalOf(r2)?.message))
    assert.equal(roomB.messageCount, baseline)
    // A record no entry of its update uses is verified all the same: forged, it is refused.
    const unused = batchUpdate(roomB, meshA, msgs('unused'), client, {
      record: (r) => ({
        ...r,
        sig: `${r.sig.slice(0, 20)}${r.sig[20] === 'A' ? 'B' : 'A'}${r.sig.slice(21)}`,
      }),
    })
    const withOwnSeals = craft(
      roomB,
      (doc) => {
        const m = message(id, 'sealed alone')
        const binding = { mesh: meshA.did, room: id }
        doc.getMap('seals').set(unused.recordKey, unused.record)
        doc.getMap('clients').set(String(client), binding)
        doc
          .getMap('seals')
          .set(sealKey('clients', String(client)), makeSeal(meshA, id, 'clients', String(client), binding))
        doc.getMap('messages').set(contentId(m), m)
        doc
          .getMap('seals')
          .set(sealKey('messages', contentId(m)), makeSeal(meshA, id, 'messages', contentId(m), m))
      },
      client++,
    )
    await attack('unused forged record', withOwnSeals, 'bad-seal')
    // Oversized: more entries than a record may list.
    await attack(
      'oversized',
      batchUpdate(roomB, meshA, msgs('big'), client++, {
        record: (rec) => ({
          ...rec,
          entries: [
            ...rec.entries,
            ...Array.from(
              { length: 1024 },
              (_, i) => ['messages', `k${i}`, contentId(i)] as [string, string, string],
            ),
          ],
        }),
      }).full,
      'bad-shape',
    )
    // Entries before their record: refused and left to wait (no hole, even from the home mesh), then taken with it.
    const early = batchUpdate(roomB, meshA, msgs('early'), client++, { recordLast: true })
    for (const from of [fromC, fromA]) {
      const cut = await roomB.applyUpdate(early.entriesOnly, from)
      assert.equal(refusalOf(cut)?.details.reason, 'missing-seal')
    }
    assert.equal(roomB.messageCount, baseline)
    const late = await roomB.applyUpdate(early.full, fromA)
    assert.equal(refusalOf(late), undefined, String(refusalOf(late)?.message))
    assert.equal(roomB.messageCount, baseline + 2)
    assert.ok(roomB.doc.getMap('seals').size > sealsBefore)
    // The sentinel: alpha's next turn arrives.
    const sent = capture(roomA)
    await Promise.all([a.post(id, alice.did, 'sentinel 1'), a.post(id, alice.did, 'sentinel 2')])
    for (const u of sent) assert.equal(refusalOf(await roomB.applyUpdate(u, fromA)), undefined)
    assert.ok(roomB.page(undefined, 100).messages.some((m) => m.body === 'sentinel 2'))
  })

  it('salvage: one entry of a batch by a removed member is refused, its batch-mates and record kept', async (t) => {
    const { id, roomA, roomB } = await sharedRoom(t)
    const now = Date.now()
    const removed: MemberEntry = {
      v: 1,
      room: id,
      did: bob.did,
      mesh: meshA.did,
      meshName: 'alpha',
      localId: 'bob',
      role: 'removed',
      tier: 4,
      ts: now,
    }
    const sent = capture(roomA)
    await roomA.write([{ map: 'members', key: contentId(removed), value: removed }])
    for (const u of sent) assert.equal(refusalOf(await roomB.applyUpdate(u, fromA)), undefined)
    const kept1 = message(id, 'kept 1', alice.did, now + 10)
    const late = message(id, 'after removal', bob.did, now + 20)
    const kept2 = message(id, 'kept 2', alice.did, now + 30)
    const u = batchUpdate(roomB, meshA, [kept1, late, kept2], 800_001)
    const r = await roomB.applyUpdate(u.full, fromA)
    assert.equal(r.error, undefined, String(r.error?.message))
    assert.equal(refusalOf(r)?.details.reason, 'membership-ended')
    assert.equal(refusalOf(r)?.details.refusedEntries, 1)
    assert.ok(roomB.message(contentId(kept1)) && roomB.message(contentId(kept2)))
    assert.equal(roomB.message(contentId(late)), undefined)
    assert.ok(roomB.doc.getMap('seals').has(u.recordKey), 'the record stays')
  })

  it('between two real meshes: posts of one turn at alpha, batch-sealed, converge at beta', async (t) => {
    const { a, b, id } = await twoNodesSharing(t, { rooms: { syncIntervalMs: 200, dialTimeoutMs: 3000 } })
    const bodies = Array.from({ length: 6 }, (_, i) => `turn ${i}`)
    const posted = await Promise.all(bodies.map((body) => a.node.rooms.post(id, a.architect.did, body)))
    const room = await a.node.rooms.load(id)
    const ids = new Set(posted.map((p) => p.id))
    assert.ok(
      records(room).some(([, r]) => r.entries.filter(([, k]) => ids.has(k)).length === bodies.length),
      'alpha sealed the turn’s posts under one record',
    )
    await until(async () => {
      const got = await b.api.get<{ messages: Array<{ body: string }> }>(
        `/api/rooms/${id}/messages?limit=100`,
      )
      return bodies.every((x) => got.messages.some((m) => m.body === x))
    }, 'the batch at beta')
  })
})
