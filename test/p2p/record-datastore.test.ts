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
function stored(
  seq: number,
  key = Ed25519KeyPair.generate(),
  { ts = Date.now(), received = new Date() } = {},
): [Key, Uint8Array] {
  const dhtKey = meshRecordKey(key.did)
  const record = new DhtRecord(dhtKey, encodeMeshRecord(createMeshRecord(key, content, seq, ts)), received)
  return [dhtRecordKey(dhtKey), record.serialize()]
}

/** kad-dht's provider record value: the time provided, as an unsigned varint. */
function varint(value: number): Uint8Array {
  const bytes: number[] = []
  while (value >= 0x80) {
    bytes.push((value % 0x80) | 0x80)
    value = Math.floor(value / 0x80)
  }
  bytes.push(value)
  return Uint8Array.from(bytes)
}

/** A provider record key: `peer` provides `cid` (any base32 string stands for a CID here). */
const providerKey = (cid: string, peer: string) => new Key(`/dht/provider/${cid}/${peer}`)

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
    const providedAt = varint(Date.now())
    const peer = new Key('/peers/12D3KooWexample')
    await first.put(aliceKey, aliceV2)
    await first.put(bobKey, bobV1)
    await first.put(provider, providedAt)
    await first.put(peer, Uint8Array.of(9))
    await first.delete(bobKey)
    await first.flush()

    const second = createMeshDatastore({ persist: store.sublevel<string>('dht') })
    assert.equal(await second.load(), 2)
    assert.equal(second.records, 1)
    assert.equal(seqOf(await second.get(aliceKey)), 2)
    assert.deepEqual(await second.get(provider), providedAt)
    assert.equal(await second.has(bobKey), false, 'a deleted record stays deleted')
    assert.equal(await second.has(peer), false, 'the peer store is not kept')

    // the guard holds across the restart: alice's older record cannot replace the loaded one
    const [, aliceV1] = stored(1, alice)
    await assert.rejects(Promise.resolve(second.put(aliceKey, aliceV1)), { code: 'MESH_REPLAY' })
    assert.equal(seqOf(await second.get(aliceKey)), 2)
  })

  it("charges a record to the peer that sent it: beyond maxRecordsPerPeer a peer replaces its own, never another's", async () => {
    const datastore = createMeshDatastore({ maxRecords: 100, maxRecordsPerPeer: 3 })
    const alice = Ed25519KeyPair.generate()
    const [aliceKey, aliceRecord] = stored(1, alice)
    await datastore.asSender(alice.peerId().toString(), () => datastore.put(aliceKey, aliceRecord))
    const junk: Key[] = []
    for (let i = 0; i < 10; i++) {
      const [key, value] = stored(1)
      junk.push(key)
      await datastore.asSender('mallory', () => datastore.put(key, value))
    }
    assert.equal(datastore.records, 4, "alice's record and mallory's last three")
    assert.equal(await datastore.has(aliceKey), true)
    for (const key of junk.slice(0, 7)) assert.equal(await datastore.has(key), false)
    for (const key of junk.slice(7)) assert.equal(await datastore.has(key), true)
  })

  it("a full store evicts the largest holder's junk, not an honest newcomer nor this node's own record", async (t) => {
    const store = await openStore(t)
    const self = Ed25519KeyPair.generate()
    const datastore = createMeshDatastore({
      persist: store.sublevel<string>('dht'),
      maxRecords: 7,
      maxRecordsPerPeer: 3,
      self: self.peerId().toString(),
    })
    const [ownKey, own] = stored(1, self)
    await datastore.put(ownKey, own)
    // our own record and two sybils' records of fresh keys fill the store
    for (const sybil of ['mallory-1', 'mallory-2']) {
      for (let i = 0; i < 3; i++) await datastore.asSender(sybil, () => datastore.put(...stored(1)))
    }
    assert.equal(datastore.records, 7)
    const honest: Key[] = []
    for (let i = 0; i < 4; i++) {
      const mesh = Ed25519KeyPair.generate()
      const [key, value] = stored(1, mesh)
      await datastore.asSender(mesh.peerId().toString(), () => datastore.put(key, value))
      honest.push(key)
    }
    assert.equal(datastore.records, 7)
    assert.equal(await datastore.has(ownKey), true, 'our own record stays')
    for (const key of honest)
      assert.equal(await datastore.has(key), true, 'every honest mesh record was taken')
    assert.equal(datastore.evicted, 4, 'one sybil record per honest one')
    // a sybil holding as many as an honest mesh cannot push it out: a holder never
    // evicts one holding fewer keys than itself
    await datastore.asSender('mallory-1', () => datastore.put(...stored(1)))
    for (const key of honest) assert.equal(await datastore.has(key), true)
    await datastore.flush()
    assert.equal((await store.sublevel<string>('dht').keys().all()).length, 7, 'evictions reached the disk')

    // the holders survive a restart: the flood is still charged to mallory
    const again = createMeshDatastore({
      persist: store.sublevel<string>('dht'),
      maxRecords: 7,
      maxRecordsPerPeer: 3,
    })
    assert.equal(await again.load(), 7)
    const mesh = Ed25519KeyPair.generate()
    const [lateKey, late] = stored(1, mesh)
    await again.asSender(mesh.peerId().toString(), () => again.put(lateKey, late))
    for (const key of [...honest, lateKey]) assert.equal(await again.has(key), true)
  })

  it('holds at most maxRecordBytes: a peer padding its records to 8 KiB pushes out only its own', async () => {
    const datastore = createMeshDatastore({ maxRecordBytes: 20_000 })
    const honest: Key[] = []
    for (let i = 0; i < 3; i++) {
      const mesh = Ed25519KeyPair.generate()
      const [key, value] = stored(1, mesh)
      await datastore.asSender(mesh.peerId().toString(), () => datastore.put(key, value))
      honest.push(key)
    }
    const padded = {
      ...content,
      multiaddrs: Array.from({ length: 28 }, (_, i) => `/dns4/${'a'.repeat(230)}${i}/tcp/1`),
    }
    for (let i = 0; i < 10; i++) {
      const fresh = Ed25519KeyPair.generate()
      const dhtKey = meshRecordKey(fresh.did)
      const record = new DhtRecord(dhtKey, encodeMeshRecord(createMeshRecord(fresh, padded, 1)), new Date())
      assert.ok(record.serialize().byteLength > 7_000)
      await datastore.asSender('mallory', () => datastore.put(dhtRecordKey(dhtKey), record.serialize()))
    }
    assert.ok(datastore.recordBytes <= 20_000, `${datastore.recordBytes} bytes held`)
    for (const key of honest) assert.equal(await datastore.has(key), true)
    assert.equal(datastore.records, 5, "the honest three and two of mallory's")
  })

  it('drops expired records and provider records at load and by a sweep', async (t) => {
    const store = await openStore(t)
    const hour = 3_600_000
    const now = Date.now()
    const persist = store.sublevel<string>('dht')
    const first = createMeshDatastore({ persist })
    const [freshKey, fresh] = stored(1)
    const [oldKey, old] = stored(1, undefined, { ts: now - 40 * hour, received: new Date(now - 40 * hour) })
    await first.put(freshKey, fresh)
    await first.put(oldKey, old)
    await first.put(providerKey('bafyold', 'peerA'), varint(now - 40 * hour))
    await first.put(providerKey('bafynew', 'peerA'), varint(now))
    // a record received just now but signed 49 h ago (a replay of a dead mesh's record) has expired
    const [staleKey, stale] = stored(1, undefined, { ts: now - 49 * hour })
    await assert.rejects(Promise.resolve(first.put(staleKey, stale)), { code: 'MESH_REPLAY' })
    await first.flush()

    // ten hours later the node restarts: 50 h old keys are not loaded, and go from disk
    const later = now + 10 * hour
    const second = createMeshDatastore({ persist })
    assert.equal(await second.load(later), 2)
    assert.equal(await second.has(oldKey), false)
    assert.equal(await second.has(freshKey), true)
    assert.equal(await second.has(providerKey('bafyold', 'peerA')), false)
    assert.equal(second.providers, 1)
    await second.flush()
    assert.equal((await persist.keys().all()).length, 2)

    // and two days on, a sweep drops the rest
    assert.equal(second.sweep(now + 49 * hour), 2)
    assert.equal(second.records + second.providers, 0)
    await second.flush()
    assert.equal((await persist.keys().all()).length, 0)
  })

  it('bounds provider records per providing peer, per CID and in total; the flooder pays', async () => {
    const datastore = createMeshDatastore({ maxProviders: 8, maxProvidersPerPeer: 4, maxProvidersPerKey: 3 })
    const at = varint(Date.now())
    // mallory provides 50 random CIDs: she keeps her last four
    for (let i = 0; i < 50; i++) await datastore.put(providerKey(`bafyjunk${i}`, 'mallory'), at)
    assert.equal(datastore.providers, 4)
    assert.equal(await datastore.has(providerKey('bafyjunk49', 'mallory')), true)
    // the directory CID: at most three providers, the least recently renewed goes
    for (const peer of ['alice', 'bob', 'carol']) await datastore.put(providerKey('bafydir', peer), at)
    await datastore.put(providerKey('bafydir', 'alice'), at) // alice renews
    await datastore.put(providerKey('bafydir', 'dave'), at)
    assert.equal(await datastore.has(providerKey('bafydir', 'bob')), false)
    assert.equal(await datastore.has(providerKey('bafydir', 'alice')), true)
    // full (4 + 3 + 1 below): a newcomer evicts mallory's, the largest holder's
    await datastore.put(providerKey('bafyother', 'erin'), at)
    assert.equal(datastore.providers, 8)
    await datastore.put(providerKey('bafyother2', 'frank'), at)
    assert.equal(datastore.providers, 8)
    assert.equal(await datastore.has(providerKey('bafyother2', 'frank')), true)
    assert.equal(await datastore.has(providerKey('bafyother', 'erin')), true)
    assert.equal(await datastore.has(providerKey('bafyjunk46', 'mallory')), false, "mallory's oldest went")
  })
})
