import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SessionService } from '../../src/auth/index.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { alice, bob, tempStore } from '../fixtures/principals.ts'
import { answeredChallenge } from '../fixtures/session-answer.ts'

const mesh = Ed25519KeyPair.generate()

const signed = (sessions: SessionService, key: Ed25519KeyPair) => answeredChallenge(sessions, key, mesh.did)

describe('SessionService.endSessionsOf (a member removed)', () => {
  it('ends every session of one did at once, tells the listeners, and leaves the others', async (t) => {
    const members = new Set([alice.did, bob.did])
    const sessions = new SessionService({
      store: await tempStore(t),
      meshDid: mesh.did,
      roleOf: async (did) => (members.has(did) ? 'human' : undefined),
    })
    const first = await sessions.open(signed(sessions, bob))
    const second = await sessions.open(signed(sessions, bob))
    const other = await sessions.open(signed(sessions, alice))
    const told: string[] = []
    sessions.onRevoked((s) => told.push(s.did))
    members.delete(bob.did)
    assert.equal(await sessions.endSessionsOf(bob.did), 2)
    assert.deepEqual(told, [bob.did, bob.did])
    await assert.rejects(sessions.authenticate(first.token), { code: 'MESH_UNAUTHENTICATED' })
    await assert.rejects(sessions.authenticate(second.token), { code: 'MESH_UNAUTHENTICATED' })
    assert.equal((await sessions.authenticate(other.token)).did, alice.did)
    await assert.rejects(sessions.open(signed(sessions, bob)), { code: 'MESH_FORBIDDEN' })
  })

  it('a sign-in racing the removal does not outlive it', async (t) => {
    let release: () => void = () => {}
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    const sessions = new SessionService({
      store: await tempStore(t),
      meshDid: mesh.did,
      // The role is read before the removal lands, the session written after it.
      roleOf: async () => {
        await gate
        return 'human'
      },
    })
    const racing = sessions.open(signed(sessions, bob))
    await sessions.endSessionsOf(bob.did)
    release()
    await assert.rejects(racing, { code: 'MESH_FORBIDDEN' })
  })
})

// rooms cost (issue 15): the session cache
describe('SessionService: sessions kept in memory once read (issue 15)', () => {
  it('a cached session ends at once on logout, on its member’s removal, and at its expiry', async (t) => {
    let now = Date.now()
    t.mock.method(Date, 'now', () => now)
    const sessions = new SessionService({
      store: await tempStore(t),
      meshDid: mesh.did,
      roleOf: async () => 'human',
      sessionTtlMs: 60_000,
    })
    const a = await sessions.open(signed(sessions, alice))
    const b = await sessions.open(signed(sessions, bob))
    for (let i = 0; i < 3; i++) assert.equal((await sessions.authenticate(a.token)).did, alice.did)
    assert.equal((await sessions.authenticate(b.token)).did, bob.did)
    await sessions.revoke(a.token)
    await assert.rejects(sessions.authenticate(a.token), { code: 'MESH_UNAUTHENTICATED' })
    await sessions.endSessionsOf(bob.did)
    await assert.rejects(sessions.authenticate(b.token), { code: 'MESH_UNAUTHENTICATED' })
    const c = await sessions.open(signed(sessions, alice))
    assert.equal((await sessions.authenticate(c.token)).did, alice.did)
    now += 60_001
    await assert.rejects(sessions.authenticate(c.token), { code: 'MESH_UNAUTHENTICATED' })
  })

  it('a read under way when its session is revoked is not cached', async (t) => {
    const sessions = new SessionService({
      store: await tempStore(t),
      meshDid: mesh.did,
      roleOf: async () => 'human',
    })
    const a = await sessions.open(signed(sessions, alice))
    const racing = Array.from({ length: 8 }, () => sessions.authenticate(a.token).catch(() => undefined))
    const revoking = sessions.revoke(a.token)
    const more = Array.from({ length: 8 }, () => sessions.authenticate(a.token).catch(() => undefined))
    await Promise.all([...racing, revoking, ...more])
    await assert.rejects(sessions.authenticate(a.token), { code: 'MESH_UNAUTHENTICATED' })
  })
})
