import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { createRotationRecord, Ed25519KeyPair, type RotationRecord } from '../../src/identity/index.ts'
import {
  contentId,
  type MessageEntry,
  makeSeal,
  type OwnKeys,
  type PeerKeys,
  type Room,
  refusalOf,
  type Seal,
  sealKey,
  signShare,
  verifyShare,
} from '../../src/rooms/index.ts'
import { makeBatch } from '../../src/rooms/seal-batch.ts' // batch15
import { MeshStore } from '../../src/store/index.ts'
import { tempDir } from '../fixtures/principals.ts'
import { alice, content, craft, dave, mallory, manager, meshA, meshB, meshC, sync } from './helpers.ts'

const T0 = 1_700_000_000_000
const MINUTE = 60_000

/** Mesh A's keys as its node holds them: a rotation swaps the current key and extends the history. */
function keyring() {
  const state = {
    current: meshA,
    own: { identity: meshA.did, keys: [meshA.did], rotations: [] } as OwnKeys,
    records: [] as RotationRecord[],
  }
  return {
    state,
    key: () => state.current,
    ownKeys: () => state.own,
    rotate(next: Ed25519KeyPair, ts: number): RotationRecord {
      const record = createRotationRecord(state.current, next, {
        identity: meshA.did,
        seq: state.records.length + 1,
        ts,
      })
      state.records = [...state.records, record]
      state.current = next
      state.own = { identity: meshA.did, keys: [...state.own.keys, next.did], rotations: state.records }
      return record
    },
  }
}

function boundClient(room: Room, mesh: string): number {
  for (const [k, v] of room.doc.getMap('clients')) if ((v as { mesh: string }).mesh === mesh) return Number(k)
  throw new Error('no bound client')
}

/** Alice's message sealed for mesh A by `key`, written by A's bound client. */
function forged(room: Room, key: Ed25519KeyPair, body: string, ts: number): Uint8Array {
  const entry: MessageEntry = {
    v: 1,
    room: room.id,
    author: alice.did,
    authorMesh: meshA.did,
    body,
    mentions: [],
    ts,
  }
  const id = contentId(entry)
  return craft(
    room,
    (doc) => {
      doc.getMap('messages').set(id, entry)
      doc
        .getMap('seals')
        .set(sealKey('messages', id), makeSeal(key, room.id, 'messages', id, entry, meshA.did))
    },
    boundClient(room, meshA.did),
  )
}

async function world(t: TestContext) {
  const clock = { now: T0 }
  const now = () => clock.now
  const ring = keyring()
  const store = await tempStoreAt(t)
  const a = await manager(t, meshA, { key: ring.key, ownKeys: ring.ownKeys, now, store: store.store })
  const peers: PeerKeys[] = [{ did: meshA.did, keys: [{ did: meshA.did }] }]
  const b = await manager(t, meshB, { peerKeys: async () => peers, now })
  const { id } = await a.create({ name: 'general', creator: alice.did })
  const first = await a.post(id, alice.did, 'before the rotation')
  await b.adopt({ id, homeMesh: meshA.did })
  const roomA = await a.load(id)
  const roomB = await b.load(id)
  assert.ok((await sync(roomA, roomB, meshA.did)).ok)
  return { clock, ring, a, b, id, first, roomA, roomB, peers, store }
}

/** The world after A rotated to a2 at T0 + 1 s, ten minutes on, with B knowing the rotation. */
async function rotatedAndKnown(t: TestContext) {
  const w = await world(t)
  const a2 = new Ed25519KeyPair(Buffer.alloc(32, 21))
  const record = w.ring.rotate(a2, T0 + 1000)
  w.clock.now = T0 + 10 * MINUTE
  w.peers[0] = { did: meshA.did, keys: [{ did: meshA.did }, { did: a2.did }], rotations: [record] }
  await w.b.meshKeys.refresh()
  return { w, a2 }
}

async function tempStoreAt(t: TestContext) {
  const dir = await tempDir(t)
  const path = join(dir, 'db')
  const store = new MeshStore({ path })
  await store.open()
  t.after(() => store.close())
  return { store, path }
}

describe('rooms across mesh key rotation', () => {
  it('names the identity, seals with the current key at once, and peers verify through the key history', async (t) => {
    const w = await world(t)
    const a2 = new Ed25519KeyPair(Buffer.alloc(32, 21))
    const record = w.ring.rotate(a2, T0 + 1000)
    w.clock.now = T0 + 10 * MINUTE
    assert.equal(w.a.ownMesh, meshA.did)
    const { id: after } = await w.a.post(w.id, alice.did, 'after the rotation')
    const seal = w.roomA.doc.getMap('seals').get(sealKey('messages', after)) as Seal
    assert.deepEqual({ mesh: seal.mesh, key: seal.key }, { mesh: meshA.did, key: a2.did })

    // Beta does not know the new key yet: refused, and nothing applied.
    const before = content(w.roomB)
    const unknown = await sync(w.roomA, w.roomB, meshA.did)
    assert.equal(refusalOf(unknown)?.details.reason, 'unknown-key')
    assert.deepEqual(content(w.roomB), before)
    // Its PeerBook learns the chain (the connection layer applied the announcement).
    w.peers[0] = { did: meshA.did, keys: [{ did: meshA.did }, { did: a2.did }], rotations: [record] }
    await w.b.meshKeys.refresh()
    assert.ok((await sync(w.roomA, w.roomB, meshA.did)).ok)
    assert.equal(w.roomB.message(after)?.body, 'after the rotation')
    assert.equal(w.b.meshKeys.identityOf(a2.did), meshA.did)

    // Gamma gets the room through beta and learns A's history later: old and new seals verify.
    const c = await manager(t, meshC, { now: () => w.clock.now })
    await c.adopt({ id: w.id, homeMesh: meshA.did })
    const roomC = await c.load(w.id)
    assert.equal(refusalOf(await sync(w.roomB, roomC, meshB.did))?.details.reason, 'unknown-key')
    assert.equal(await c.meshKeys.learn([record]), true)
    assert.equal(await c.meshKeys.learn([record]), false, 'learning twice is a no-op')
    assert.ok((await sync(w.roomB, roomC, meshB.did)).ok)
    assert.deepEqual(content(roomC), content(w.roomA))
    assert.equal(roomC.view(w.first.id)?.body, 'before the rotation')
    // Gamma's own member syncs back through beta to alpha.
    await c.join(w.id, dave.did)
    assert.ok((await sync(roomC, w.roomB, meshC.did)).ok)
    assert.ok((await sync(w.roomB, w.roomA, meshB.did)).ok)

    // Both ways still: beta's entries reach alpha, alpha's new ones reach beta.
    const { id: more } = await w.a.post(w.id, alice.did, 'still alpha')
    assert.ok((await sync(w.roomA, w.roomB, meshA.did)).ok)
    assert.ok(w.roomB.message(more))
  })

  it('refuses a seal for A by a key not in its history, and by a retired key for entries dated after its retirement', async (t) => {
    const { w, a2 } = await rotatedAndKnown(t)
    // Forged entries come through gamma, a relay that does not answer for alpha's client ids:
    // what it relays under them is dropped from the refused entry on, never held as a hole.
    const from = { kind: 'peer', meshDid: meshC.did } as const
    const sentinel = async () => {
      const { id } = await w.a.post(w.id, alice.did, `sentinel ${Math.random()}`)
      assert.ok((await sync(w.roomA, w.roomB, meshA.did)).ok)
      assert.ok(w.roomB.message(id), 'the sentinel arrives after the attack')
    }

    // Mallory's key claims to speak for alpha.
    const byMallory = await w.roomB.applyUpdate(
      forged(w.roomB, mallory, 'mallory as alpha', w.clock.now),
      from,
    )
    assert.equal(refusalOf(byMallory)?.details.reason, 'unknown-key')
    await sentinel()
    // The retired key, for an entry dated now: refused; dated before the retirement: its seal holds.
    const retired = await w.roomB.applyUpdate(forged(w.roomB, meshA, 'with the old key', w.clock.now), from)
    assert.equal(refusalOf(retired)?.details.reason, 'retired-key')
    await sentinel()
    const backdated = await w.roomB.applyUpdate(forged(w.roomB, meshA, 'from before', T0 + 500), from)
    assert.ok(backdated.ok, backdated.error?.message ?? '')
    // The current key seals for alpha today.
    const current = await w.roomB.applyUpdate(forged(w.roomB, a2, 'with the new key', w.clock.now), from)
    assert.ok(current.ok, current.error?.message ?? '')
  })

  it('a batch record by a retired key: its entries dated after the retirement refused, those before kept (batch15)', async (t) => {
    const { w } = await rotatedAndKnown(t)
    const client = 900_001
    const entry = (body: string, ts: number) => {
      const value = {
        v: 1 as const,
        room: w.id,
        author: alice.did,
        authorMesh: meshA.did,
        body,
        mentions: [],
        ts,
      }
      return { map: 'messages' as const, key: contentId(value), value }
    }
    const before = entry('batch from before', T0 + 500)
    const after = entry('batch after the retirement', w.clock.now)
    const sealed = [
      { map: 'clients' as const, key: String(client), value: { mesh: meshA.did, room: w.id } },
      before,
      after,
    ]
    const made = makeBatch(meshA, w.id, sealed, meshA.did) // the genesis key, retired at T0 + 1000
    const update = craft(
      w.roomB,
      (doc) => {
        doc.getMap('seals').set(made.recordKey, made.record)
        sealed.forEach((e, i) => {
          doc.getMap(e.map).set(e.key, e.value)
          doc.getMap('seals').set(sealKey(e.map, e.key), made.seals[i])
        })
      },
      client,
    )
    const result = await w.roomB.applyUpdate(update, { kind: 'peer', meshDid: meshC.did })
    assert.equal(refusalOf(result)?.details.reason, 'retired-key')
    assert.ok(w.roomB.message(before.key), 'dated before the retirement: kept')
    assert.equal(w.roomB.message(after.key), undefined)
  })

  it('learns only a history that agrees with what it knows', async (t) => {
    const w = await world(t)
    const a2 = new Ed25519KeyPair(Buffer.alloc(32, 21))
    const record = w.ring.rotate(a2, T0 + 1000)
    assert.equal(await w.b.meshKeys.learn([record]), true)
    // A fork signed by the (retired, perhaps stolen) genesis key: refused.
    const fork = createRotationRecord(meshA, mallory, { identity: meshA.did, seq: 1, ts: T0 + 2000 })
    await assert.rejects(w.b.meshKeys.learn([fork]), { code: 'MESH_SIGNATURE_MISMATCH' })
    assert.deepEqual(
      w.b.meshKeys.keysOf(meshA.did)?.map((k) => k.did),
      [meshA.did, a2.did],
    )
    // A chain for this mesh itself, or claiming another mesh's key, is refused too.
    const mine = createRotationRecord(meshB, mallory, { identity: meshB.did, seq: 1, ts: T0 })
    await assert.rejects(w.b.meshKeys.learn([mine]), { code: 'MESH_SIGNATURE_MISMATCH' })
    // A broken chain does not verify at all.
    await assert.rejects(w.b.meshKeys.learn([{ ...record, next: mallory.did }]))
  })

  it('after a restart on the new key, the rooms are still this mesh’s own and posting works', async (t) => {
    const w = await world(t)
    const a2 = new Ed25519KeyPair(Buffer.alloc(32, 21))
    w.ring.rotate(a2, T0 + 1000)
    w.clock.now = T0 + 10 * MINUTE
    await w.a.stop()
    const again = await manager(t, meshA, {
      store: w.store.store,
      key: w.ring.key,
      ownKeys: w.ring.ownKeys,
      now: () => w.clock.now,
    })
    assert.equal(again.ownMesh, meshA.did)
    assert.equal((await again.record(w.id)).homeMesh, again.ownMesh)
    const members = await again.members(w.id, alice.did)
    assert.equal(members.find((m) => m.did === alice.did)?.local, true)
    const { id } = await again.post(w.id, alice.did, 'after the restart')
    const room = await again.load(w.id)
    assert.equal((room.doc.getMap('seals').get(sealKey('messages', id)) as Seal).key, a2.did)
  })

  it('a share is sent by the stream’s key only, and the chains it carries must verify', () => {
    const a2 = new Ed25519KeyPair(Buffer.alloc(32, 21))
    const record = createRotationRecord(meshA, a2, { identity: meshA.did, seq: 1, ts: T0 })
    const fields = {
      room: 'room-0000000001',
      homeMesh: meshA.did,
      name: 'general',
      topic: '',
      to: meshB.did,
      act: 'x',
      decidedAt: T0,
    }
    const signed = signShare(a2, { ...fields, chains: [[record]] })
    // Only the stream's key may send it.
    assert.throws(
      () =>
        verifyShare(JSON.stringify(signed), {
          remote: meshA.did,
          remoteDids: [meshA.did],
          selfDids: [meshB.did],
          room: 'room-0000000001',
          now: T0,
        }),
      { code: 'MESH_FORBIDDEN' },
    )
    // A chain that does not verify is refused before the act is looked at.
    const broken = signShare(a2, { ...fields, chains: [[{ ...record, sigNext: record.sigPrevious }]] })
    assert.throws(
      () =>
        verifyShare(JSON.stringify(broken), {
          remote: a2.did,
          remoteDids: [meshA.did],
          selfDids: [meshB.did],
          room: 'room-0000000001',
          now: T0,
        }),
      { code: 'MESH_SIGNATURE_MISMATCH' },
    )
  })
})
