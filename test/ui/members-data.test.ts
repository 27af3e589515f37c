import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Member, MemberView } from '../../src/api/index.ts'
import { extractToken } from '../../src/api/ucan.ts'
import { issueMembershipCredential } from '../../src/auth/authority/index.ts'
import { alice, bob, mallory } from '../fixtures/principals.ts'

// The console's Members code (browser code, run here on Node): reading a credential the node
// issues, telling agents from humans in a room, who may set room roles, and the acts it signs.
const ui = (path: string) => new URL(`../../src/ui/src/lib/${path}`, import.meta.url).href
const members = (await import(ui('members.ts'))) as typeof import('../../src/ui/src/lib/members.ts')
const humanKey = (await import(ui('human-key.ts'))) as {
  keyFromSeed(seed: Uint8Array, name: string): Promise<unknown>
}
const ucan = (await import(ui('ucan.ts'))) as {
  capabilityOf(meshDid: string, act: Record<string, unknown>): unknown
  signAct(key: unknown, meshDid: string, act: Record<string, unknown>, proofs: unknown[]): Promise<string>
}

const mesh = alice
const roomMember = (did: string, role: Member['role'], local = true): Member => ({
  did,
  name: `@${did.slice(-4)}`,
  localId: did.slice(-4),
  mesh: mesh.did,
  meshName: 'alpha',
  role,
  tier: 4,
  local,
})
const bookEntry = (did: string, kind: 'human' | 'agent'): MemberView => ({
  did,
  kind,
  name: 'x',
  localId: 'x',
  role: 'member',
  tier: 4,
  enrolledAt: new Date(0).toISOString(),
  enrolledBy: mesh.did,
})

describe('the console’s Members data handling', () => {
  it('reads what a membership credential the node issues states: kind, role, tier, issuer, subject, dates', async () => {
    const now = Date.UTC(2026, 0, 1)
    const vc = await issueMembershipCredential(
      mesh,
      { id: bob.did, kind: 'agent', role: 'bot', tier: 4, mesh: mesh.did, meshName: 'alpha' },
      { now, ttlSeconds: 3600 },
    )
    const view = members.readCredential(vc)
    assert.equal(view.kind, 'agent')
    assert.equal(view.role, 'bot')
    assert.equal(view.tier, 4)
    assert.equal(view.issuer, mesh.did)
    assert.equal(view.subject, bob.did)
    assert.equal(view.issuedAt, new Date(now).toISOString())
    assert.equal(view.expiresAt, new Date(now + 3600_000).toISOString())
  })

  it('refuses what is not a JWT, and reads a hostile payload as unknowns, never throwing on its shape', () => {
    assert.throws(() => members.readCredential('not-a-jwt'), /not a JWT/)
    assert.throws(() => members.readCredential('a.%%%.c'), /base64url/)
    const odd = `e30.${Buffer.from(JSON.stringify({ vc: 'x', kind: 7, tier: '1', exp: 'soon' })).toString('base64url')}.`
    const view = members.readCredential(odd)
    assert.deepEqual(
      [view.kind, view.tier, view.expiresAt, view.issuer],
      [undefined, undefined, undefined, undefined],
    )
  })

  it('marks a room member as agent or human from the room’s answer, else from the mesh’s member book', () => {
    const book = [bookEntry(bob.did, 'agent'), bookEntry(mallory.did, 'human')]
    assert.equal(members.roomMemberKind(roomMember(bob.did, 'member'), book), 'agent')
    assert.equal(members.roomMemberKind(roomMember(mallory.did, 'member'), book), 'human')
    assert.equal(members.roomMemberKind(roomMember('did:key:z6Mkforeign', 'member', false), book), undefined)
    assert.equal(members.roomMemberKind(roomMember(bob.did, 'member'), undefined), undefined)
    const withKind = { ...roomMember('did:key:z6Mkforeign', 'member', false), kind: 'agent' } as Member
    assert.equal(members.roomMemberKind(withKind, book), 'agent')
  })

  it('offers role changes to the room’s owner and moderators only', () => {
    const list = [
      roomMember(alice.did, 'owner'),
      roomMember(bob.did, 'moderator'),
      roomMember(mallory.did, 'member'),
    ]
    assert.equal(members.canSetRoomRoles(list, alice.did), true)
    assert.equal(members.canSetRoomRoles(list, bob.did), true)
    assert.equal(members.canSetRoomRoles(list, mallory.did), false)
    assert.equal(members.canSetRoomRoles(list, 'did:key:z6Mkstranger'), false)
    assert.equal(members.canSetRoomRoles(undefined, alice.did), false)
  })

  it('signs mesh/enrol and mesh/remove on the mesh did with the caveats the node reads (nb {did, kind, role?} / {did})', async () => {
    assert.deepEqual(ucan.capabilityOf(mesh.did, { can: 'mesh/enrol', did: bob.did, kind: 'agent' }), {
      can: 'mesh/enrol',
      with: mesh.did,
      nb: { did: bob.did, kind: 'agent' },
    })
    assert.deepEqual(
      ucan.capabilityOf(mesh.did, { can: 'mesh/enrol', did: bob.did, kind: 'human', role: 'ops' }),
      { can: 'mesh/enrol', with: mesh.did, nb: { did: bob.did, kind: 'human', role: 'ops' } },
    )
    const key = await humanKey.keyFromSeed(Buffer.from(mallory.seed), 'architect')
    const token = await ucan.signAct(key, mesh.did, { can: 'mesh/remove', did: bob.did }, [])
    const invocation = await extractToken(token)
    assert.equal(invocation.issuer.did(), mallory.did)
    assert.equal(invocation.audience.did(), mesh.did)
    assert.deepEqual(invocation.capabilities, [{ can: 'mesh/remove', with: mesh.did, nb: { did: bob.did } }])
  })
})
