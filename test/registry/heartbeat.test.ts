import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { signCanonical } from '../../src/identity/index.ts'
import { type Heartbeat, signHeartbeat, verifyHeartbeat } from '../../src/registry/index.ts'
import { alice, bob, mallory } from '../fixtures/principals.ts'
import { contentFor, signedFor } from './registry-fixtures.ts'

const now = Date.UTC(2025, 0, 1)

describe('heartbeat wire format', () => {
  it('verifies a heartbeat signed by its own did, whatever the field order on the wire', () => {
    const hb = signedFor(alice, now)
    assert.deepEqual(verifyHeartbeat(hb, { now }), hb)
    const reordered = Object.fromEntries(Object.entries(hb).reverse())
    assert.deepEqual(verifyHeartbeat(JSON.parse(JSON.stringify(reordered)), { now }), hb)
  })

  it('signs only the wire fields of the content it is given', () => {
    const hb = signHeartbeat(alice, { ...contentFor(alice, now), extra: 'not on the wire' } as never)
    assert.equal('extra' in hb, false)
    assert.deepEqual(verifyHeartbeat(hb, { now }), hb)
  })

  it('refuses to sign for another did', () => {
    assert.throws(() => signHeartbeat(mallory, contentFor(alice, now)), { code: 'MESH_BAD_REQUEST' })
  })

  it('refuses a changed field with MESH_SIGNATURE_MISMATCH', () => {
    const hb = signedFor(alice, now, { members: 3 })
    assert.throws(() => verifyHeartbeat({ ...hb, members: 3000 }, { now }), {
      code: 'MESH_SIGNATURE_MISMATCH',
    })
  })

  it('refuses mallory signing a heartbeat that claims alice’s did with MESH_SIGNATURE_MISMATCH', () => {
    const content = contentFor(alice, now, { name: 'alice (really mallory)' })
    const forged: Heartbeat = { ...content, signature: signCanonical(mallory, content) }
    assert.throws(() => verifyHeartbeat(forged, { now }), { code: 'MESH_SIGNATURE_MISMATCH' })
  })

  it('refuses a peerId that is not the did’s key with MESH_SIGNATURE_MISMATCH', () => {
    const hb = signedFor(mallory, now, { peerId: alice.peerId().toString(), multiaddrs: [] })
    assert.throws(() => verifyHeartbeat(hb, { now }), { code: 'MESH_SIGNATURE_MISMATCH' })
  })

  it('refuses a multiaddr that does not parse or names another peer with MESH_BAD_REQUEST', () => {
    for (const multiaddrs of [
      ['/ip4/300.1.1.1/tcp/1'],
      [`/ip4/127.0.0.1/tcp/1/p2p/${bob.peerId().toString()}`],
    ]) {
      assert.throws(() => verifyHeartbeat(signedFor(alice, now, { multiaddrs }), { now }), {
        code: 'MESH_BAD_REQUEST',
      })
    }
  })

  it('signs the admission stamp with the rest: a stamp added or changed in transit is MESH_SIGNATURE_MISMATCH', () => {
    const hb = signedFor(alice, now, { pow: 'abc' })
    assert.deepEqual(verifyHeartbeat(hb, { now }), hb)
    assert.throws(() => verifyHeartbeat({ ...hb, pow: 'abd' }, { now }), { code: 'MESH_SIGNATURE_MISMATCH' })
    assert.throws(() => verifyHeartbeat({ ...signedFor(alice, now), pow: 'abc' }, { now }), {
      code: 'MESH_SIGNATURE_MISMATCH',
    })
  })

  it('accepts a clock 60 s off and refuses 61 s off, either way, with MESH_CLOCK_SKEW', () => {
    for (const skew of [-60_000, 60_000]) verifyHeartbeat(signedFor(alice, now + skew), { now })
    for (const skew of [-61_000, 61_000]) {
      assert.throws(() => verifyHeartbeat(signedFor(alice, now + skew), { now }), { code: 'MESH_CLOCK_SKEW' })
    }
  })

  it('refuses malformed heartbeats with MESH_BAD_REQUEST before looking at the signature', () => {
    const hb = signedFor(alice, now)
    const { signature: _, ...unsigned } = hb
    const bad: unknown[] = [
      null,
      'heartbeat',
      [],
      unsigned,
      { ...hb, extra: 1 },
      { ...hb, did: 'did:web:example.com' },
      { ...hb, status: 'asleep' },
      { ...hb, members: -1 },
      { ...hb, bots: 1.5 },
      { ...hb, rooms: 1e9 + 1 },
      { ...hb, members: '3' },
      { ...hb, seq: '1' },
      { ...hb, name: '' },
      { ...hb, name: 'x'.repeat(65) },
      { ...hb, name: 'bell\u0007' },
      { ...hb, multiaddrs: Array.from({ length: 17 }, (_, i) => `/ip4/127.0.0.1/tcp/${i + 1}`) },
      { ...hb, multiaddrs: [`/dns4/${'a'.repeat(260)}/tcp/1`] },
      { ...hb, protocolVersions: 'mesh' },
      { ...hb, signature: 'c2ln' },
      { ...hb, pow: '' },
      { ...hb, pow: 'not a nonce' },
      { ...hb, pow: 7 },
    ]
    for (const value of bad) {
      assert.throws(
        () => verifyHeartbeat(value, { now }),
        { code: 'MESH_BAD_REQUEST' },
        JSON.stringify(value),
      )
    }
  })
})
