import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createRotationRecord, Ed25519KeyPair } from '../../src/identity/index.ts'
import { alice, bob, mallory, tempStore } from '../fixtures/principals.ts'
import { signedFor, startTestRegistry, storedEntries, TestClock } from './registry-fixtures.ts'

const carol = new Ed25519KeyPair(Buffer.alloc(32, 4))

describe('registry and key rotation', () => {
  it('moves a mesh to its new key only through its chain, and refuses the retired key', async (t) => {
    const clock = new TestClock(Date.now())
    const store = await tempStore(t)
    const reg = await startTestRegistry(t, store, { now: clock.now })
    assert.equal((await reg.post(signedFor(alice, clock.ms, { name: 'alpha', seq: 5 }))).status, 200)
    const rotation = createRotationRecord(alice, bob, { identity: alice.did, seq: 1, ts: clock.ms })

    // A forged chain (mallory claims alice handed over to her) is refused; nothing changes.
    const forged = { ...createRotationRecord(mallory, bob, { identity: alice.did, seq: 1, ts: clock.ms }) }
    forged.previous = alice.did
    const before = await storedEntries(store)
    const refused = await reg.post(signedFor(bob, clock.ms, { name: 'alpha', seq: 6, rotations: [forged] }))
    assert.equal(refused.status, 401)
    assert.equal(refused.body.error.code, 'MESH_SIGNATURE_MISMATCH')
    // A chain that does not end at the heartbeat's did (mallory replaying alice's chain).
    const replayed = await reg.post(signedFor(mallory, clock.ms, { seq: 6, rotations: [rotation] }))
    assert.equal(replayed.body.error.code, 'MESH_SIGNATURE_MISMATCH')
    assert.deepEqual(await storedEntries(store), before)

    // The new key with its chain: one entry, under the new did; the old seq still counts.
    const stale = await reg.post(signedFor(bob, clock.ms, { name: 'alpha', seq: 5, rotations: [rotation] }))
    assert.equal(stale.body.error.code, 'MESH_REPLAY')
    const moved = await reg.post(signedFor(bob, clock.ms, { name: 'alpha', seq: 6, rotations: [rotation] }))
    assert.deepEqual(moved.body, { ok: true, status: 'online' })
    assert.deepEqual(
      (await reg.listed()).map((m) => [m.did, m.name]),
      [[bob.did, 'alpha']],
    )

    // The retired key cannot bring the old entry back, also after a registry restart.
    const back = await reg.post(signedFor(alice, clock.ms, { name: 'alpha', seq: 7 }))
    assert.equal(back.body.error.code, 'MESH_SIGNATURE_MISMATCH')
    await reg.registry.stop()
    await reg.registry.start()
    assert.equal(
      (await reg.post(signedFor(alice, clock.ms, { name: 'alpha', seq: 8 }))).body.error.code,
      'MESH_SIGNATURE_MISMATCH',
    )

    // A second rotation: the whole chain, the mesh is still listed once.
    const second = createRotationRecord(bob, carol, { identity: alice.did, seq: 2, ts: clock.ms })
    const again = await reg.post(
      signedFor(carol, clock.ms, { name: 'alpha', seq: 9, rotations: [rotation, second] }),
    )
    assert.equal(again.status, 200)
    assert.deepEqual(
      (await reg.listed()).map((m) => m.did),
      [carol.did],
    )
  })
})
