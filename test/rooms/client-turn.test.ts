/**
 * Issue 15 (wsturn15): the y-websocket client updates of one event-loop turn are validated
 * in arrival order, each against the room as the ones before it left it, and applied,
 * bound and sealed in one transaction under one batch record (one signature, one log row).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as Y from 'yjs'
import { ClientTurn } from '../../src/rooms/client-turn.ts'
import {
  contentId,
  type MessageEntry,
  type ReactionEntry,
  type RoomOrigin,
  refusalOf,
  sealKey,
  splitDiff,
  type UpdateSender,
} from '../../src/rooms/index.ts'
import type { BatchSeal } from '../../src/rooms/seal-batch.ts'
import type { ValidationResult } from '../../src/rooms/validate-update.ts'
import { records } from './batch-helpers.ts'
import { alice, bob, meshA, replica } from './helpers.ts'
import { message, type World, world } from './validate-update-world.ts'

const asBob: UpdateSender = { kind: 'client', did: bob.did, mesh: meshA.did }
const asAlice: UpdateSender = { kind: 'client', did: alice.did, mesh: meshA.did }

/** A y-websocket client's document: each transaction it makes is one update, in `sent`. */
function client(w: World, id: number): { doc: Y.Doc; sent: Uint8Array[] } {
  const doc = replica(w.roomA, id)
  const sent: Uint8Array[] = []
  doc.on('update', (u: Uint8Array) => sent.push(u))
  return { doc, sent }
}

function write(doc: Y.Doc, entry: MessageEntry | ReactionEntry, map: 'messages' | 'reactions' = 'messages') {
  doc.getMap(map).set(contentId(entry), entry)
  return contentId(entry)
}

/** The room's updates (what its log, hub and replicator are handed) while `run` goes. */
async function updatesOf<T>(w: World, run: () => Promise<T>): Promise<{ value: T; updates: unknown[] }> {
  const updates: unknown[] = []
  const on = (_: Uint8Array, origin: unknown) => updates.push(origin)
  w.roomA.doc.on('update', on)
  try {
    return { value: await run(), updates }
  } finally {
    w.roomA.doc.off('update', on)
  }
}

describe('a client turn: one transaction, one seal (issue 15, wsturn15)', () => {
  it('applies a turn in order, each update against the ones before it, under one batch record; a peer accepts it', async (t) => {
    const w = await world(t)
    const bobs = client(w, 777_301)
    const m1 = message(w, bob.did, meshA.did, 'first of the turn')
    const k1 = write(bobs.doc, m1)
    // Depends on the first: refused were it checked against the room before it.
    const reaction: ReactionEntry = {
      v: 1,
      room: w.id,
      message: k1,
      emoji: '👍',
      author: bob.did,
      authorMesh: meshA.did,
      ts: Date.now(),
    }
    const kr = write(bobs.doc, reaction, 'reactions')
    // The same entry again from a second client doc of bob's: an overwrite once the first applied.
    const twin = client(w, 777_302)
    write(twin.doc, m1)
    const before = records(w.roomA).length
    const conn = {}
    const { value: results, updates } = await updatesOf(w, () =>
      Promise.all([...bobs.sent, ...twin.sent].map((u) => w.roomA.applyUpdate(u, asBob, conn))),
    )
    assert.deepEqual(
      results.map((r) => refusalOf(r)?.details.reason),
      [undefined, undefined, 'overwrite'],
    )
    assert.equal(updates.length, 1, 'one transaction, one update (one log row)')
    assert.deepEqual((updates[0] as RoomOrigin & { connections: Set<unknown> }).connections, new Set([conn]))
    assert.equal(records(w.roomA).length, before + 1, 'one batch record: one signature')
    for (const [map, key] of [
      ['messages', k1],
      ['reactions', kr],
      ['clients', '777301'],
    ] as const) {
      const seal = w.roomA.doc.getMap('seals').get(sealKey(map, key)) as BatchSeal
      assert.equal(typeof seal?.batch, 'string', `${map} sealed by the batch`)
    }
    assert.deepEqual(w.rejections.at(-1), { room: w.id, reason: 'overwrite' })

    // A peer replica takes it whole, and in catch-up chunks of one entry.
    const chunks = splitDiff(w.roomA.doc, Y.encodeStateVector(w.roomB.doc), { maxEntries: 1 }).chunks
    assert.ok(chunks.length >= 2)
    for (const chunk of chunks) {
      const r = await w.roomB.applyUpdate(chunk, { kind: 'peer', meshDid: meshA.did })
      assert.equal(r.error, undefined, r.error?.message ?? '')
    }
    assert.equal(w.roomB.view(k1)?.reactions['👍'], 1)
    assert.deepEqual(Y.encodeStateVector(w.roomB.doc), Y.encodeStateVector(w.roomA.doc))
  })

  it('refuses a bad update alone among good ones; each connection gets its answer once, the others’ writes in it', async (t) => {
    const w = await world(t)
    const bobs = client(w, 777_401)
    const alices = client(w, 777_402)
    const kb = [write(bobs.doc, message(w, bob.did, meshA.did, 'bob 0'))]
    // Bob's client writing as alice: refused alone (a hole where it was), bob's next write goes on.
    const forged = write(bobs.doc, message(w, alice.did, meshA.did, 'bob as alice'))
    kb.push(write(bobs.doc, message(w, bob.did, meshA.did, 'bob 1')))
    const ka = write(alices.doc, message(w, alice.did, meshA.did, 'alice, same turn'))
    const connB = {}
    const connA = {}
    const given: Array<[Uint8Array, UpdateSender, object]> = [
      [bobs.sent[0] as Uint8Array, asBob, connB],
      [bobs.sent[1] as Uint8Array, asBob, connB],
      [alices.sent[0] as Uint8Array, asAlice, connA],
      [bobs.sent[2] as Uint8Array, asBob, connB],
    ]
    const rejected = w.rejections.length
    const { value: results, updates } = await updatesOf(w, () =>
      Promise.all(given.map(([u, s, c]) => w.roomA.applyUpdate(u, s, c))),
    )
    assert.deepEqual(
      results.map((r) => refusalOf(r)?.details.reason),
      [undefined, 'client-scope', undefined, undefined],
    )
    assert.equal(w.rejections.length, rejected + 1)
    assert.equal(updates.length, 1)
    assert.equal(w.roomA.message(forged), undefined)
    for (const k of [...kb, ka]) assert.ok(w.roomA.message(k))
    // Answers: bob's on his last update, alice's on hers; none on bob's first.
    assert.equal(results[0]?.nodeUpdate, undefined)
    for (const [at, doc] of [
      [3, bobs.doc],
      [2, alices.doc],
    ] as const) {
      const answer = results[at]?.nodeUpdate as Uint8Array
      const { from } = Y.parseUpdateMeta(answer)
      assert.equal(from.has(doc.clientID), false, 'a client is not sent its own writes back')
      Y.applyUpdate(doc, answer)
      assert.equal(doc.store.pendingStructs, null)
      assert.deepEqual(Y.encodeStateVector(doc), Y.encodeStateVector(w.roomA.doc))
    }
    const r = await w.roomB.applyUpdate(
      Y.encodeStateAsUpdate(w.roomA.doc, Y.encodeStateVector(w.roomB.doc)),
      { kind: 'peer', meshDid: meshA.did },
    )
    assert.equal(r.error, undefined, r.error?.message ?? '')
    assert.equal(w.roomB.view(ka)?.author, '@alice:alpha')
  })

  it('a removal asked for after a client update of the same turn is dated after its entries', async (t) => {
    // The removal dates itself after the member's last write (room-roles.ts): the client's
    // update, given first, must be in the room by then, not waiting for the end of the turn.
    const w = await world(t)
    const bobs = client(w, 777_501)
    const later: MessageEntry = {
      ...message(w, bob.did, meshA.did, 'just before removal'),
      ts: Date.now() + 5_000,
    }
    const key = write(bobs.doc, later)
    const [applied] = await Promise.all([
      w.roomA.applyUpdate(bobs.sent[0] as Uint8Array, asBob, {}),
      w.a.removeMember(w.id, alice.did, bob.did),
    ])
    assert.equal(refusalOf(applied), undefined)
    assert.ok((w.roomA.endedAt(bob.did, meshA.did) as number) > later.ts)
    assert.equal(w.roomA.view(key)?.redacted, undefined, 'the message stands')
    const r = await w.roomB.applyUpdate(
      Y.encodeStateAsUpdate(w.roomA.doc, Y.encodeStateVector(w.roomB.doc)),
      { kind: 'peer', meshDid: meshA.did },
    )
    assert.equal(refusalOf(r), undefined)
    assert.equal(w.roomB.view(key)?.body, 'just before removal')
  })
})

describe('a client turn that throws (issue 15, wsturn15)', () => {
  it('seals what was applied before the throw, answers it, and fails the update that threw and the rest', async () => {
    // ClientTurn alone, on a real document: a host whose validation throws on the second update.
    const doc = new Y.Doc()
    const sealedAt: Array<{ keys: string[]; inTransaction: boolean }> = []
    const updates: unknown[] = []
    doc.on('update', (_: Uint8Array, origin: unknown) => updates.push(origin))
    const writer = new Y.Doc()
    const sent: Uint8Array[] = []
    writer.on('update', (u: Uint8Array) => sent.push(u))
    for (const k of ['a', 'b', 'c']) writer.getMap('messages').set(k, { body: k })
    const turn = new ClientTurn({
      doc,
      ownMesh: meshA.did,
      room: 'r',
      assertHealthy: () => {},
      validate: (update) => {
        if (update === sent[1]) throw new Error('validation threw')
        const key = update === sent[0] ? 'a' : 'c'
        const entries = [{ map: 'messages', key, value: { body: key } }]
        return { ok: { entries, clients: [], empty: false } } as unknown as ValidationResult
      },
      rejected: () => {},
      put: () => {},
      seal: (written) =>
        sealedAt.push({ keys: written.map((e) => e.key), inTransaction: doc._transaction !== null }),
      assertWhole: () => {},
      durable: () => Promise.resolve(),
    })
    const sender = { kind: 'client', did: bob.did, mesh: meshA.did } as const
    const results = sent.map((u) =>
      turn.add(u, sender, 'connection').then(
        (r) => r,
        (err: Error) => err,
      ),
    )
    const [first, second, third] = await Promise.all(results)
    assert.equal(
      (first as { error?: unknown }).error,
      undefined,
      'the update applied before the throw is answered',
    )
    assert.match(String((second as Error).message), /validation threw/)
    assert.match(String((third as Error).message), /validation threw/, 'the rest of the turn fails with it')
    assert.deepEqual(
      sealedAt,
      [{ keys: ['a'], inTransaction: true }],
      'what was applied is sealed in its transaction',
    )
    assert.equal(updates.length, 1, 'one update')
    assert.deepEqual([...doc.getMap('messages').keys()], ['a'])
  })
})
