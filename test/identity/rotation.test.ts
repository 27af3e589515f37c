import assert from 'node:assert/strict'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { MeshError } from '../../src/errors.ts'
import {
  createKeyFile,
  createRotationRecord,
  Ed25519KeyPair,
  extendKnownKeys,
  KEY_HISTORY_FILE,
  loadKeyHistory,
  MESH_KEY_FILE,
  MESH_KEYS_DIR,
  type RotationRecord,
  readRetiredKey,
  rotateMeshKey,
  signCanonical,
  verifyRotationChain,
  verifyRotationRecord,
} from '../../src/identity/index.ts'
import { alice, bob, mallory, tempDir } from '../fixtures/principals.ts'

const carol = new Ed25519KeyPair(Buffer.alloc(32, 4))

/** alice (genesis) → bob → carol */
function chain(): RotationRecord[] {
  const first = createRotationRecord(alice, bob, { identity: alice.did, seq: 1, ts: 1_000 })
  const second = createRotationRecord(bob, carol, { identity: alice.did, seq: 2, ts: 2_000 })
  return [first, second]
}

const code = (c: string) => (err: unknown) => err instanceof MeshError && err.code === c

describe('rotation records', () => {
  it('a record is signed by the previous key and by the next one', () => {
    const [record] = chain() as [RotationRecord]
    assert.equal(record.type, 'mesh/key-rotation')
    assert.equal(verifyRotationRecord(record), record)
    assert.throws(() => verifyRotationRecord({ ...record, extra: 1 }), code('MESH_BAD_REQUEST'))
  })

  it('refuses a forged sigPrevious (mallory hands alice over to herself)', () => {
    const forged = createRotationRecord(mallory, bob, { identity: alice.did, seq: 1 })
    const claimed = { ...forged, previous: alice.did }
    assert.throws(() => verifyRotationRecord(claimed), code('MESH_SIGNATURE_MISMATCH'))
  })

  it('refuses a record without sigNext, or with a sigNext by another key', () => {
    const [record] = chain() as [RotationRecord]
    const { sigNext: _, ...missing } = record
    assert.throws(() => verifyRotationRecord(missing), code('MESH_BAD_REQUEST'))
    const { sigPrevious, sigNext: __, ...content } = record
    const wrong = { ...record, sigNext: signCanonical(mallory, { ...content, sigPrevious }) }
    assert.throws(() => verifyRotationRecord(wrong), code('MESH_SIGNATURE_MISMATCH'))
  })

  it('refuses a record stamped in the future', () => {
    const record = createRotationRecord(alice, bob, { identity: alice.did, seq: 1, ts: Date.now() + 120_000 })
    assert.throws(() => verifyRotationRecord(record), code('MESH_CLOCK_SKEW'))
  })
})

describe('rotation chains', () => {
  it('a valid chain lists every key from the identity to the current one', () => {
    const verified = verifyRotationChain(chain())
    assert.equal(verified.identity, alice.did)
    assert.deepEqual(verified.keys, [alice.did, bob.did, carol.did])
    assert.deepEqual(verifyRotationChain([], { identity: alice.did }).keys, [alice.did])
  })

  it('refuses a broken chain: a gap, a wrong order, another identity', () => {
    const [first, second] = chain() as [RotationRecord, RotationRecord]
    assert.throws(() => verifyRotationChain([second]), code('MESH_BAD_REQUEST')) // seq 2 first
    assert.throws(() => verifyRotationChain([second, first]), code('MESH_BAD_REQUEST'))
    const detour = createRotationRecord(mallory, carol, { identity: alice.did, seq: 2, ts: 2_000 })
    assert.throws(() => verifyRotationChain([first, detour]), code('MESH_SIGNATURE_MISMATCH'))
    const other = createRotationRecord(bob, carol, { identity: bob.did, seq: 2, ts: 2_000 })
    assert.throws(() => verifyRotationChain([first, other]), code('MESH_SIGNATURE_MISMATCH'))
    assert.throws(() => verifyRotationChain(chain(), { identity: bob.did }), code('MESH_SIGNATURE_MISMATCH'))
  })

  it('refuses a chain that comes back to a key it retired', () => {
    const [first] = chain() as [RotationRecord]
    const back = createRotationRecord(bob, alice, { identity: alice.did, seq: 2, ts: 2_000 })
    assert.throws(() => verifyRotationChain([first, back]), code('MESH_REPLAY'))
  })

  it('a peer takes the keys after its current one; a replayed old chain adds nothing', () => {
    const full = verifyRotationChain(chain())
    assert.deepEqual(extendKnownKeys([alice.did], full), [bob.did, carol.did])
    assert.deepEqual(extendKnownKeys([alice.did, bob.did], full), [carol.did])
    // The first rotation replayed to a peer that already holds carol: nothing changes.
    const old = verifyRotationChain(chain().slice(0, 1))
    assert.throws(
      () => extendKnownKeys([alice.did, bob.did, carol.did], old),
      code('MESH_SIGNATURE_MISMATCH'),
    )
    assert.deepEqual(extendKnownKeys([alice.did, bob.did, carol.did], full), [])
  })

  it('refuses a fork signed by a retired key (the old key stolen by mallory)', () => {
    const fork = verifyRotationChain([createRotationRecord(alice, mallory, { identity: alice.did, seq: 1 })])
    assert.throws(() => extendKnownKeys([alice.did, bob.did], fork), code('MESH_SIGNATURE_MISMATCH'))
  })
})

describe('the key history in the data dir', () => {
  it('rotates: new key current, old key kept, 0600 files, history reloads', async (t) => {
    const dir = await tempDir(t, 'mesh-rotate-')
    const genesis = await createKeyFile(join(dir, MESH_KEY_FILE), 'mesh', 'm')
    const before = await loadKeyHistory(dir)
    assert.deepEqual(before.keys, [genesis.did])
    assert.equal(before.identity, genesis.did)

    const { history, record } = await rotateMeshKey(dir, before)
    assert.equal(record.previous, genesis.did)
    assert.equal(record.next, history.current.did)
    const again = await rotateMeshKey(dir, history)
    const loaded = await loadKeyHistory(dir)
    assert.equal(loaded.identity, genesis.did)
    assert.deepEqual(loaded.keys, [genesis.did, history.current.did, again.history.current.did])
    assert.equal(loaded.current.did, again.history.current.did)
    assert.equal((await readRetiredKey(dir, genesis.did)).did, genesis.did)
    for (const file of [MESH_KEY_FILE, KEY_HISTORY_FILE]) {
      assert.equal((await stat(join(dir, file))).mode & 0o777, 0o600, file)
    }
    const kept = await readdir(join(dir, MESH_KEYS_DIR))
    assert.equal(kept.length, 3)
    assert.equal((await stat(join(dir, MESH_KEYS_DIR))).mode & 0o777, 0o700)
    assert.ok(!kept.some((f) => f.endsWith('.tmp')))
  })

  it('finishes a rotation a crash interrupted before mesh-key.json was replaced', async (t) => {
    const dir = await tempDir(t, 'mesh-rotate-crash-')
    await createKeyFile(join(dir, MESH_KEY_FILE), 'mesh', 'm')
    const before = await loadKeyHistory(dir)
    const oldKeyFile = await readFile(join(dir, MESH_KEY_FILE), 'utf8')
    const { history } = await rotateMeshKey(dir, before)
    // The crash: the history names the new key, mesh-key.json is still the old one.
    await writeFile(join(dir, MESH_KEY_FILE), oldKeyFile, { mode: 0o600 })
    const loaded = await loadKeyHistory(dir)
    assert.equal(loaded.current.did, history.current.did)
    assert.equal((await loadKeyHistory(dir)).current.did, history.current.did)
  })

  it('refuses a mesh-key.json that the history does not name', async (t) => {
    const dir = await tempDir(t, 'mesh-rotate-bad-')
    await createKeyFile(join(dir, MESH_KEY_FILE), 'mesh', 'm')
    await rotateMeshKey(dir, await loadKeyHistory(dir))
    const stranger = Ed25519KeyPair.generate()
    await writeFile(
      join(dir, MESH_KEY_FILE),
      JSON.stringify({
        version: 1,
        type: 'Ed25519',
        role: 'mesh',
        name: 'x',
        seed: Buffer.from(stranger.seed).toString('base64url'),
        did: stranger.did,
        createdAt: new Date().toISOString(),
      }),
      { mode: 0o600 },
    )
    await assert.rejects(loadKeyHistory(dir), code('MESH_BAD_REQUEST'))
  })
})
