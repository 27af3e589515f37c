import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SessionService, sessionChallengeText } from '../../src/auth/index.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { alice, bob, tempStore } from '../fixtures/principals.ts'

const mesh = Ed25519KeyPair.generate()

function signed(sessions: SessionService, key: Ed25519KeyPair) {
  const { nonce } = sessions.challenge()
  const signature = Buffer.from(
    key.sign(new TextEncoder().encode(sessionChallengeText(mesh.did, nonce))),
  ).toString('base64url')
  return { did: key.did, nonce, signature }
}

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
