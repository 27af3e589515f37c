import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import {
  contentId,
  type MemberEntry,
  type MessageEntry,
  makeSeal,
  type Room,
  type RoomManager,
  refusalOf,
  sealKey,
  type UpdateSender,
} from '../../src/rooms/index.ts'
import {
  alice,
  bob,
  boundWrite,
  carol,
  craft,
  entries,
  mallory,
  meshA,
  meshB,
  sharedRoom,
  sync,
} from './helpers.ts'

interface World {
  a: RoomManager
  b: RoomManager
  roomA: Room
  roomB: Room
  id: string
}

const fromB: UpdateSender = { kind: 'peer', meshDid: meshB.did }

/** Mesh A (alice, bob) homes a room; mesh B's carol and mallory are in it; replicas in sync. */
async function world(t: TestContext): Promise<World> {
  const w = await sharedRoom(t)
  await w.b.post(w.id, carol.did, 'hello from carol')
  assert.ok((await sync(w.roomB, w.roomA, meshB.did)).ok)
  return w
}

/**
 * What a replica of mesh B that missed carol's removal sends: her post, sealed by B,
 * written under a fresh client id that the same update binds to B.
 */
function staleWrite(room: Room, entry: MessageEntry, clientID: number): Uint8Array {
  return boundWrite(room, meshB, [entry], clientID)
}

function carolSays(w: World, body: string, ts: number): MessageEntry {
  return { v: 1, room: w.id, author: carol.did, authorMesh: meshB.did, body, mentions: [], ts }
}

function endOf(room: Room, did: string): MemberEntry | undefined {
  for (const v of room.doc.getMap('members').values())
    if ((v as MemberEntry).did === did && (v as MemberEntry).role === 'removed') return v as MemberEntry
  return undefined
}

/** `did`'s ending at `from` is dated after post `id`; `to` takes both in one update and the post stands. */
async function endingFollows(from: Room, to: Room, fromMesh: string, did: string, id: string, body: string) {
  const ended = endOf(from, did) as MemberEntry
  assert.ok((from.message(id) as MessageEntry).ts < ended.ts, 'the ending is dated after the post')
  const result = await sync(from, to, fromMesh)
  assert.ok(result.ok, result.error?.message ?? '')
  assert.equal(to.view(id)?.body, body)
}

describe('room memberships ended by the member’s mesh', () => {
  it('refuses a post made after the membership ended, through a replica that missed it; a sentinel still passes', async (t) => {
    const w = await world(t)
    assert.deepEqual(await w.b.endMemberships(carol.did), [w.id])
    assert.deepEqual(await w.b.endMemberships(carol.did), [], 'a second removal ends nothing more')
    assert.ok((await sync(w.roomB, w.roomA, meshB.did)).ok, 'the ending entry, sealed by B, passes at A')
    const ended = endOf(w.roomA, carol.did)
    assert.ok(ended)
    assert.equal(w.roomA.member(carol.did), undefined)

    const before = entries(w.roomA)
    const attack = staleWrite(w.roomA, carolSays(w, 'still here', ended.ts + 5), 777_001)
    const result = await w.roomA.applyUpdate(attack, fromB)
    assert.equal(refusalOf(result)?.code, 'MESH_UPDATE_REJECTED')
    assert.equal(refusalOf(result)?.details.reason, 'membership-ended')
    assert.deepEqual(entries(w.roomA), before, 'nothing of the refused entry applied')

    // Sentinel: an honest post of B after the attack goes through.
    const sentinel = await w.b.post(w.id, mallory.did, 'sentinel after the attack')
    assert.ok((await sync(w.roomB, w.roomA, meshB.did)).ok)
    assert.ok(w.roomA.message(sentinel.id))
    // Alike but for the stale replica's client id, bound at A to B by the hole it left.
    assert.deepEqual(entries(w.roomA), entries(w.roomB))
  })

  it('takes a copy of a refused post that comes after its hole for a no-op: not held, not refused again', async (t) => {
    // A three-mesh room (room-removal.test.ts): the hole one replica leaves travels on and may
    // reach the next replica before the post itself does; the post then brings nothing new.
    const w = await world(t)
    await w.b.endMemberships(carol.did)
    assert.ok((await sync(w.roomB, w.roomA, meshB.did)).ok)
    const ended = endOf(w.roomA, carol.did) as MemberEntry
    const post = carolSays(w, 'said twice', ended.ts + 5)
    const attack = staleWrite(w.roomA, post, 777_009)
    assert.equal(refusalOf(await w.roomA.applyUpdate(attack, fromB))?.details.reason, 'membership-ended')
    const rejected = w.a.stats.rejected
    const again = await w.roomA.applyUpdate(attack, fromB)
    assert.equal(refusalOf(again), undefined)
    assert.equal(again.ok?.empty, true)
    assert.equal(w.a.stats.rejected, rejected)
    assert.equal(w.roomA.message(contentId(post)), undefined)
  })

  it('hides a late post that arrived before the ending, wherever the ending arrives later', async (t) => {
    const w = await world(t)
    await w.b.endMemberships(carol.did)
    const ended = endOf(w.roomB, carol.did) as MemberEntry
    // A gets the stale replica's post first (it does not know of the ending yet) …
    const late = carolSays(w, 'posted after my removal', ended.ts + 5)
    assert.ok((await w.roomA.applyUpdate(staleWrite(w.roomA, late, 777_002), fromB)).ok)
    assert.equal(w.roomA.view(contentId(late))?.redacted, undefined)
    // … then the ending: the post reads as refused (hidden) there too.
    assert.ok((await sync(w.roomB, w.roomA, meshB.did)).ok)
    const view = w.roomA.view(contentId(late))
    assert.equal(view?.redacted, true)
    assert.equal(view?.body, '')
  })

  it('keeps what the member wrote before its membership ended, backfilled after the ending', async (t) => {
    const w = await world(t)
    const early = await w.b.post(w.id, carol.did, 'written while a member')
    await w.b.endMemberships(carol.did)
    // A receives the post and the ending in one update: the post stands.
    await endingFollows(w.roomB, w.roomA, meshB.did, carol.did, early.id, 'written while a member')
  })

  it('dates a removal after a post of the same turn (both reach the room together at its end)', async (t) => {
    const w = await world(t)
    // The post is queued for the end of the turn when the removal is dated (issue 15, batch15).
    const [posted] = await Promise.all([
      w.a.post(w.id, bob.did, 'said just before the removal'),
      w.a.removeMember(w.id, alice.did, bob.did),
    ])
    // B takes both from one update: the post stands, the member is gone.
    await endingFollows(w.roomA, w.roomB, meshA.did, bob.did, posted.id, 'said just before the removal')
    assert.equal(w.roomB.member(bob.did), undefined)
  })

  it('refuses, on the home mesh, every local act of an ended member', async (t) => {
    const w = await world(t)
    await w.a.post(w.id, bob.did, 'bob was here')
    assert.deepEqual(await w.a.endMemberships(bob.did), [w.id])
    await assert.rejects(w.a.post(w.id, bob.did, 'again'), { code: 'MESH_FORBIDDEN' })
    await assert.rejects(w.a.join(w.id, bob.did), { code: 'MESH_FORBIDDEN' })
    await assert.rejects(w.a.messages(w.id, bob.did), { code: 'MESH_FORBIDDEN' })
    const members = await w.a.members(w.id, alice.did)
    assert.ok(!members.some((m) => m.did === bob.did))
    // B takes the home mesh's ending too.
    assert.ok((await sync(w.roomA, w.roomB, meshA.did)).ok)
    assert.equal(w.roomB.member(bob.did), undefined)
  })

  it('refuses an ending of another mesh’s member', async (t) => {
    const w = await world(t)
    // B claims to end alice (a member from A): the entry names B as her mesh, which ends nothing of A's alice.
    const forged: MemberEntry = {
      v: 1,
      room: w.id,
      did: alice.did,
      mesh: meshA.did,
      meshName: 'alpha',
      localId: 'alice',
      role: 'removed',
      tier: 4,
      ts: Date.now(),
    }
    const key = contentId(forged)
    const client = [...w.roomA.doc.getMap('clients').entries()].find(
      ([, v]) => (v as { mesh: string }).mesh === meshB.did,
    )?.[0] as string
    const update = craft(
      w.roomA,
      (doc) => {
        doc.getMap('members').set(key, forged)
        doc.getMap('seals').set(sealKey('members', key), makeSeal(meshB, w.id, 'members', key, forged))
      },
      Number(client),
    )
    const result = await w.roomA.applyUpdate(update, fromB)
    assert.equal(refusalOf(result)?.details.reason, 'member-rules')
    assert.ok(w.roomA.member(alice.did))
    const sentinel = await w.a.post(w.id, alice.did, 'alice still posts')
    assert.ok(w.roomA.message(sentinel.id))
  })
})

describe('room roles', () => {
  it('lets the owner and moderators set roles, sealed by the home mesh; refuses anyone else', async (t) => {
    const w = await world(t)
    await assert.rejects(w.a.setRole(w.id, bob.did, carol.did, 'read-only'), {
      code: 'MESH_FORBIDDEN',
    })
    const bobMod = await w.a.setRole(w.id, alice.did, bob.did, 'moderator')
    assert.equal(bobMod.role, 'moderator')
    // A moderator neither grants nor takes the owner role.
    await assert.rejects(w.a.setRole(w.id, bob.did, bob.did, 'owner'), { code: 'MESH_FORBIDDEN' })
    await assert.rejects(w.a.setRole(w.id, bob.did, alice.did, 'member'), { code: 'MESH_FORBIDDEN' })
    await assert.rejects(w.a.setRole(w.id, bob.did, meshB.did, 'member'), { code: 'MESH_NOT_FOUND' })
    const carolRo = await w.a.setRole(w.id, bob.did, carol.did, 'read-only')
    assert.equal(carolRo.role, 'read-only')
    assert.equal(carolRo.tier, 4)
    // B takes the home mesh's decision, and carol can no longer post there.
    assert.ok((await sync(w.roomA, w.roomB, meshA.did)).ok)
    assert.equal(w.roomB.member(carol.did)?.role, 'read-only')
    await assert.rejects(w.b.post(w.id, carol.did, 'muted?'), { code: 'MESH_FORBIDDEN' })
    // A participating mesh sets no roles in a room homed elsewhere beyond its own members' member/read-only.
    await assert.rejects(w.b.setRole(w.id, carol.did, mallory.did, 'read-only'), { code: 'MESH_FORBIDDEN' })
  })

  it('refuses a role change sealed by a mesh that is not the home mesh (a peer promoting its member)', async (t) => {
    const w = await world(t)
    const promo: MemberEntry = {
      ...(w.roomA.member(mallory.did) as MemberEntry),
      role: 'moderator',
      ts: Date.now(),
    }
    const key = contentId(promo)
    const client = [...w.roomA.doc.getMap('clients').entries()].find(
      ([, v]) => (v as { mesh: string }).mesh === meshB.did,
    )?.[0] as string
    const before = entries(w.roomA)
    const update = craft(
      w.roomA,
      (doc) => {
        doc.getMap('members').set(key, promo)
        doc.getMap('seals').set(sealKey('members', key), makeSeal(meshB, w.id, 'members', key, promo))
      },
      Number(client),
    )
    const result = await w.roomA.applyUpdate(update, fromB)
    assert.equal(refusalOf(result)?.details.reason, 'member-rules')
    // Refused for good: at most a hole where B's client wrote it, no entry.
    assert.deepEqual(entries(w.roomA), before)
    assert.equal(w.roomA.member(mallory.did)?.role, 'member')
  })
})
