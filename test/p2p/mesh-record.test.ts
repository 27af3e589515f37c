import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Ed25519KeyPair, signCanonical } from '../../src/identity/index.ts'
import {
  checkMeshRecord,
  createMeshRecord,
  encodeMeshRecord,
  MESH_RECORD_MAX_BYTES,
  type MeshRecord,
  type MeshRecordContent,
  meshRecordKey,
  parseMeshRecord,
  selectMeshRecord,
  validateMeshRecord,
} from '../../src/p2p/index.ts'

const alice = Ed25519KeyPair.generate()
const mallory = Ed25519KeyPair.generate()

const content: MeshRecordContent = {
  name: 'alice-mesh',
  multiaddrs: ['/ip4/127.0.0.1/tcp/4001'],
  protocolVersions: ['/mesh/kad/1.0.0'],
  version: '0.1.0',
  members: 3,
  bots: 1,
  rooms: 2,
}

const bytesOf = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value))

/** Re-signs a (tampered) record with `key`, as an attacker would. */
function resign(
  record: Omit<MeshRecord, 'signature'> & { signature?: string },
  key: Ed25519KeyPair,
): MeshRecord {
  const { signature: _, ...unsigned } = record
  return { ...unsigned, signature: signCanonical(key, unsigned) }
}

const rejects = (promise: Promise<unknown>, code: string) =>
  assert.rejects(promise, (err: { code?: string }) => err.code === code)

describe('mesh record', () => {
  it('round-trips and validates under its own /mesh/<did> key', async () => {
    const record = createMeshRecord(alice, content, 1)
    const bytes = encodeMeshRecord(record)
    assert.deepEqual(parseMeshRecord(bytes), record)
    assert.equal(record.peerId, alice.peerId().toString())
    await validateMeshRecord(meshRecordKey(alice.did), bytes)
  })

  it('refuses a record signed by the wrong key', async () => {
    // mallory signs a record claiming to be alice
    const forged = resign({ ...createMeshRecord(alice, content, 9) }, mallory)
    await rejects(validateMeshRecord(meshRecordKey(alice.did), bytesOf(forged)), 'MESH_SIGNATURE_MISMATCH')
  })

  it("refuses a valid record stored under another mesh's key", async () => {
    const own = encodeMeshRecord(createMeshRecord(mallory, content, 1))
    await validateMeshRecord(meshRecordKey(mallory.did), own)
    await rejects(validateMeshRecord(meshRecordKey(alice.did), own), 'MESH_SIGNATURE_MISMATCH')
  })

  it('refuses a record whose peerId is not its did', async () => {
    const record = resign(
      { ...createMeshRecord(alice, content, 1), peerId: mallory.peerId().toString() },
      alice,
    )
    await rejects(validateMeshRecord(meshRecordKey(alice.did), bytesOf(record)), 'MESH_SIGNATURE_MISMATCH')
  })

  it('refuses a tampered field', async () => {
    const record = { ...createMeshRecord(alice, content, 1), members: 1000 }
    await rejects(validateMeshRecord(meshRecordKey(alice.did), bytesOf(record)), 'MESH_SIGNATURE_MISMATCH')
  })

  it('refuses an oversized record before parsing it', async () => {
    const big = new Uint8Array(MESH_RECORD_MAX_BYTES + 1).fill(0x20)
    await rejects(validateMeshRecord(meshRecordKey(alice.did), big), 'MESH_TOO_LARGE')
    assert.throws(() => createMeshRecord(alice, { ...content, name: 'x'.repeat(10_000) }, 1), {
      code: 'MESH_BAD_REQUEST',
    })
  })

  it('refuses malformed records and keys', async () => {
    const key = meshRecordKey(alice.did)
    const good = createMeshRecord(alice, content, 1)
    const { rooms: _, ...missing } = good
    const cases: Uint8Array[] = [
      new TextEncoder().encode('{not json'),
      Uint8Array.of(0xff, 0xfe, 0x7b),
      bytesOf([good]),
      bytesOf(resign({ ...good, extra: true } as MeshRecord, alice)),
      bytesOf(resign(missing as MeshRecord, alice)),
      bytesOf(resign({ ...good, seq: 0 }, alice)),
      bytesOf(resign({ ...good, members: -1 }, alice)),
      bytesOf(resign({ ...good, multiaddrs: ['not a multiaddr'] }, alice)),
      bytesOf(resign({ ...good, v: 2 } as unknown as MeshRecord, alice)),
    ]
    for (const bytes of cases) await rejects(validateMeshRecord(key, bytes), 'MESH_BAD_REQUEST')
    const bytes = encodeMeshRecord(good)
    await rejects(validateMeshRecord(new TextEncoder().encode('/mesh/not-a-did'), bytes), 'MESH_BAD_REQUEST')
  })

  it('refuses a record stamped in the future', async () => {
    const record = createMeshRecord(alice, content, 1, Date.now() + 10 * 60_000)
    await rejects(validateMeshRecord(meshRecordKey(alice.did), encodeMeshRecord(record)), 'MESH_CLOCK_SKEW')
  })

  it('checks a record once per node, its clock on every use, and never keeps a refusal', (t) => {
    const key = meshRecordKey(alice.did)
    const record = createMeshRecord(alice, content, 1, Date.now() + 30_000)
    const bytes = encodeMeshRecord(record)
    const first = checkMeshRecord(key, bytes)
    assert.equal(checkMeshRecord(key, bytes), first, 'the same bytes are not parsed again')
    assert.ok(
      Object.isFrozen(first) && Object.isFrozen(first.multiaddrs),
      'a shared record cannot be changed',
    )
    // under another key the same bytes are checked anew, and refused
    assert.throws(() => checkMeshRecord(meshRecordKey(mallory.did), bytes), {
      code: 'MESH_SIGNATURE_MISMATCH',
    })
    // one changed byte is another record: checked, and refused
    const tampered = new TextEncoder().encode(
      new TextDecoder().decode(bytes).replace('"members":3', '"members":4'),
    )
    assert.notDeepEqual(tampered, bytes)
    assert.throws(() => checkMeshRecord(key, tampered), { code: 'MESH_SIGNATURE_MISMATCH' })
    assert.throws(() => checkMeshRecord(key, tampered), { code: 'MESH_SIGNATURE_MISMATCH' })
    // the clock is read on every use: 70 s earlier, this record is stamped too far ahead
    const now = Date.now()
    t.mock.method(Date, 'now', () => now - 70_000)
    assert.throws(() => checkMeshRecord(key, bytes), { code: 'MESH_CLOCK_SKEW' })
  })

  it('selects the highest seq, never an invalid record', () => {
    const key = meshRecordKey(alice.did)
    const r1 = encodeMeshRecord(createMeshRecord(alice, content, 1))
    const r5 = encodeMeshRecord(createMeshRecord(alice, content, 5))
    const r3 = encodeMeshRecord(createMeshRecord(alice, content, 3))
    const forged = bytesOf(resign({ ...createMeshRecord(alice, content, 99) }, mallory))
    assert.equal(selectMeshRecord(key, [r1, r5, r3]), 1)
    assert.equal(selectMeshRecord(key, [r5, r1]), 0)
    assert.equal(selectMeshRecord(key, [r3, forged, r1]), 0)
    // an equivocating key (two records with one seq): every node picks the same one
    const a = encodeMeshRecord(createMeshRecord(alice, content, 7, 1000))
    const b = encodeMeshRecord(createMeshRecord(alice, { ...content, name: 'other' }, 7, 1000))
    assert.equal(selectMeshRecord(key, [a, b]), 1 - selectMeshRecord(key, [b, a]))
  })
})
