/**
 * Issue 15 (batch15): the node's writes of one event-loop turn go in one transaction
 * under one batch seal; peers check the batch record once and each entry against it.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as Y from 'yjs'
import type { Ed25519KeyPair } from '../../src/identity/index.ts'
import {
  contentId,
  type MemberEntry,
  type MessageEntry,
  type ReactionEntry,
  type Room,
  type RoomOrigin,
  refusalOf,
  sealKey,
  splitDiff,
} from '../../src/rooms/index.ts'
import { makeSeal, type Seal, sealPayloadText } from '../../src/rooms/room-entries.ts'
import {
  type BatchSeal,
  batchLeaf,
  makeBatch,
  type SealBatch,
  sealedBatch,
} from '../../src/rooms/seal-batch.ts'
import { preverifySeals } from '../../src/rooms/seal-preverify.ts'
import { leafOf, signLeaves, TREE_DEPTH } from '../../src/rooms/seal-tree.ts'
import { tempStore } from '../fixtures/principals.ts'
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

const fromA = { kind: 'peer', meshDid: meshA.did } as const
const fromC = { kind: 'peer', meshDid: meshC.did } as const

function message(room: string, body: string, author = alice.did, ts = Date.now()): MessageEntry {
  return { v: 1, room, author, authorMesh: meshA.did, body, mentions: [], ts }
}

const put = (m: MessageEntry) => [{ map: 'messages' as const, key: contentId(m), value: m }]

/** The batch records a room holds. */
function records(room: Room): Array<[string, SealBatch]> {
  return [...room.doc.getMap('seals').entries()].filter(([k]) => k.startsWith('batch/')) as Array<
    [string, SealBatch]
  >
}

/** The local updates a room emits (what its links and the log are handed). */
function capture(room: Room): Uint8Array[] {
  const sent: Uint8Array[] = []
  room.doc.on('update', (u: Uint8Array, origin: RoomOrigin | null) => {
    if (origin?.source === 'local') sent.push(u)
  })
  return sent
}

type Tweak = {
  record?: (r: SealBatch) => SealBatch
  seal?: (s: BatchSeal, i: number) => BatchSeal
  room?: string
  /** Record written after its entries, in a second transaction. */
  recordLast?: boolean
  /** Signs with this key (a later key of `key`'s mesh, or a stranger's). */
  signer?: Ed25519KeyPair
  /** posts15: the record shares a tree (one signature) with another room's record. */
  tree?: boolean
}

/** `makeBatch`, but the record a leaf of a tree whose other leaf is another room's (posts15). */
function treeBatch(
  signer: Ed25519KeyPair,
  room: string,
  sealed: Parameters<typeof makeBatch>[2],
  mesh: string,
) {
  const leaf = batchLeaf(room, sealed, mesh, signer.did)
  const other = message('another-room-0001', 'elsewhere')
  const elsewhere = batchLeaf('another-room-0001', put(other), mesh, signer.did)
  const [signed] = signLeaves(signer, [leaf.id, elsewhere.id], mesh)
  return sealedBatch(leaf, signed as NonNullable<typeof signed>, mesh, signer.did)
}

/**
 * An update by a fresh client id `client` of `key`'s mesh: its binding and `msgs`, all
 * under one batch record (made by makeBatch, then tweaked), as a node's turn writes them.
 */
function batchUpdate(
  room: Room,
  key: Ed25519KeyPair,
  msgs: MessageEntry[],
  client: number,
  tweak: Tweak = {},
) {
  const binding = { mesh: key.did, room: room.id }
  const sealed = [
    { map: 'clients' as const, key: String(client), value: binding },
    ...msgs.map((m) => ({ map: 'messages' as const, key: contentId(m), value: m })),
  ]
  const made = (tweak.tree ? treeBatch : makeBatch)(
    tweak.signer ?? key,
    tweak.room ?? room.id,
    sealed,
    key.did,
  )
  const record = tweak.record ? tweak.record(made.record) : made.record
  const parts: Uint8Array[] = []
  const full = craft(
    room,
    (doc) => {
      const before = Y.encodeStateVector(doc)
      const writeRecord = () => doc.getMap('seals').set(made.recordKey, record)
      doc.transact(() => {
        if (!tweak.recordLast) writeRecord()
        sealed.forEach((e, i) => {
          doc.getMap(e.map).set(e.key, e.value)
          const seal = made.seals[i] as BatchSeal
          doc.getMap('seals').set(sealKey(e.map, e.key), tweak.seal ? tweak.seal(seal, i) : seal)
        })
      })
      parts.push(Y.encodeStateAsUpdate(doc, before))
      if (tweak.recordLast) doc.transact(writeRecord)
    },
    client,
  )
  return { full, entriesOnly: parts[0] as Uint8Array, recordKey: made.recordKey, record }
}

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

describe('one signature for several rooms a turn (issue 15, posts15)', () => {
  it('posts to rooms of one turn share one signature; a record names only its room; peers take each', async (t) => {
    const { a, b, id, roomA, roomB } = await sharedRoom(t)
    // A second room shared the same way.
    const { id: id2 } = await a.create({ name: 'second', creator: alice.did })
    await b.adopt({ id: id2, homeMesh: meshA.did })
    const roomA2 = await a.load(id2)
    const roomB2 = await b.load(id2)
    const sv = [Y.encodeStateVector(roomB.doc), Y.encodeStateVector(roomB2.doc)]
    const before = [records(roomA).length, records(roomA2).length]
    // Two posts in the first room (a batch record), one in the second (its seal alone).
    const [p1, , p2] = await Promise.all([
      a.post(id, alice.did, 'one room'),
      a.post(id, alice.did, 'one room again'),
      a.post(id2, alice.did, 'another'),
    ])
    const added = records(roomA).slice(before[0])
    assert.equal(added.length, 1, 'one record in the first room')
    assert.equal(records(roomA2).length, before[1], 'none in the second')
    const r1 = (added[0] as [string, SealBatch])[1]
    const r2 = roomA2.doc.getMap('seals').get(sealKey('messages', p2.id)) as Seal
    assert.deepEqual(Object.keys(r2).sort(), ['at', 'hash', 'mesh', 'path', 'sig'])
    assert.equal(r1.sig, r2.sig, 'one signature for both')
    assert.equal(r1.path?.length, TREE_DEPTH)
    assert.equal(r2.path?.length, TREE_DEPTH)
    // Nothing of the other room: neither its id nor its entries.
    assert.ok(!JSON.stringify(r1).includes(id2) && !JSON.stringify(r1).includes(p2.id))
    assert.ok(!JSON.stringify(r2).includes(id) && !JSON.stringify(r2).includes(p1.id))
    assert.ok(r1.entries.some(([, k]) => k === p1.id))
    // Each peer replica takes its room's update, its verifying thread finding the tree's signature good.
    for (const [from, to, since, post, record] of [
      [roomA, roomB, sv[0], p1, r1],
      [roomA2, roomB2, sv[1], p2, r2],
    ] as const) {
      const diff = Y.encodeStateAsUpdate(from.doc, since)
      // One turn's checks, enough for the thread to take them (fewer stay the main thread's).
      const pres = Array.from({ length: 40 }, () => preverifySeals(from.id, diff))
      for (const pre of pres) await pre.settled()
      assert.ok(pres[0]?.verified.get(record.sig), 'found good by the verifying thread')
      const r = await to.applyUpdate(diff, fromA)
      assert.equal(refusalOf(r), undefined, String(refusalOf(r)?.message))
      assert.ok(to.message(post.id))
    }
    // A room alone in its turn keeps its own seal.
    const alone = await a.post(id, alice.did, 'alone')
    const seal = roomA.doc.getMap('seals').get(sealKey('messages', alone.id)) as Record<string, unknown>
    assert.deepEqual(Object.keys(seal).sort(), ['hash', 'mesh', 'sig'])
  })

  it('hostile tree records are refused with their code, nothing stored; a genuine one and a sentinel arrive', async (t) => {
    const { a, id, roomA, roomB } = await sharedRoom(t)
    let baseline = roomB.messageCount
    const attack = async (what: string, update: Uint8Array, reason: string) => {
      const r = await roomB.applyUpdate(update, fromA)
      assert.equal(refusalOf(r)?.details.reason, reason, `${what}: ${refusalOf(r)?.message}`)
      assert.equal(roomB.messageCount, baseline, `${what}: nothing refused stored`)
    }
    const msgs = (tag: string) => [message(id, `${tag} 1`), message(id, `${tag} 2`)]
    const flip = (h: string) => `${h.slice(0, 5)}${h[5] === 'A' ? 'B' : 'A'}${h.slice(6)}`
    let client = 900_001
    const tree = (tag: string, record: (r: SealBatch) => SealBatch, signer?: Ed25519KeyPair) =>
      batchUpdate(roomB, meshA, msgs(tag), client++, { tree: true, record, ...(signer ? { signer } : {}) })
        .full
    const path = (r: SealBatch) => r.path as string[]
    await attack(
      'forged sibling',
      tree('sibling', (r) => ({ ...r, path: [flip(path(r)[0] as string), ...path(r).slice(1)] })),
      'bad-seal',
    )
    await attack(
      'another place',
      tree('place', (r) => ({ ...r, at: (r.at as number) ^ 2 })),
      'bad-seal',
    )
    await attack(
      'a shorter path',
      tree('short', (r) => ({ ...r, path: path(r).slice(1), at: 0 })),
      'bad-seal',
    )
    await attack(
      'no path: signs its own text',
      tree('bare', ({ at: _at, path: _p, ...r }) => r),
      'bad-seal',
    )
    await attack(
      'by a stranger',
      tree('stranger', (r) => r, carol),
      'unknown-key',
    )
    await attack(
      'path too long',
      tree('long', (r) => ({ ...r, path: [...path(r), ...path(r), path(r)[0] as string] })),
      'bad-shape',
    )
    await attack(
      'place out of range',
      tree('range', (r) => ({ ...r, at: 2 ** TREE_DEPTH })),
      'bad-shape',
    )
    await attack(
      'not a hash',
      tree('nohash', (r) => ({ ...r, path: [...path(r).slice(1), 'x'] })),
      'bad-shape',
    )
    await attack(
      'a place without a path',
      tree('nopath', ({ path: _p, ...r }) => r),
      'bad-shape',
    )
    await attack(
      'a fractional place',
      tree('frac', (r) => ({ ...r, at: 0.5 })),
      'bad-shape',
    )
    // Another room's record, replayed here with its entries: its id names that room.
    const { id: id2 } = await a.create({ name: 'second', creator: alice.did })
    const replayed = batchUpdate(roomB, meshA, msgs('replayed'), client++, { tree: true, room: id2 })
    await attack('another room', replayed.full, 'bad-seal')
    // A genuine tree record is taken.
    const bound = client++
    const genuine = batchUpdate(roomB, meshA, msgs('genuine'), bound, { tree: true })
    const taken = await roomB.applyUpdate(genuine.full, fromA)
    assert.equal(refusalOf(taken), undefined, String(refusalOf(taken)?.message))
    baseline += 2
    assert.equal(roomB.messageCount, baseline)
    // A lone entry's seal in a tree (no record), by the client just bound: hostile ones, then a genuine one.
    const lone = (tag: string, seal: (s: Seal) => Seal, signer = meshA) =>
      craft(
        roomB,
        (doc) => {
          const m = message(id, tag)
          const hash = contentId(m)
          const leaf = batchLeaf(
            'another-room-0001',
            put(message('another-room-0001', tag)),
            meshA.did,
            signer.did,
          )
          const mesh = signer === meshA ? undefined : meshA.did
          const own = leafOf(sealPayloadText(id, 'messages', hash, hash, mesh))
          const [signed] = signLeaves(signer, [leaf.id, own].reverse(), meshA.did)
          const key = signer === meshA ? {} : { key: signer.did }
          doc.getMap('messages').set(hash, m)
          doc
            .getMap('seals')
            .set(sealKey('messages', hash), seal({ mesh: meshA.did, ...key, hash, ...signed } as Seal))
        },
        bound,
      )
    const lp = (s: Seal) => s.path as string[]
    await attack(
      'lone: forged sibling',
      lone('l sibling', (s) => ({ ...s, path: [flip(lp(s)[0] as string), ...lp(s).slice(1)] })),
      'bad-seal',
    )
    await attack(
      'lone: another place',
      lone('l place', (s) => ({ ...s, at: (s.at as number) ^ 1 })),
      'bad-seal',
    )
    await attack(
      'lone: no path',
      lone('l bare', ({ at: _a, path: _p, ...s }) => s),
      'bad-seal',
    )
    await attack(
      'lone: by a stranger',
      lone('l stranger', (s) => s, carol),
      'unknown-key',
    )
    await attack(
      'lone: path too long',
      lone('l long', (s) => ({ ...s, path: [...lp(s), ...lp(s), lp(s)[0] as string] })),
      'bad-shape',
    )
    await attack(
      'lone: a place without a path',
      lone('l nopath', ({ path: _p, ...s }) => s),
      'bad-shape',
    )
    const loneOk = await roomB.applyUpdate(
      lone('l genuine', (s) => s),
      fromA,
    )
    assert.equal(refusalOf(loneOk), undefined, String(refusalOf(loneOk)?.message))
    baseline += 1
    assert.equal(roomB.messageCount, baseline)
    // The sentinel: alpha's next turn arrives.
    const sent = capture(roomA)
    await Promise.all([a.post(id, alice.did, 'sentinel 1'), a.post(id, alice.did, 'sentinel 2')])
    for (const u of sent) assert.equal(refusalOf(await roomB.applyUpdate(u, fromA)), undefined)
    assert.ok(roomB.page(undefined, 100).messages.some((m) => m.body === 'sentinel 2'))
  })
})
