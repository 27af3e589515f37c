import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MeshError } from '../../src/errors.ts'
import { createRotationRecord } from '../../src/identity/index.ts'
import {
  createMeshRecord,
  currentDidOf,
  encodeMeshRecord,
  type MeshRecordContent,
  meshRecordKey,
  parseMeshRecord,
  validateMeshRecord,
} from '../../src/p2p/index.ts'
import { alice, bob, mallory } from '../fixtures/principals.ts'

const content: MeshRecordContent = {
  name: 'alpha',
  multiaddrs: ['/ip4/127.0.0.1/tcp/4001'],
  protocolVersions: ['/mesh/connect/1.0.0'],
  version: '0.1.0',
  members: 1,
  bots: 0,
  rooms: 0,
}

describe('mesh records after a key rotation', () => {
  it('the new key publishes its chain; the old key leaves a moved record pointing at it', async () => {
    const rotation = createRotationRecord(alice, bob, { identity: alice.did, seq: 1 })
    const keys = { identity: alice.did, rotations: [rotation] }
    const current = createMeshRecord(bob, content, 7, Date.now(), keys)
    const moved = createMeshRecord(alice, { ...content, multiaddrs: [] }, 7, Date.now(), keys)
    await validateMeshRecord(meshRecordKey(bob.did), encodeMeshRecord(current))
    await validateMeshRecord(meshRecordKey(alice.did), encodeMeshRecord(moved))
    assert.equal(currentDidOf(parseMeshRecord(encodeMeshRecord(current))), bob.did)
    assert.equal(currentDidOf(parseMeshRecord(encodeMeshRecord(moved))), bob.did)
    // Without a rotation the record has no identity fields at all.
    assert.equal(createMeshRecord(alice, content, 1).rotations, undefined)
  })

  it('refuses a record whose chain is forged or does not name its did', () => {
    const forged = {
      ...createRotationRecord(mallory, bob, { identity: alice.did, seq: 1 }),
      previous: alice.did,
    }
    const withForged = createMeshRecord(bob, content, 2)
    const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value))
    assert.throws(
      () => parseMeshRecord(bytes({ ...withForged, identity: alice.did, rotations: [forged] })),
      (err: unknown) => err instanceof MeshError && err.code === 'MESH_SIGNATURE_MISMATCH',
    )
    const rotation = createRotationRecord(alice, bob, { identity: alice.did, seq: 1 })
    assert.throws(
      () => createMeshRecord(mallory, content, 2, Date.now(), { identity: alice.did, rotations: [rotation] }),
      (err: unknown) => err instanceof MeshError && err.code === 'MESH_SIGNATURE_MISMATCH',
    )
  })
})
