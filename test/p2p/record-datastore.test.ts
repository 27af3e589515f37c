import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { Record as DhtRecord } from '@libp2p/kad-dht'
import { Key } from 'interface-datastore'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import {
  createMeshDatastore,
  createMeshRecord,
  dhtRecordKey,
  encodeMeshRecord,
  meshRecordKey,
  parseMeshRecord,
} from '../../src/p2p/index.ts'
import { MeshStore } from '../../src/store/index.ts'
import { tempDir } from '../fixtures/principals.ts'
import { RECORD_CONTENT } from './nodes.ts'

const content = RECORD_CONTENT

/** A mesh record of a new key (or `key`) at `seq`, as kad-dht stores it: [datastore key, bytes]. */
function stored(seq: number, key = Ed25519KeyPair.generate()): [Key, Uint8Array] {
  const dhtKey = meshRecordKey(key.did)
  const record = new DhtRecord(dhtKey, encodeMeshRecord(createMeshRecord(key, content, seq)), new Date())
  return [dhtRecordKey(dhtKey), record.serialize()]
}

const seqOf = (bytes: Uint8Array) => parseMeshRecord(DhtRecord.deserialize(bytes).value).seq

async function openStore(t: TestContext): Promise<MeshStore> {
  const store = new MeshStore({ path: join(await tempDir(t), 'store') })
  await store.open()
  t.after(() => store.close())
  return store
}

describe('the DHT datastore on disk', () => {
  it('keeps DHT records and provider records across a restart, not the rest, and deletes for good', async (t) => {
    const store = await openStore(t)
    const alice = Ed25519KeyPair.generate()
    const first = createMeshDatastore({ persist: store.sublevel<string>('dht') })
    const [aliceKey, aliceV2] = stored(2, alice)
    const [bobKey, bobV1] = stored(1)
    const provider = new Key('/dht/provider/bafyexample/12D3KooWexample')
    const peer = new Key('/peers/12D3KooWexample')
    await first.put(aliceKey, aliceV2)
    await first.put(bobKey, bobV1)
    await first.put(provider, Uint8Array.of(1, 2, 3))
    await first.put(peer, Uint8Array.of(9))
    await first.delete(bobKey)
    await first.flush()

    const second = createMeshDatastore({ persist: store.sublevel<string>('dht') })
    assert.equal(await second.load(), 2)
    assert.equal(second.records, 1)
    assert.equal(seqOf(await second.get(aliceKey)), 2)
    assert.deepEqual(await second.get(provider), Uint8Array.of(1, 2, 3))
    assert.equal(await second.has(bobKey), false, 'a deleted record stays deleted')
    assert.equal(await second.has(peer), false, 'the peer store is not kept')

    // the guard holds across the restart: alice's older record cannot replace the loaded one
    const [, aliceV1] = stored(1, alice)
    await assert.rejects(Promise.resolve(second.put(aliceKey, aliceV1)), { code: 'MESH_REPLAY' })
    assert.equal(seqOf(await second.get(aliceKey)), 2)
  })

  it('holds at most maxRecords records: a new key beyond is refused, a newer record for a held key is not', async (t) => {
    const store = await openStore(t)
    const datastore = createMeshDatastore({ persist: store.sublevel<string>('dht'), maxRecords: 2 })
    const alice = Ed25519KeyPair.generate()
    const [aliceKey, aliceV1] = stored(1, alice)
    await datastore.put(aliceKey, aliceV1)
    await datastore.put(...stored(1))
    const [floodKey, flood] = stored(1)
    await assert.rejects(Promise.resolve(datastore.put(floodKey, flood)), { code: 'MESH_TOO_LARGE' })
    assert.equal(await datastore.has(floodKey), false)
    const [, aliceV2] = stored(2, alice)
    await datastore.put(aliceKey, aliceV2)
    assert.equal(seqOf(await datastore.get(aliceKey)), 2)
    await datastore.delete(aliceKey)
    await datastore.put(floodKey, flood)
    assert.equal(datastore.records, 2)
    await datastore.flush()
    assert.equal(
      (await store.sublevel<string>('dht').keys().all()).length,
      2,
      'nothing refused reached the disk',
    )
  })
})
