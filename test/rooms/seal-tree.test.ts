/**
 * Issue 15 (posts15): the last transaction of each room written in one event-loop turn
 * shares one signature with the others (a Merkle tree of their records or lone seals);
 * a record names no other room; peers check the path to the signed root.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as Y from 'yjs'
import type { Ed25519KeyPair } from '../../src/identity/index.ts'
import { contentId, type MessageEntry, refusalOf, sealKey } from '../../src/rooms/index.ts'
import { type Seal, sealPayloadText } from '../../src/rooms/room-entries.ts'
import { batchLeaf, type SealBatch } from '../../src/rooms/seal-batch.ts'
import { preverifySeals } from '../../src/rooms/seal-preverify.ts'
import { leafOf, signLeaves, TREE_DEPTH } from '../../src/rooms/seal-tree.ts'
import { batchUpdate, capture, fromA, message, put, records } from './batch-helpers.ts'
import { alice, carol, craft, meshA, sharedRoom } from './helpers.ts'

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
    // A write that adds nothing (an entry the room holds), in a turn with another room's: nothing sealed for it.
    const held = roomA.message(alone.id) as MessageEntry
    const recordsBefore = records(roomA).length
    const sent = capture(roomA)
    const [, p3] = await Promise.all([
      roomA.write([{ map: 'messages', key: alone.id, value: held }]),
      a.post(id2, alice.did, 'with a no-op'),
    ])
    assert.equal(records(roomA).length, recordsBefore, 'no empty record')
    assert.equal(sent.length, 0, 'no update')
    assert.ok(roomA2.message(p3.id))
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
    // The same tweaks, to a record in a tree and (below) to a lone entry's seal in one.
    type Placed = { at?: number; path?: string[] }
    const p = (x: Placed) => x.path as string[]
    const hostile: Array<[string, (x: Placed) => Placed, string]> = [
      ['forged sibling', (x) => ({ ...x, path: [flip(p(x)[0] as string), ...p(x).slice(1)] }), 'bad-seal'],
      ['another place', (x) => ({ ...x, at: (x.at as number) ^ 2 }), 'bad-seal'],
      ['a shorter path', (x) => ({ ...x, path: p(x).slice(1), at: 0 }), 'bad-seal'],
      ['no path: signs its own text', ({ at: _at, path: _p, ...x }) => x, 'bad-seal'],
      ['path too long', (x) => ({ ...x, path: [...p(x), ...p(x), p(x)[0] as string] }), 'bad-shape'],
      ['place out of range', (x) => ({ ...x, at: 2 ** TREE_DEPTH }), 'bad-shape'],
      ['not a hash', (x) => ({ ...x, path: [...p(x).slice(1), 'x'] }), 'bad-shape'],
      ['a place without a path', ({ path: _p, ...x }) => x, 'bad-shape'],
      ['a fractional place', (x) => ({ ...x, at: 0.5 }), 'bad-shape'],
    ]
    for (const [what, tweak, reason] of hostile)
      await attack(what, tree(what, tweak as unknown as (r: SealBatch) => SealBatch), reason)
    await attack(
      'by a stranger',
      tree('stranger', (r) => r, carol),
      'unknown-key',
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
    for (const [what, tweak, reason] of hostile)
      await attack(`lone: ${what}`, lone(`lone ${what}`, tweak as unknown as (s: Seal) => Seal), reason)
    await attack(
      'lone: by a stranger',
      lone('lone stranger', (s) => s, carol),
      'unknown-key',
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
