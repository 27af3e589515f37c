import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { issueMembershipCredential } from '../../src/auth/index.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import {
  contentId,
  type MemberEntry,
  makeSeal,
  type Room,
  type RoomManager,
  refusalOf,
  sealKey,
  type UpdateSender,
} from '../../src/rooms/index.ts'
import { credentialProblem } from '../../src/rooms/member-credential.ts'
import {
  alice,
  bob,
  carol,
  craft,
  entries,
  mallory,
  manager,
  meshA,
  meshB,
  meshC,
  sharedRoom,
  sync,
} from './helpers.ts'

/**
 * Kinds across meshes (issue 12): a member entry carries its member's membership
 * credential, which every replica checks when the entry arrives; a peer's room member
 * view shows each member's kind. Two RoomManagers, updates carried by hand.
 */

const KINDS: Record<string, 'human' | 'agent'> = {
  [alice.did]: 'human',
  [bob.did]: 'agent',
  [carol.did]: 'human',
  [mallory.did]: 'agent',
}
const NAMES: Record<string, string> = { [meshA.did]: 'alpha', [meshB.did]: 'beta', [meshC.did]: 'gamma' }
const fromB: UpdateSender = { kind: 'peer', meshDid: meshB.did }

function credential(
  mesh: Ed25519KeyPair,
  did: string,
  kind: 'human' | 'agent' = KINDS[did] ?? 'human',
  options: { now?: number; ttlSeconds?: number } = {},
): Promise<string> {
  const claims = { id: did, kind, role: kind === 'agent' ? 'agent' : 'user', tier: 4 as const }
  return issueMembershipCredential(
    mesh,
    { ...claims, mesh: mesh.did, meshName: NAMES[mesh.did] ?? 'm' },
    options,
  )
}

/** Each mesh's own principals, with credentials of that mesh. */
const credentialsOf = (mesh: Ed25519KeyPair) => (did: string) => credential(mesh, did)

interface World {
  a: RoomManager
  b: RoomManager
  roomA: Room
  roomB: Room
  id: string
}

async function world(t: TestContext, bOptions: Parameters<typeof manager>[2] = {}): Promise<World> {
  const w = await sharedRoom(t, {
    a: { credentialOf: credentialsOf(meshA) },
    b: { credentialOf: credentialsOf(meshB), ...bOptions },
  })
  assert.ok((await sync(w.roomB, w.roomA, meshB.did)).ok)
  return w
}

/** A member entry of mesh B's, sealed by B under a client id the same update binds to B. */
function memberUpdate(room: Room, entry: MemberEntry, clientID: number): Uint8Array {
  const key = contentId(entry)
  const client = String(clientID)
  const binding = { mesh: meshB.did, room: room.id }
  return craft(
    room,
    (doc) =>
      doc.transact(() => {
        doc.getMap('clients').set(client, binding)
        doc
          .getMap('seals')
          .set(sealKey('clients', client), makeSeal(meshB, room.id, 'clients', client, binding))
        doc.getMap('members').set(key, entry)
        doc.getMap('seals').set(sealKey('members', key), makeSeal(meshB, room.id, 'members', key, entry))
      }),
    clientID,
  )
}

const kinds = (members: Array<{ name: string; kind?: string; tier: number }>) =>
  Object.fromEntries(members.map((m) => [m.name, [m.kind ?? 'unknown', m.tier]]))

describe('kinds across meshes: member entries carry their membership credential', () => {
  it('shows every member’s kind on both meshes, the peer’s members at tier 4', async (t) => {
    const w = await world(t)
    assert.deepEqual(kinds(await w.a.members(w.id, alice.did)), {
      '@alice': ['human', 1],
      '@bob': ['agent', 4],
      '@carol:beta': ['human', 4],
      '@mallory:beta': ['agent', 4],
    })
    assert.deepEqual(kinds(await w.b.members(w.id, carol.did)), {
      '@alice:alpha': ['human', 1],
      '@bob:alpha': ['agent', 4],
      '@carol': ['human', 4],
      '@mallory': ['agent', 4],
    })
    // The credential travels in the entry, as its mesh issued it.
    const entry = w.roomA.member(carol.did) as MemberEntry
    assert.equal(typeof entry.vc, 'string')
    assert.equal(entry.mesh, meshB.did)
  })

  it('refuses a member entry whose credential is forged, of another mesh, for another member, expired, malformed or oversized', async (t) => {
    const w = await world(t)
    const erin = Ed25519KeyPair.generate()
    const base: MemberEntry = {
      v: 1,
      room: w.id,
      did: erin.did,
      mesh: meshB.did,
      meshName: 'beta',
      localId: 'erin',
      role: 'member',
      tier: 4,
      ts: Date.now(),
    }
    const agent = await credential(meshB, erin.did, 'agent')
    const [h, , s] = agent.split('.')
    const claimed = JSON.parse(Buffer.from(agent.split('.')[1] as string, 'base64url').toString('utf8'))
    claimed.vc.credentialSubject.kind = 'human'
    const forged = `${h}.${Buffer.from(JSON.stringify(claimed)).toString('base64url')}.${s}`
    const cases: Array<[string, string, string]> = [
      ['forged (kind changed after signing)', forged, 'signature'],
      ['another mesh’s', await credential(meshC, erin.did, 'human'), 'issuer'],
      ['the mesh’s own, for another member', await credential(meshB, carol.did, 'human'), 'subject'],
      [
        'expired at the entry’s date',
        await credential(meshB, erin.did, 'human', { now: Date.now() - 10 * 86_400_000, ttlSeconds: 3600 }),
        'expired',
      ],
      [
        'not yet valid at the entry’s date',
        await credential(meshB, erin.did, 'human', { now: Date.now() + 3_600_000 }),
        'expired',
      ],
      ['malformed', 'a.b.c', 'malformed'],
    ]
    const before = entries(w.roomA)
    let client = 880_001
    for (const [what, vc, problem] of cases) {
      const result = await w.roomA.applyUpdate(memberUpdate(w.roomA, { ...base, vc }, client++), fromB)
      assert.equal(refusalOf(result)?.code, 'MESH_UPDATE_REJECTED', what)
      assert.equal(refusalOf(result)?.details.reason, 'member-credential', what)
      assert.equal(refusalOf(result)?.details.vc, problem, what)
    }
    const huge = await w.roomA.applyUpdate(
      memberUpdate(w.roomA, { ...base, vc: `a.${'b'.repeat(5000)}.c` }, client++),
      fromB,
    )
    assert.equal(refusalOf(huge)?.details.reason, 'bad-shape', 'an oversized credential')
    assert.deepEqual(entries(w.roomA), before, 'nothing of the refused entries applied')
    assert.equal(w.roomA.member(erin.did), undefined)

    // Sentinel: the same entry with its honest credential passes, and shows its kind.
    const ok = await w.roomA.applyUpdate(memberUpdate(w.roomA, { ...base, vc: agent }, client++), fromB)
    assert.ok(ok.ok, String(ok.error))
    const listed = (await w.a.members(w.id, alice.did)).find((m) => m.did === erin.did)
    assert.equal(listed?.kind, 'agent')
  })

  it('refuses, at the writing mesh itself, to seal a member with a credential of another mesh (MESH_VC_INVALID)', async (t) => {
    const a = await manager(t, meshA, { credentialOf: credentialsOf(meshA) })
    const b = await manager(t, meshB, { credentialOf: (did) => credential(meshC, did) })
    const { id } = await a.create({ name: 'general', creator: alice.did })
    await b.adopt({ id, homeMesh: meshA.did })
    assert.ok((await sync(await a.load(id), await b.load(id), meshA.did)).ok)
    await assert.rejects(
      b.join(id, carol.did),
      (err: { code?: string; details?: Record<string, unknown> }) => {
        assert.deepEqual(
          [err.code, err.details?.reason, err.details?.vc],
          ['MESH_VC_INVALID', 'member-credential', 'issuer'],
        )
        return true
      },
    )
    assert.equal((await b.load(id)).member(carol.did), undefined)
  })

  it('lets entries without a credential stand (kind unknown), and an ending land with an expired one', async (t) => {
    let now = Date.now()
    const a = await manager(t, meshA, { credentialOf: credentialsOf(meshA) })
    // Mesh B as before credentials travelled for mallory; carol's expires in an hour.
    const b = await manager(t, meshB, {
      now: () => now,
      credentialOf: async (did) =>
        did === carol.did ? credential(meshB, did, 'human', { now, ttlSeconds: 3600 }) : undefined,
    })
    const { id } = await a.create({ name: 'general', creator: alice.did })
    await b.adopt({ id, homeMesh: meshA.did })
    const roomA = await a.load(id)
    const roomB = await b.load(id)
    assert.ok((await sync(roomA, roomB, meshA.did)).ok)
    await b.join(id, carol.did)
    await b.join(id, mallory.did)
    assert.ok((await sync(roomB, roomA, meshB.did)).ok)
    assert.deepEqual(kinds(await a.members(id, alice.did)), {
      '@alice': ['human', 1],
      '@carol:beta': ['human', 4],
      '@mallory:beta': ['unknown', 4],
    })
    // Two hours on, carol's credential has expired: her removal still lands everywhere.
    now += 2 * 3_600_000
    assert.deepEqual(await b.endMemberships(carol.did), [id])
    assert.ok((await sync(roomB, roomA, meshB.did)).ok)
    assert.ok(roomA.endedAt(carol.did, meshB.did))
  })

  it('gives this mesh’s member its current credential in a role change after the old one expired; the home mesh’s copy of a foreign member keeps its own', async (t) => {
    let now = Date.now()
    const a = await manager(t, meshA, {
      now: () => now,
      credentialOf: (did) => credential(meshA, did, KINDS[did], { now, ttlSeconds: 3600 }),
    })
    const b = await manager(t, meshB, {
      credentialOf: (did) => credential(meshB, did, KINDS[did], { ttlSeconds: 3600 }),
    })
    const { id } = await a.create({ name: 'general', creator: alice.did })
    await a.join(id, bob.did)
    await b.adopt({ id, homeMesh: meshA.did })
    const [roomA, roomB] = [await a.load(id), await b.load(id)]
    assert.ok((await sync(roomA, roomB, meshA.did)).ok)
    await b.join(id, carol.did)
    assert.ok((await sync(roomB, roomA, meshB.did)).ok)
    now += 2 * 3_600_000
    const promoted = await a.setRole(id, alice.did, bob.did, 'moderator')
    assert.deepEqual([promoted.role, promoted.kind], ['moderator', 'agent'])
    // The home mesh mutes beta's carol: its copy keeps the credential it took, expired by now.
    const muted = await a.setRole(id, alice.did, carol.did, 'read-only')
    assert.deepEqual([muted.role, muted.kind, muted.name], ['read-only', 'human', '@carol:beta'])
    assert.ok((await sync(roomA, roomB, meshA.did)).ok, 'the peer takes every entry')
    assert.equal(roomB.member(carol.did)?.role, 'read-only')
  })

  it('takes a credential by a later key of the member’s mesh, and a retired key’s only when issued before its retirement', async () => {
    const later = Ed25519KeyPair.generate()
    const retiredAt = Date.now() - 86_400_000
    const keys = {
      identityOf: (did: string) => did,
      keysOf: (identity: string) =>
        identity === meshB.did ? [{ did: meshB.did, retiredAt }, { did: later.did }] : undefined,
    }
    const entry = (vc: string): MemberEntry => ({
      v: 1,
      room: 'room-0001',
      did: carol.did,
      mesh: meshB.did,
      meshName: 'beta',
      localId: 'carol',
      role: 'member',
      tier: 4,
      ts: Date.now(),
      vc,
    })
    assert.equal(credentialProblem(entry(await credential(later, carol.did)), keys), undefined)
    const old = await credential(meshB, carol.did, 'human', { now: retiredAt - 3_600_000 })
    assert.equal(credentialProblem(entry(old), keys), undefined, 'issued before the rotation')
    const afterRetirement = await credential(meshB, carol.did, 'human', { now: retiredAt + 3_600_000 })
    assert.equal(credentialProblem(entry(afterRetirement), keys)?.problem, 'retired-key')
    // A key the replica does not know for that mesh (another mesh's, or unknown yet).
    assert.equal(credentialProblem(entry(await credential(meshC, carol.did)), keys)?.problem, 'issuer')
  })
})
