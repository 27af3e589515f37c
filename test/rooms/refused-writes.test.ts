/**
 * A refused entry must not stop the writes that follow it (SPEC §5: the room and the
 * link stay healthy). Each Yjs client's writes form one clock sequence, so a replica
 * keeps a refused entry's place as a hole (update-structs.ts, update-salvage.ts): the
 * rest of the update applies, the writer's later writes apply, and the hole travels
 * only where its sender answers for the client that wrote it.
 */
import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import * as Y from 'yjs'
import {
  contentId,
  type MessageEntry,
  type Room,
  type RoomManager,
  refusalOf,
  splitDiff,
  type UpdateSender,
} from '../../src/rooms/index.ts'
import { encodeStructs } from '../../src/rooms/update-structs.ts'
import { tempStore } from '../fixtures/principals.ts'
import {
  alice,
  bob,
  carol,
  content,
  mallory,
  manager,
  meshA,
  meshB,
  meshC,
  replica,
  sharedRoom,
  sync,
  writeSealed,
} from './helpers.ts'

const fromA: UpdateSender = { kind: 'peer', meshDid: meshA.did }
const fromB: UpdateSender = { kind: 'peer', meshDid: meshB.did }
const fromC: UpdateSender = { kind: 'peer', meshDid: meshC.did }
const WRITER = 424_242 // a second writer of beta's (another process of beta, say)

interface World {
  a: RoomManager
  b: RoomManager
  roomA: Room
  roomB: Room
  id: string
  refusals: string[]
}

/** alpha's room with alice and bob, shared with beta (carol joined; mallory is not a member). */
async function world(t: TestContext, options: { storeA?: Awaited<ReturnType<typeof tempStore>> } = {}) {
  const refusals: string[] = []
  const w = await sharedRoom(t, {
    a: {
      ...(options.storeA !== undefined ? { store: options.storeA } : {}),
      onRejected: (r) => refusals.push(String(r.error.details.reason)),
    },
    betaMembers: [carol],
    before: (a, id) => a.post(id, alice.did, 'first, by alice'),
  })
  assert.ok((await sync(w.roomB, w.roomA, meshB.did)).ok)
  return { ...w, refusals } satisfies World
}

function message(id: string, author: string, mesh: string, body: string, ts = Date.now()): MessageEntry {
  return { v: 1, room: id, author, authorMesh: mesh, body, mentions: [], ts }
}

/** A writer of `key`'s mesh: a doc with the room's state writing sealed entries under `client`. */
function writer(room: Room, key: typeof meshB, client: number) {
  const doc = replica(room, client)
  let bound = false
  return {
    doc,
    /** One update holding `entries` (and the binding of `client` on first use). */
    write(entries: MessageEntry[]): Uint8Array {
      const before = Y.encodeStateVector(doc)
      writeSealed(doc, key, room.id, entries, bound ? undefined : client)
      bound = true
      return Y.encodeStateAsUpdate(doc, before)
    },
  }
}

/** The GC structs (holes) `doc` holds for `client`. */
function holesOf(doc: Y.Doc, client: number): Array<[number, number]> {
  return (doc.store.clients.get(client) ?? [])
    .filter((s) => s instanceof Y.GC)
    .map((s) => [s.id.clock, s.length] as [number, number])
}

describe('a refused entry keeps its place as a hole', () => {
  it('one update, one refused entry: the rest applies, and the writer’s later writes apply', async (t) => {
    const w = await world(t)
    const beta = writer(w.roomB, meshB, WRITER)
    const ok1 = message(w.id, carol.did, meshB.did, 'carol, before')
    const bad = message(w.id, carol.did, meshB.did, 'dated before the room', Date.parse('1996-01-01'))
    const ok2 = message(w.id, carol.did, meshB.did, 'carol, after')
    const result = await w.roomA.applyUpdate(beta.write([ok1, bad, ok2]), fromB)
    assert.ok(result.ok, result.error?.message ?? '')
    const refusal = refusalOf(result)
    assert.equal(refusal?.code, 'MESH_UPDATE_REJECTED')
    assert.equal(refusal?.details.reason, 'past-ts')
    assert.equal(refusal?.details.refusedEntries, 1)
    assert.deepEqual(w.refusals, ['past-ts'], 'the refusal is recorded')
    assert.ok(w.roomA.message(contentId(ok1)))
    assert.ok(w.roomA.message(contentId(ok2)))
    assert.equal(w.roomA.message(contentId(bad)), undefined)
    // The refused message and its seal: one hole of two clocks.
    assert.deepEqual(holesOf(w.roomA.doc, WRITER).length, 1)
    assert.equal(w.roomA.doc.store.pendingStructs, null)
    // The same writer goes on: its next write applies.
    const later = message(w.id, carol.did, meshB.did, 'carol, later')
    const next = await w.roomA.applyUpdate(beta.write([later]), fromB)
    assert.ok(next.ok, next.error?.message ?? '')
    assert.equal(refusalOf(next), undefined)
    assert.ok(w.roomA.message(contentId(later)), 'the later write arrives')
    assert.deepEqual(Y.encodeStateVector(w.roomA.doc), Y.encodeStateVector(beta.doc))
  })

  it('an entry refused only for now leaves no hole: it applies once what it needs arrives', async (t) => {
    const w = await world(t)
    const beta = writer(w.roomB, meshB, WRITER)
    const first = message(w.id, carol.did, meshB.did, 'carol first')
    const early = message(w.id, mallory.did, meshB.did, 'mallory, before her join reached alpha')
    const result = await w.roomA.applyUpdate(beta.write([first, early]), fromB)
    assert.equal(refusalOf(result)?.details.reason, 'not-member')
    assert.ok(w.roomA.message(contentId(first)), 'what came before it applies')
    assert.equal(w.roomA.message(contentId(early)), undefined)
    assert.deepEqual(holesOf(w.roomA.doc, WRITER), [], 'no hole: the writer is cut there')
    // mallory's membership reaches alpha; the writer's state, synced again, now applies.
    await w.b.join(w.id, mallory.did)
    assert.ok((await sync(w.roomB, w.roomA, meshB.did)).ok)
    const again = await w.roomA.applyUpdate(
      Y.encodeStateAsUpdate(beta.doc, Y.encodeStateVector(w.roomA.doc)),
      fromB,
    )
    assert.equal(refusalOf(again), undefined, refusalOf(again)?.message ?? '')
    assert.ok(w.roomA.message(contentId(early)))
  })

  it('the home mesh passes a hole on; a peer that does not answer for the client cannot make one', async (t) => {
    const w = await world(t)
    const c = await manager(t, meshC)
    await c.adopt({ id: w.id, homeMesh: meshA.did })
    const roomC = await c.load(w.id)
    const beta = writer(w.roomB, meshB, WRITER)
    const bad = message(w.id, carol.did, meshB.did, 'refused at alpha', Date.parse('1996-01-01'))
    assert.ok(refusalOf(await w.roomA.applyUpdate(beta.write([bad]), fromB)))
    // gamma catches up from alpha (the home): the diff carries the hole, and gamma takes it.
    const caught = await sync(w.roomA, roomC, meshA.did)
    assert.ok(caught.ok, caught.error?.message ?? '')
    assert.deepEqual(content(roomC), content(w.roomA))
    assert.deepEqual(Y.encodeStateVector(roomC.doc), Y.encodeStateVector(w.roomA.doc))
    // Later writes of beta's writer reach gamma through alpha.
    const later = message(w.id, carol.did, meshB.did, 'through alpha')
    assert.ok((await w.roomA.applyUpdate(beta.write([later]), fromB)).ok)
    assert.ok((await sync(w.roomA, roomC, meshA.did)).ok)
    assert.ok(roomC.message(contentId(later)))

    // beta forges a hole where alpha's node writes next: gamma takes nothing from it…
    const aClient = w.roomA.doc.clientID
    const next = Y.getState(roomC.doc.store, aClient)
    const forged = encodeStructs(new Map([[aClient, [{ client: aClient, clock: next, length: 2 }]]]))
    const svBefore = Y.encodeStateVector(roomC.doc)
    await roomC.applyUpdate(forged, fromB)
    assert.deepEqual(Y.encodeStateVector(roomC.doc), svBefore)
    // …so alpha's next post, at that very clock, still arrives.
    const post = await w.a.post(w.id, alice.did, 'alpha, after the forged hole')
    assert.ok((await sync(w.roomA, roomC, meshA.did)).ok)
    assert.ok(roomC.message(post.id), 'alpha’s write arrives')
    assert.deepEqual(holesOf(roomC.doc, aClient), [])
  })

  it('a hole where another replica holds the entry is no conflict, either way', async (t) => {
    const w = await world(t)
    const c = await manager(t, meshC)
    await c.adopt({ id: w.id, homeMesh: meshA.did })
    const roomC = await c.load(w.id)
    assert.ok((await sync(w.roomA, roomC, meshA.did)).ok)
    // beta ends carol's membership; alpha learns of it, gamma not yet.
    const beta = writer(w.roomB, meshB, WRITER)
    await w.b.endMemberships(carol.did)
    assert.ok((await sync(w.roomB, w.roomA, meshB.did)).ok)
    // A replica of beta that missed the ending writes a post of carol's.
    const late = message(w.id, carol.did, meshB.did, 'after my removal', Date.now() + 1000)
    const update = beta.write([late])
    assert.equal(refusalOf(await w.roomA.applyUpdate(update, fromB))?.details.reason, 'membership-ended')
    assert.equal(refusalOf(await roomC.applyUpdate(update, fromB)), undefined)
    assert.ok(roomC.message(contentId(late)))
    // alpha's diff (with the hole) to gamma, and gamma's (with the entry) to alpha.
    const toC = await sync(w.roomA, roomC, meshA.did)
    assert.ok(toC.ok, toC.error?.message ?? '')
    assert.equal(refusalOf(toC), undefined)
    const toA = await w.roomA.applyUpdate(
      Y.encodeStateAsUpdate(roomC.doc, Y.encodeStateVector(w.roomA.doc)),
      fromC,
    )
    assert.ok(toA.ok, toA.error?.message ?? '')
    assert.equal(refusalOf(toA), undefined)
    assert.equal(w.roomA.message(contentId(late)), undefined, 'alpha keeps its hole')
    assert.equal(roomC.view(contentId(late))?.redacted, true, 'gamma keeps the entry, hidden now')
    // Whole states relayed either way are replays: no conflict.
    for (const [to, from, sender] of [
      [w.roomA, roomC, fromC],
      [roomC, w.roomA, fromA],
    ] as const) {
      const replay = await to.applyUpdate(Y.encodeStateAsUpdate(from.doc), sender)
      assert.ok(replay.ok, replay.error?.message ?? '')
      assert.equal(refusalOf(replay), undefined)
    }
  })

  it('a y-websocket client’s refused write does not block its later writes', async (t) => {
    const w = await world(t)
    const asBob: UpdateSender = { kind: 'client', did: bob.did, mesh: meshA.did }
    const doc = replica(w.roomA, 777_500)
    const write = (change: (d: Y.Doc) => void) => {
      const before = Y.encodeStateVector(doc)
      change(doc)
      return Y.encodeStateAsUpdate(doc, before)
    }
    // bob redacts alice's message: not his, and he is no moderator.
    const target = [...w.roomA.doc.getMap('messages').keys()][0] as string
    const redaction = {
      v: 1,
      room: w.id,
      author: bob.did,
      authorMesh: meshA.did,
      message: target,
      ts: Date.now(),
    }
    const refused = await w.roomA.applyUpdate(
      write((d) => d.getMap('redactions').set(contentId(redaction), redaction)),
      asBob,
    )
    assert.equal(refusalOf(refused)?.details.reason, 'not-author-or-moderator')
    assert.equal(w.roomA.doc.getMap('redactions').size, 0)
    const own = message(w.id, bob.did, meshA.did, 'bob, right after')
    const later = await w.roomA.applyUpdate(
      write((d) => d.getMap('messages').set(contentId(own), own)),
      asBob,
    )
    assert.equal(refusalOf(later), undefined, refusalOf(later)?.message ?? '')
    assert.ok(w.roomA.message(contentId(own)), 'the later write arrives')
    assert.equal((w.roomA.doc.getMap('clients').get('777500') as { did: string }).did, bob.did)
    // And it verifies at beta, hole and all.
    const atB = await sync(w.roomA, w.roomB, meshA.did)
    assert.ok(atB.ok, atB.error?.message ?? '')
    assert.ok(w.roomB.message(contentId(own)))
  })

  it('holes survive a restart, and catch-up chunks carry them to a new replica', async (t) => {
    const storeA = await tempStore(t)
    const w = await world(t, { storeA })
    const beta = writer(w.roomB, meshB, WRITER)
    const bad = message(w.id, carol.did, meshB.did, 'refused', Date.parse('1996-01-01'))
    assert.ok(refusalOf(await w.roomA.applyUpdate(beta.write([bad]), fromB)))
    const sv = Y.encodeStateVector(w.roomA.doc)
    await w.a.stop()
    const again = await manager(t, meshA, { store: storeA })
    const roomA = await again.load(w.id)
    assert.deepEqual(Y.encodeStateVector(roomA.doc), sv)
    assert.equal(roomA.doc.store.pendingStructs, null)
    const later = message(w.id, carol.did, meshB.did, 'after the restart')
    assert.ok((await roomA.applyUpdate(beta.write([later]), fromB)).ok)
    assert.ok(roomA.message(contentId(later)))
    // A new replica catches up from alpha one entry a chunk.
    const d = await manager(t, meshC)
    await d.adopt({ id: w.id, homeMesh: meshA.did })
    const roomD = await d.load(w.id)
    const plan = splitDiff(roomA.doc, Y.encodeStateVector(roomD.doc), { maxEntries: 1 })
    assert.ok(plan.chunks.length > 2)
    for (const chunk of plan.chunks) {
      const r = await roomD.applyUpdate(chunk, fromA)
      assert.ok(r.ok, r.error?.message ?? '')
      assert.equal(refusalOf(r), undefined)
    }
    assert.deepEqual(content(roomD), content(roomA))
    assert.deepEqual(Y.encodeStateVector(roomD.doc), Y.encodeStateVector(roomA.doc))
  })
})
