import assert from 'node:assert/strict'
import { test } from 'node:test'
import { issueMembershipCredential } from '../../src/auth/authority/credentials.ts'
import { HeldCredentials } from '../../src/auth/authority/held-credentials.ts'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { alice, bob, mallory, tempStore } from '../fixtures/principals.ts'

const mesh = new Ed25519KeyPair(Buffer.alloc(32, 4))
const rotated = new Ed25519KeyPair(Buffer.alloc(32, 9))

function membership(key: Ed25519KeyPair, did: string): Promise<string> {
  return issueMembershipCredential(key, {
    id: did,
    kind: 'human',
    role: 'member',
    tier: 2,
    mesh: key.did,
    meshName: 'alpha',
  })
}

test('held credentials: kept by subject, reloaded after a restart, one copy each', async (t) => {
  const store = await tempStore(t)
  const held = new HeldCredentials({ store })
  await held.open()
  const forAlice = await membership(mesh, alice.did)
  const forBob = await membership(mesh, bob.did)
  await held.put(alice.did, forAlice)
  await held.put(alice.did, forAlice)
  await held.put(bob.did, forBob)
  assert.deepEqual(held.of(alice.did), [forAlice])
  assert.deepEqual(held.of(mallory.did), [])

  const reopened = new HeldCredentials({ store })
  await reopened.open()
  assert.deepEqual(reopened.of(alice.did), [forAlice])
  assert.deepEqual(reopened.of(bob.did), [forBob])
})

test('held credentials: holdsFrom names the issuing key (a rotated key issues anew)', async (t) => {
  const held = new HeldCredentials({ store: await tempStore(t) })
  await held.open()
  await held.put(alice.did, await membership(mesh, alice.did))
  assert.equal(held.holdsFrom(alice.did, mesh.did), true)
  assert.equal(held.holdsFrom(alice.did, rotated.did), false)
  assert.equal(held.holdsFrom(bob.did, mesh.did), false)
})
