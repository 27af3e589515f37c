import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import * as Y from 'yjs'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import {
  contentId,
  type MessageEntry,
  makeSeal,
  refusalOf,
  sealKey,
  type UpdateSender,
  validateUpdate,
} from '../../src/rooms/index.ts'
import {
  alice,
  bob,
  carol,
  content,
  craft,
  makeBobReadOnly,
  mallory,
  manager,
  meshA,
  meshB,
  meshC,
  sync,
} from './helpers.ts'

import {
  aliceMessage,
  bindSpare,
  boundClient,
  fromB,
  lessBindingsOf,
  message,
  refusedAndHealthy,
  SPARE_B,
  sealedWrite,
  type World,
  world,
} from './validate-update-world.ts'

describe('validateUpdate: clients of this mesh', () => {
  const asBob: UpdateSender = { kind: 'client', did: bob.did, mesh: meshA.did }

  it('binds and seals a valid client write, which then verifies at a peer', async (t) => {
    const w = await world(t)
    const entry = message(w, bob.did, meshA.did, 'bob via y-websocket')
    const id = contentId(entry)
    const update = craft(w.roomA, (doc) => doc.getMap('messages').set(id, entry), 777_001)
    const result = await w.roomA.applyUpdate(update, asBob)
    assert.ok(result.ok, result.error?.message ?? '')
    assert.ok(result.nodeUpdate && result.nodeUpdate.byteLength > 2)
    assert.deepEqual(w.roomA.doc.getMap('clients').get('777001'), {
      mesh: meshA.did,
      room: w.id,
      did: bob.did,
    })
    assert.ok(w.roomA.doc.getMap('seals').get(sealKey('messages', id)))
    const forwarded = await sync(w.roomA, w.roomB, meshA.did)
    assert.ok(forwarded.ok, forwarded.error?.message ?? '')
    assert.equal(w.roomB.view(id)?.author, '@bob:alpha')
  })

  it('answers a client with what the node added, cut from the transaction: bindings and seals, not the client’s own write', async (t) => {
    // issue 15 (p99): the node's part used to be encoded from the whole document
    const w = await world(t)
    const client = new Y.Doc({ gc: false })
    client.clientID = 777_002
    Y.applyUpdate(client, Y.encodeStateAsUpdate(w.roomA.doc))
    const before = Y.encodeStateVector(client)
    const entries = [0, 1].map((i) => message(w, bob.did, meshA.did, `bob's note ${i}`))
    client.transact(() => {
      for (const e of entries) client.getMap('messages').set(contentId(e), e)
    })
    const result = await w.roomA.applyUpdate(Y.encodeStateAsUpdate(client, before), asBob)
    assert.ok(result.ok, result.error?.message ?? '')
    const added = result.nodeUpdate as Uint8Array
    const { from } = Y.parseUpdateMeta(added)
    assert.deepEqual([...from.keys()], [w.roomA.doc.clientID])
    Y.applyUpdate(client, added)
    assert.equal(client.store.pendingStructs, null)
    assert.deepEqual(client.getMap('clients').get('777002'), { mesh: meshA.did, room: w.id, did: bob.did })
    for (const e of entries) assert.ok(client.getMap('seals').get(sealKey('messages', contentId(e))))
    assert.deepEqual(Y.encodeStateVector(client), Y.encodeStateVector(w.roomA.doc))
    // The same write again adds nothing: an empty answer.
    const again = await w.roomA.applyUpdate(Y.encodeStateAsUpdate(client, before), asBob)
    assert.ok((again.nodeUpdate?.byteLength ?? 0) <= 2)
  })

  it('refuses a client writing as someone else, writing seals, editing, or using another’s client id', async (t) => {
    const w = await world(t)
    const asAlice = message(w, alice.did, meshA.did, 'bob pretending')
    const refuse = async (update: Uint8Array, reason: string) => {
      const before = content(w.roomA)
      const r = validateUpdate(w.roomA, update, asBob)
      assert.equal(refusalOf(r)?.details.reason, reason)
      const applied = await w.roomA.applyUpdate(update, asBob)
      assert.equal(refusalOf(applied)?.details.reason, reason)
      assert.deepEqual(lessBindingsOf(content(w.roomA), bob.did, before), before)
    }
    await refuse(
      craft(w.roomA, (doc) => doc.getMap('messages').set(contentId(asAlice), asAlice), 777_002),
      'client-scope',
    )
    const own = message(w, bob.did, meshA.did, 'self-sealed')
    const oid = contentId(own)
    await refuse(
      craft(
        w.roomA,
        (doc) =>
          doc.getMap('seals').set(sealKey('messages', oid), makeSeal(mallory, w.id, 'messages', oid, own)),
        777_003,
      ),
      'client-scope',
    )
    const target = aliceMessage(w.roomA)
    await refuse(
      craft(
        w.roomA,
        (doc) =>
          doc
            .getMap('messages')
            .set(target, { ...(w.roomA.message(target) as MessageEntry), body: 'edited' }),
        777_004,
      ),
      'overwrite',
    )
    await refuse(
      craft(w.roomA, (doc) => doc.getMap('messages').set(oid, own), boundClient(w.roomA, meshA.did)),
      'client-spoof',
    )
    // A read-only member's writes are refused by the rules too.
    const room = w.roomA
    await makeBobReadOnly(room)
    await refuse(
      craft(w.roomA, (doc) => doc.getMap('messages').set(oid, own), 777_005),
      'read-only',
    )
    const sentinel = await w.a.post(w.id, alice.did, 'sentinel')
    assert.ok(w.roomA.message(sentinel.id))
  })
})

describe('validateUpdate: backdated entries', () => {
  const DAY = 86_400_000
  const eve = new Ed25519KeyPair(Buffer.alloc(32, 21))

  /**
   * Mesh A created the room and alice posted 30 days ago (A's clock is then set right);
   * mesh B adopts it today, backfilling that history, and carol joins from B today.
   */
  async function oldWorld(t: TestContext): Promise<World & { createdAt: number }> {
    const rejections: World['rejections'] = []
    let offset = -30 * DAY
    const a = await manager(t, meshA, {
      now: () => Date.now() + offset,
      onRejected: (r) => rejections.push({ room: r.room, reason: r.error.details.reason }),
    })
    const b = await manager(t, meshB)
    const { id } = await a.create({ name: 'archive', creator: alice.did })
    await a.post(id, alice.did, 'thirty days ago, by alice')
    const roomA = await a.load(id)
    const createdAt = (roomA.doc.getMap('meta').get('room') as { createdAt: number }).createdAt
    assert.ok(createdAt < Date.now() - 29 * DAY)
    offset = 0
    await b.adopt({ id, homeMesh: meshA.did })
    const roomB = await b.load(id)
    const backfill = await sync(roomA, roomB, meshA.did)
    assert.ok(backfill.ok, backfill.error?.message ?? '')
    await b.join(id, carol.did)
    await b.post(id, carol.did, 'today, by carol')
    assert.ok((await sync(roomB, roomA, meshB.did)).ok)
    await bindSpare(roomA, roomB)
    return { a, b, roomA, roomB, id, rejections, createdAt }
  }

  it('accepts a peer’s backfill of old history, at a replica that joins later too', async (t) => {
    const w = await oldWorld(t)
    const c = await manager(t, meshC)
    await c.adopt({ id: w.id, homeMesh: meshA.did })
    const roomC = await c.load(w.id)
    const backfill = await sync(w.roomB, roomC, meshB.did)
    assert.ok(backfill.ok, backfill.error?.message ?? '')
    assert.deepEqual(content(roomC), content(w.roomA))
    const old = [...roomC.doc.getMap('messages').values()] as MessageEntry[]
    assert.ok(old.some((m) => m.ts < Date.now() - 29 * DAY && m.author === alice.did))
  })

  it('refuses a peer’s entry dated before the room, or before its author joined', async (t) => {
    const w = await oldWorld(t)
    const client = SPARE_B
    const decades = { ...message(w, carol.did, meshB.did, 'dated 1996'), ts: Date.parse('1996-01-01') }
    await refusedAndHealthy(w, sealedWrite(w.roomA, meshB, decades, client), fromB, 'past-ts')
    // After the room's creation, but ten days before carol's first membership.
    const early = { ...message(w, carol.did, meshB.did, 'before I joined'), ts: Date.now() - 10 * DAY }
    await refusedAndHealthy(w, sealedWrite(w.roomA, meshB, early, client), fromB, 'past-ts')
    // A membership backdated by its own mesh does not open the past either.
    const member = {
      v: 1 as const,
      room: w.id,
      did: eve.did,
      mesh: meshB.did,
      meshName: 'beta',
      localId: 'eve',
      role: 'member' as const,
      tier: 4 as const,
      ts: Date.parse('1996-01-01'),
    }
    const mid = contentId(member)
    const post = { ...message(w, eve.did, meshB.did, 'eve in 1996'), ts: Date.parse('1996-01-02') }
    const pid = contentId(post)
    const both = craft(
      w.roomA,
      (doc) => {
        doc.transact(() => {
          doc.getMap('members').set(mid, member)
          doc.getMap('seals').set(sealKey('members', mid), makeSeal(meshB, w.id, 'members', mid, member))
          doc.getMap('messages').set(pid, post)
          doc.getMap('seals').set(sealKey('messages', pid), makeSeal(meshB, w.id, 'messages', pid, post))
        })
      },
      client,
    )
    await refusedAndHealthy(w, both, fromB, 'past-ts')
    // Inside the skew of carol's join: accepted.
    const skewed = { ...message(w, carol.did, meshB.did, 'clock a little behind'), ts: Date.now() - 30_000 }
    const ok = await w.roomA.applyUpdate(sealedWrite(w.roomA, meshB, skewed, client), fromB)
    assert.ok(ok.ok, ok.error?.message ?? '')
  })

  it('refuses a y-websocket client’s entry dated in the past, accepts one within the skew', async (t) => {
    const w = await world(t)
    const asBob: UpdateSender = { kind: 'client', did: bob.did, mesh: meshA.did }
    const before = content(w.roomA)
    const old = { ...message(w, bob.did, meshA.did, 'backdated by bob'), ts: Date.now() - 2 * 3_600_000 }
    const refused = await w.roomA.applyUpdate(
      craft(w.roomA, (doc) => doc.getMap('messages').set(contentId(old), old), 777_101),
      asBob,
    )
    assert.equal(refusalOf(refused)?.details.reason, 'past-ts')
    assert.deepEqual(lessBindingsOf(content(w.roomA), bob.did, before), before)
    const recent = { ...message(w, bob.did, meshA.did, 'a little behind'), ts: Date.now() - 30_000 }
    const accepted = await w.roomA.applyUpdate(
      craft(w.roomA, (doc) => doc.getMap('messages').set(contentId(recent), recent), 777_102),
      asBob,
    )
    assert.ok(accepted.ok, accepted.error?.message ?? '')
  })
})
