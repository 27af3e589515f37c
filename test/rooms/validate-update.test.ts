import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as Y from 'yjs'
import { contentId, type MessageEntry, makeSeal, refusalOf, sealKey } from '../../src/rooms/index.ts'
import {
  alice,
  boundWrite,
  carol,
  content,
  craft,
  dave,
  mallory,
  manager,
  meshA,
  meshB,
  meshC,
  replica,
  sync,
} from './helpers.ts'

import {
  aliceMessage,
  boundClient,
  fromB,
  message,
  refusedAndHealthy,
  SPARE_B,
  sealedWrite,
  within,
  world,
} from './validate-update-world.ts'

describe('validateUpdate: hostile peers', () => {
  it('accepts forwarded content by its origin seal, whoever forwards it', async (t) => {
    const w = await world(t)
    const c = await manager(t, meshC)
    await c.adopt({ id: w.id, homeMesh: meshA.did })
    const roomC = await c.load(w.id)
    // C has only B as a link: A's messages reach it through B, sealed by A.
    const result = await sync(w.roomB, roomC, meshB.did)
    assert.ok(result.ok, result.error?.message ?? '')
    assert.deepEqual(content(roomC), content(w.roomA))
    await c.join(w.id, dave.did)
    const { id } = await c.post(w.id, dave.did, 'from gamma')
    assert.ok((await sync(roomC, w.roomB, meshC.did)).ok)
    assert.ok((await sync(w.roomB, w.roomA, meshB.did)).ok)
    assert.equal(w.roomA.view(id)?.author, '@dave:gamma')
  })

  it('never applies a deletion of another mesh’s message', async (t) => {
    const w = await world(t)
    const target = aliceMessage(w.roomA)
    const before = content(w.roomA)
    const update = craft(w.roomA, (doc) => doc.getMap('messages').delete(target), SPARE_B)
    // A delete set is never applied, and is no refusal either: Yjs writes every hole a
    // replica holds into the delete set of each diff it makes (update-structs.ts).
    const result = await w.roomA.applyUpdate(update, fromB)
    assert.ok(result.ok, result.error?.message ?? '')
    assert.equal(result.ok.empty, true)
    assert.ok(w.roomA.message(target))
    assert.deepEqual(content(w.roomA), before)
  })

  it('refuses editing another mesh’s message, even re-sealed', async (t) => {
    const w = await world(t)
    const target = aliceMessage(w.roomA)
    const original = w.roomA.message(target) as MessageEntry
    const edited = { ...original, body: 'alice says something else' }
    const update = craft(
      w.roomA,
      (doc) => {
        doc.getMap('messages').set(target, edited)
        doc
          .getMap('seals')
          .set(sealKey('messages', target), makeSeal(meshB, w.id, 'messages', target, edited))
      },
      SPARE_B,
    )
    // Overwriting a key deletes the old item: the delete is not applied, the overwrite refused.
    await refusedAndHealthy(w, update, fromB, 'overwrite')
    assert.equal(w.roomA.message(target)?.body, original.body)
  })

  it('refuses a forged author: alice’s name sealed by beta, and a seal claiming alpha', async (t) => {
    const w = await world(t)
    const client = SPARE_B
    const forged = message(w, alice.did, meshA.did, 'alice never said this')
    await refusedAndHealthy(w, sealedWrite(w.roomA, meshB, forged, client), fromB, 'bad-seal')
    const claimed = message(w, alice.did, meshB.did, 'alice, as a beta member')
    await refusedAndHealthy(w, sealedWrite(w.roomA, meshB, claimed, client), fromB, 'not-member')
    // A seal that names alpha but was signed by beta.
    const id = contentId(forged)
    const fake = { ...makeSeal(meshB, w.id, 'messages', id, forged), mesh: meshA.did }
    const update = craft(
      w.roomA,
      (doc) => {
        doc.getMap('messages').set(id, forged)
        doc.getMap('seals').set(sealKey('messages', id), fake)
      },
      client,
    )
    await refusedAndHealthy(w, update, fromB, 'bad-seal')
    // No seal at all.
    const bare = message(w, carol.did, meshB.did, 'unsealed')
    const bareUpdate = craft(w.roomA, (doc) => doc.getMap('messages').set(contentId(bare), bare), client)
    await refusedAndHealthy(w, bareUpdate, fromB, 'missing-seal')
  })

  it('refuses a spoofed client id and an unbound one', async (t) => {
    const w = await world(t)
    const own = message(w, carol.did, meshB.did, 'carol, through alpha’s client id')
    await refusedAndHealthy(
      w,
      sealedWrite(w.roomA, meshB, own, boundClient(w.roomA, meshA.did)),
      fromB,
      'client-spoof',
    )
    const unbound = message(w, carol.did, meshB.did, 'from a client nobody bound')
    await refusedAndHealthy(w, sealedWrite(w.roomA, meshB, unbound, 4242), fromB, 'unbound-client')
  })

  it('refuses a wrong content id, a wrong room, a future timestamp and a foreign type', async (t) => {
    const w = await world(t)
    const client = SPARE_B
    const entry = message(w, carol.did, meshB.did, 'keyed wrong')
    const badKey = craft(
      w.roomA,
      (doc) => {
        doc.getMap('messages').set('k'.repeat(43), entry)
        doc
          .getMap('seals')
          .set(sealKey('messages', 'k'.repeat(43)), makeSeal(meshB, w.id, 'messages', 'k'.repeat(43), entry))
      },
      client,
    )
    await refusedAndHealthy(w, badKey, fromB, 'bad-key')
    const other = { ...message(w, carol.did, meshB.did, 'other room'), room: 'someotherroom' }
    await refusedAndHealthy(w, sealedWrite(w.roomA, meshB, other, client), fromB, 'wrong-room')
    const future = { ...message(w, carol.did, meshB.did, 'from the future'), ts: Date.now() + 120_000 }
    await refusedAndHealthy(w, sealedWrite(w.roomA, meshB, future, client), fromB, 'future-ts')
    const typed = craft(w.roomA, (doc) => doc.getText('evil').insert(0, 'x'), client)
    await refusedAndHealthy(w, typed, fromB, 'foreign-type')
    const nested = craft(w.roomA, (doc) => doc.getMap('messages').set('n'.repeat(43), new Y.Map()), client)
    await refusedAndHealthy(w, nested, fromB, 'not-json')
  })

  it('refuses a foreign mesh promoting its member or redacting another’s message', async (t) => {
    const w = await world(t)
    const client = SPARE_B
    const promo = {
      v: 1 as const,
      room: w.id,
      did: mallory.did,
      mesh: meshB.did,
      meshName: 'beta',
      localId: 'mallory',
      role: 'owner' as const,
      tier: 1 as const,
      ts: Date.now(),
    }
    const pid = contentId(promo)
    const promote = craft(
      w.roomA,
      (doc) => {
        doc.getMap('members').set(pid, promo)
        doc.getMap('seals').set(sealKey('members', pid), makeSeal(meshB, w.id, 'members', pid, promo))
      },
      client,
    )
    await refusedAndHealthy(w, promote, fromB, 'member-rules')
    const redaction = {
      v: 1 as const,
      room: w.id,
      message: aliceMessage(w.roomA),
      author: mallory.did,
      authorMesh: meshB.did,
      ts: Date.now(),
    }
    const rid = contentId(redaction)
    const redact = craft(
      w.roomA,
      (doc) => {
        doc.getMap('redactions').set(rid, redaction)
        doc
          .getMap('seals')
          .set(sealKey('redactions', rid), makeSeal(meshB, w.id, 'redactions', rid, redaction))
      },
      client,
    )
    await refusedAndHealthy(w, redact, fromB, 'not-author-or-moderator')
  })

  it('refuses an oversized update', async (t) => {
    const w = await world(t)
    const big = message(w, carol.did, meshB.did, 'x'.repeat(8000))
    const updates: Uint8Array[] = []
    const doc = new Y.Doc()
    Y.applyUpdate(doc, Y.encodeStateAsUpdate(w.roomA.doc))
    doc.clientID = SPARE_B
    const before = Y.encodeStateVector(doc)
    doc.transact(() => {
      for (let i = 0; i < 40; i++) {
        const e = { ...big, body: `${i}${big.body}` }
        const id = contentId(e)
        doc.getMap('messages').set(id, e)
        doc.getMap('seals').set(sealKey('messages', id), makeSeal(meshB, w.id, 'messages', id, e))
      }
    })
    updates.push(Y.encodeStateAsUpdate(doc, before))
    const result = await w.roomA.applyUpdate(updates[0] as Uint8Array, fromB)
    assert.equal(result.error?.code, 'MESH_TOO_LARGE')
    await refusedAndHealthy(w, new Uint8Array(300 * 1024), fromB, 'too-large')
  })

  it('refuses an update that throws halfway and one with missing dependencies', async (t) => {
    const w = await world(t)
    const client = SPARE_B
    const valid = sealedWrite(w.roomA, meshB, message(w, carol.did, meshB.did, 'truncate me'), client)
    await refusedAndHealthy(w, valid.subarray(0, Math.floor(valid.byteLength / 2)), fromB, 'malformed')
    await refusedAndHealthy(w, Uint8Array.of(1, 1, 200, 200, 200, 200, 15, 9, 9), fromB, 'malformed')
    // Two writes by one client; only the second is sent.
    const doc = new Y.Doc()
    Y.applyUpdate(doc, Y.encodeStateAsUpdate(w.roomA.doc))
    doc.clientID = client
    const write = (body: string) => {
      const e = message(w, carol.did, meshB.did, body)
      const id = contentId(e)
      const sv = Y.encodeStateVector(doc)
      doc.transact(() => {
        doc.getMap('messages').set(id, e)
        doc.getMap('seals').set(sealKey('messages', id), makeSeal(meshB, w.id, 'messages', id, e))
      })
      return Y.encodeStateAsUpdate(doc, sv)
    }
    write('first')
    const second = write('second')
    await refusedAndHealthy(w, second, fromB, 'incomplete')
    // A replay of what A already has is a no-op, not a refusal.
    const replay = Y.encodeStateAsUpdate(w.roomA.doc)
    const r = await w.roomA.applyUpdate(replay, fromB)
    assert.equal(r.ok?.empty, true)
  })

  it('survives 2,000 seeded malformed and mutated updates (no crash, no hang, bounded memory)', async (t) => {
    const w = await world(t)
    const client = SPARE_B
    // The legitimate seed comes from another replica of mesh B, under its own client id
    // (bound in the same update). Under the client id of B's live doc, it would take
    // clocks that B's doc later fills with its own writes: A would then see B's next
    // post as a replay (nothing new, applied as a no-op) and never show it. Only B's
    // key can make that fork of B's own client, so it is B's mistake, not an attack.
    const seedClient = 313_131
    assert.notEqual(seedClient, w.roomB.doc.clientID)
    assert.equal(w.roomA.doc.getMap('clients').has(String(seedClient)), false)
    const seedOne = message(w, carol.did, meshB.did, 'seed one')
    const seeds = [
      boundWrite(w.roomA, meshB, [seedOne], seedClient),
      Y.encodeStateAsUpdate(w.roomB.doc),
      craft(w.roomA, (doc) => doc.getMap('messages').delete(aliceMessage(w.roomA)), client),
    ]
    let state = 0x2f6b1d3
    const rand = (n: number) => {
      state ^= state << 13
      state ^= state >>> 17
      state ^= state << 5
      return (state >>> 0) % n
    }
    // seeds[0] is a legitimate write: a mutation may keep some of it (its binding, its
    // message) and lose the rest, which then holds a hole (B answers for its own client
    // ids). Nothing may appear in A that is not part of it.
    const legitimate = replica(w.roomA)
    Y.applyUpdate(legitimate, seeds[0] as Uint8Array)
    const allowed = content(legitimate)
    const before = content(w.roomA)
    global.gc?.()
    const heap = process.memoryUsage().heapUsed
    const started = Date.now()
    let refused = 0
    for (let i = 0; i < 2000; i++) {
      const seed = seeds[rand(seeds.length)] as Uint8Array
      let bytes: Uint8Array
      switch (rand(4)) {
        case 0: // flip bytes
          bytes = Uint8Array.from(seed)
          for (let k = 0; k <= rand(6); k++) bytes[rand(bytes.length)] = rand(256)
          break
        case 1: // truncate
          bytes = seed.subarray(0, rand(seed.length))
          break
        case 2: // random bytes
          bytes = Uint8Array.from({ length: rand(200) }, () => rand(256))
          break
        default: // splice two seeds
          bytes = Uint8Array.from([
            ...seed.subarray(0, rand(seed.length)),
            ...(seeds[rand(seeds.length)] as Uint8Array).subarray(rand(50)),
          ])
      }
      const result = await w.roomA.applyUpdate(bytes, fromB)
      if (refusalOf(result) !== undefined) refused++
      assert.ok(within(content(w.roomA), allowed), 'only parts of the legitimate write may pass')
    }
    const elapsed = Date.now() - started
    global.gc?.()
    const grown = process.memoryUsage().heapUsed - heap
    assert.ok(refused > 1500, `${refused} refused`)
    assert.ok(elapsed < 60_000, `took ${elapsed} ms`)
    assert.ok(grown < 64 * 1024 * 1024, `heap grew by ${grown} bytes`)
    assert.ok(within(before, content(w.roomA)), 'nothing was lost')
    // The legitimate write applies, or is a no-op where a mutation took its place first:
    // either way B's later writes arrive.
    const seeded = await w.roomA.applyUpdate(seeds[0] as Uint8Array, fromB)
    assert.ok(seeded.ok, seeded.error?.message ?? '')
    const sentinel = await w.b.post(w.id, carol.did, 'after the fuzz')
    const synced = await sync(w.roomB, w.roomA, meshB.did)
    assert.ok(synced.ok, synced.error?.message ?? '')
    assert.equal(synced.ok.empty, false)
    assert.ok(w.roomA.message(sentinel.id))
  })
})
