import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import * as Y from 'yjs'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import {
  contentId,
  type MessageEntry,
  makeSeal,
  type Room,
  type RoomManager,
  refusalOf,
  sealKey,
  type UpdateSender,
  validateUpdate,
} from '../../src/rooms/index.ts'
import {
  alice,
  bob,
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
  sharedRoom,
  sync,
} from './helpers.ts'

interface World {
  a: RoomManager
  b: RoomManager
  roomA: Room
  roomB: Room
  id: string
  rejections: Array<{ room: string; reason: unknown }>
}

/** Mesh A homes a room; mesh B (carol, and mallory gone rogue) participates; both replicas in sync. */
async function world(t: TestContext): Promise<World> {
  const rejections: World['rejections'] = []
  const w = await sharedRoom(t, {
    a: { onRejected: (r) => rejections.push({ room: r.room, reason: r.error.details.reason }) },
    before: (a, id) => a.post(id, alice.did, 'first, by alice'),
  })
  await w.b.post(w.id, carol.did, 'hello from beta')
  assert.ok((await sync(w.roomB, w.roomA, meshB.did)).ok)
  await bindSpare(w.roomA, w.roomB)
  return { ...w, rejections }
}

/**
 * A second writer of beta's, apart from beta's node: the attacks write under it, so
 * that a refused entry's hole is never where beta's honest node writes next.
 */
async function bindSpare(roomA: Room, roomB: Room): Promise<void> {
  const binding = { mesh: meshB.did, room: roomA.id }
  const key = String(SPARE_B)
  const spare = craft(
    roomA,
    (doc) =>
      doc.transact(() => {
        doc.getMap('clients').set(key, binding)
        doc.getMap('seals').set(sealKey('clients', key), makeSeal(meshB, roomA.id, 'clients', key, binding))
      }),
    SPARE_B,
  )
  assert.ok((await roomA.applyUpdate(spare, { kind: 'peer', meshDid: meshB.did })).ok)
  assert.ok((await sync(roomA, roomB, meshA.did)).ok)
  assert.deepEqual(content(roomA), content(roomB))
}

/** Every entry of `sub` is in `sup`, with the same value. */
function within(sub: Record<string, unknown>, sup: Record<string, unknown>): boolean {
  for (const [map, entries] of Object.entries(sub)) {
    const of = (sup[map] ?? {}) as Record<string, unknown>
    for (const [key, value] of Object.entries(entries as Record<string, unknown>))
      if (JSON.stringify(of[key]) !== JSON.stringify(value)) return false
  }
  return true
}

/**
 * `after` less the client bindings of `did` (and their seals) that `before` lacks: a
 * client whose write is refused still has its id bound, to it, by the hole it leaves.
 */
function lessBindingsOf(
  after: Record<string, unknown>,
  did: string,
  before: Record<string, unknown>,
): Record<string, unknown> {
  const clients = { ...(after.clients as Record<string, { did?: string }>) }
  const seals = { ...(after.seals as Record<string, unknown>) }
  const had = before.clients as Record<string, unknown>
  for (const [id, binding] of Object.entries(clients)) {
    if (binding.did !== did || id in had) continue
    delete clients[id]
    delete seals[`clients/${id}`]
  }
  return { ...after, clients, seals }
}

/** Beta's second writer (see `world`). */
const SPARE_B = 555_555

const fromB: UpdateSender = { kind: 'peer', meshDid: meshB.did }

function aliceMessage(room: Room): string {
  for (const [id, v] of room.doc.getMap('messages')) if ((v as MessageEntry).author === alice.did) return id
  throw new Error('no message by alice')
}

/**
 * Whatever `sv` lacks of `doc` is holes only (GC structs): a refused entry's place, no
 * content (update-structs.ts).
 */
function onlyHolesSince(doc: Y.Doc, sv: Uint8Array): boolean {
  const { structs } = Y.decodeUpdate(Y.encodeStateAsUpdate(doc, sv)) as { structs: unknown[] }
  return structs.every((s) => s instanceof Y.GC)
}

/**
 * The attack is refused with `reason` (whole, or the part that carries it), leaves A's
 * content as it was — at most a hole where a refused entry of the sender's own client
 * was — and an honest sentinel still gets through.
 */
async function refusedAndHealthy(
  w: World,
  update: Uint8Array,
  sender: UpdateSender,
  reason: string | string[],
) {
  const before = content(w.roomA)
  const sv = Y.encodeStateVector(w.roomA.doc)
  const result = await w.roomA.applyUpdate(update, sender)
  const refusal = refusalOf(result)
  assert.ok(refusal, `expected a refusal (${reason})`)
  assert.ok(
    [reason].flat().includes(refusal.details.reason as string),
    `${refusal.details.reason}: ${refusal.message}`,
  )
  assert.deepEqual(content(w.roomA), before)
  assert.ok(onlyHolesSince(w.roomA.doc, sv), 'nothing but holes added')
  assert.equal(w.roomA.doc.store.pendingStructs, null)
  const sentinel = await w.b.post(w.id, carol.did, `sentinel ${Math.random()}`)
  const synced = await sync(w.roomB, w.roomA, meshB.did)
  assert.ok(synced.ok, synced.error?.message ?? '')
  assert.ok(w.roomA.message(sentinel.id), 'the sentinel arrives after the attack')
  assert.deepEqual(content(w.roomA), content(w.roomB), 'honest replicas identical')
}

/** A message sealed by mesh `key`, as written through a replica with the given client id. */
function sealedWrite(room: Room, key: typeof meshB, entry: MessageEntry, clientID?: number) {
  const id = contentId(entry)
  return craft(
    room,
    (doc) => {
      doc.transact(() => {
        doc.getMap('messages').set(id, entry)
        doc.getMap('seals').set(sealKey('messages', id), makeSeal(key, room.id, 'messages', id, entry))
      })
    },
    clientID,
  )
}

function boundClient(room: Room, mesh: string): number {
  for (const [k, v] of room.doc.getMap('clients')) if ((v as { mesh: string }).mesh === mesh) return Number(k)
  throw new Error('no bound client')
}

function message(w: World, author: string, authorMesh: string, body: string): MessageEntry {
  return { v: 1, room: w.id, author, authorMesh, body, mentions: [], ts: Date.now() }
}

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
    const ro = {
      v: 1 as const,
      room: w.id,
      did: bob.did,
      mesh: meshA.did,
      meshName: 'alpha',
      localId: 'bob',
      role: 'read-only' as const,
      tier: 4 as const,
      ts: Date.now() + 1,
    }
    await room.write([{ map: 'members', key: contentId(ro), value: ro }])
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
