import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { Record as DhtRecord } from '@libp2p/kad-dht'
import { MemoryDatastore } from 'datastore-core'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import {
  createMeshLibp2p,
  createMeshRecord,
  dhtRecordKey,
  encodeMeshRecord,
  type MeshLibp2p,
  meshRecordKey,
  parseMeshRecord,
} from '../../src/p2p/index.ts'
import { RECORD_CONTENT, startHost, waitFor } from './nodes.ts'

const content = RECORD_CONTENT

/** Sends a PUT_VALUE through `from`'s DHT; returns the peers that accepted it. */
async function putFrom(from: MeshLibp2p, key: Uint8Array, value: Uint8Array): Promise<string[]> {
  const accepted: string[] = []
  for await (const event of from.services.dht.put(key, value, { signal: AbortSignal.timeout(20_000) })) {
    if (event.name === 'PEER_RESPONSE' && event.messageName === 'PUT_VALUE')
      accepted.push(event.from.toString())
  }
  return accepted
}

/** The seq of the record `datastore` holds for `key` (kad-dht's default `/dht/record/` layout). */
async function storedSeq(datastore: MemoryDatastore, key: Uint8Array): Promise<number> {
  const raw = await datastore.get(dhtRecordKey(key))
  return parseMeshRecord(DhtRecord.deserialize(raw).value).seq
}

async function connect(a: MeshLibp2p, b: MeshLibp2p): Promise<void> {
  await a.dial(b.getMultiaddrs())
  // kad-dht only queries once the peer is in its routing table (after identify)
  await waitFor(async () => {
    try {
      for await (const event of a.services.dht.getClosestPeers(b.peerId.toMultihash().bytes, {
        signal: AbortSignal.timeout(500),
      })) {
        if (event.name === 'FINAL_PEER' && event.peer.id.equals(b.peerId)) return true
      }
    } catch {
      // not in the routing table yet: the query waited for a peer and timed out
    }
    return false
  }, 'routing table')
}

describe('mesh records in the DHT', () => {
  const alice = Ed25519KeyPair.generate()
  const key = meshRecordKey(alice.did)
  const seq1 = encodeMeshRecord(createMeshRecord(alice, content, 1))
  const seq2 = encodeMeshRecord(createMeshRecord(alice, content, 2))
  const seq3 = encodeMeshRecord(createMeshRecord(alice, content, 3))

  it('a replayed lower-seq record never replaces a higher one on a mesh node', async (t) => {
    const holder = await startHost(t)
    // mallory runs stock kad-dht: her own store takes anything, she sends what she likes
    const mallory = await startHost(t, { dht: 'stock' })
    await connect(mallory.libp2p, holder.libp2p)
    const holderStore = holder.datastore as MemoryDatastore

    assert.deepEqual(await putFrom(mallory.libp2p, key, seq2), [holder.libp2p.peerId.toString()])
    assert.equal(await storedSeq(holderStore, key), 2)

    // alice's old record, validly signed, replayed
    assert.deepEqual(await putFrom(mallory.libp2p, key, seq1), [])
    assert.equal(await storedSeq(holderStore, key), 2)

    // the sentinel: a newer record still goes through the same path
    assert.deepEqual(await putFrom(mallory.libp2p, key, seq3), [holder.libp2p.peerId.toString()])
    assert.equal(await storedSeq(holderStore, key), 3)
  })

  it('a node refuses to store its own lower-seq put', async (t) => {
    const node = await startHost(t)
    const store = node.datastore as MemoryDatastore
    const put = async (value: Uint8Array) => {
      for await (const _ of node.libp2p.services.dht.put(key, value, { signal: AbortSignal.timeout(200) })) {
        // drain
      }
    }
    await put(seq2).catch(() => {}) // alone: the network part times out, the local store does not
    assert.equal(await storedSeq(store, key), 2)
    await assert.rejects(put(seq1), { code: 'MESH_REPLAY' })
    assert.equal(await storedSeq(store, key), 2)
  })

  it('a record signed by the wrong key is refused by a DHT node', async (t) => {
    const holder = await startHost(t)
    const mallory = await startHost(t, { dht: 'stock' })
    await connect(mallory.libp2p, holder.libp2p)
    const mallorysKey = Ed25519KeyPair.generate()
    // a perfectly valid record of mallory's own, put under alice's key
    const forged = encodeMeshRecord(createMeshRecord(mallorysKey, { ...content, name: 'alice-mesh' }, 100))
    assert.deepEqual(await putFrom(mallory.libp2p, key, forged), [])
    const recordKey = dhtRecordKey(key)
    assert.equal(await (holder.datastore as MemoryDatastore).has(recordKey), false)
    // the sentinel: alice's genuine record takes the same path and is stored
    assert.deepEqual(await putFrom(mallory.libp2p, key, seq1), [holder.libp2p.peerId.toString()])
    assert.equal(await storedSeq(holder.datastore as MemoryDatastore, key), 1)
  })

  it('stock kad-dht lets a replayed lower seq overwrite a stored record (why the guard exists)', async (t) => {
    const plain = new MemoryDatastore()
    const holder = await createMeshLibp2p({ key: Ed25519KeyPair.generate(), dht: 'stock', datastore: plain })
    t.after(() => holder.stop())
    const mallory = await startHost(t, { dht: 'stock' })
    await connect(mallory.libp2p, holder)
    await putFrom(mallory.libp2p, key, seq2)
    assert.equal(await storedSeq(plain, key), 2)
    await putFrom(mallory.libp2p, key, seq1)
    assert.equal(await storedSeq(plain, key), 1)
  })
})

/** Provider records `datastore` holds, as kad-dht lays them out: `/dht/provider/<cid>/<peer>`. */
async function providerKeys(datastore: MemoryDatastore): Promise<string[]> {
  const keys: string[] = []
  for await (const key of datastore.queryKeys({ prefix: '/dht/provider/' })) keys.push(key.toString())
  return keys
}

/** The CID part of a provider record key: base32 of its multihash. */
function multihashKey(cid: CID): string {
  return uint8ArrayToString(cid.multihash.bytes, 'base32')
}

async function randomCid(): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(randomBytes(32)))
}

/** Provides `cid` through `from`'s DHT (ADD_PROVIDER to the closest peers it knows). */
async function provideFrom(from: MeshLibp2p, cid: CID): Promise<void> {
  for await (const _ of from.services.dht.provide(cid, { signal: AbortSignal.timeout(20_000) })) {
    // drain
  }
}

describe('a DHT node under a flood', () => {
  it('an ADD_PROVIDER flood of random CIDs from one peer stays within its quota; an honest provide is still taken and found', async (t) => {
    const victim = await startHost(t, { limits: { maxProviders: 12, maxProvidersPerPeer: 4 } })
    const victimStore = victim.datastore as MemoryDatastore
    const mallory = await startHost(t, { dht: 'stock' })
    await connect(mallory.libp2p, victim.libp2p)
    const malloryId = mallory.libp2p.peerId.toString()
    for (let round = 0; round < 5; round++) {
      // an attacker does not wait for answers: a provide that fails under load is just one less
      await Promise.allSettled(
        Array.from({ length: 8 }, async () => provideFrom(mallory.libp2p, await randomCid())),
      )
    }
    // ADD_PROVIDER has no answer: wait for mallory's last one to land before counting
    const last = await randomCid()
    await provideFrom(mallory.libp2p, last)
    const lastKey = `${multihashKey(last)}/${malloryId}`
    await waitFor(
      async () => (await providerKeys(victimStore)).some((key) => key.endsWith(lastKey)),
      'the flood',
    )
    const held = await providerKeys(victimStore)
    const mallorys = held.filter((key) => key.endsWith(`/${malloryId}`))
    assert.ok(mallorys.length <= 4, `the victim holds ${mallorys.length} of mallory's 41 provider records`)

    // the sentinel: an honest mesh provides after the flood, and a third peer finds it there
    const alice = await startHost(t)
    await connect(alice.libp2p, victim.libp2p)
    const cid = await randomCid()
    await provideFrom(alice.libp2p, cid)
    const aliceId = alice.libp2p.peerId.toString()
    await waitFor(
      async () => (await providerKeys(victimStore)).some((key) => key.endsWith(`/${aliceId}`)),
      "alice's provide at the victim",
    )
    const bob = await startHost(t)
    await connect(bob.libp2p, victim.libp2p)
    const found: string[] = []
    for await (const event of bob.libp2p.services.dht.findProviders(cid, {
      signal: AbortSignal.timeout(20_000),
    })) {
      // the lookup asks every peer near the key; the victim's own answer is what counts
      if (event.name === 'PEER_RESPONSE' && event.from.equals(victim.libp2p.peerId)) {
        found.push(...event.providers.map((peer) => peer.id.toString()))
      }
    }
    assert.ok(found.includes(aliceId), "bob finds alice's provide at the victim")
  })

  it('a PUT_VALUE flood of validly signed junk records fills the store; an honest new mesh record is still stored and found', async (t) => {
    const victim = await startHost(t, { limits: { maxRecords: 6, maxRecordsPerPeer: 2 } })
    const victimStore = victim.datastore as MemoryDatastore
    const junk: Uint8Array[] = []
    const heldJunk = async () => {
      let held = 0
      for (const dhtKey of junk) if (await victimStore.has(dhtRecordKey(dhtKey))) held++
      return held
    }
    // three sybils, each putting records of fresh keys it generated: every one validly signed
    for (let i = 0; i < 3; i++) {
      const mallory = await startHost(t, { dht: 'stock' })
      await connect(mallory.libp2p, victim.libp2p)
      for (let j = 0; j < 4; j++) {
        const fresh = Ed25519KeyPair.generate()
        const dhtKey = meshRecordKey(fresh.did)
        junk.push(dhtKey)
        await putFrom(mallory.libp2p, dhtKey, encodeMeshRecord(createMeshRecord(fresh, content, 1)))
      }
      // each record is charged to the peer that sent it, not to its (fresh) signer
      assert.equal(await heldJunk(), 2 * (i + 1), 'a sybil keeps its last two')
    }
    assert.equal(await heldJunk(), 6, 'the flood filled the store')

    // the sentinel: a new mesh publishes its own record, and a fourth peer looks it up
    const alice = await startHost(t)
    await connect(alice.libp2p, victim.libp2p)
    const aliceKey = meshRecordKey(alice.key.did)
    const aliceRecord = encodeMeshRecord(createMeshRecord(alice.key, { ...content, name: 'alice' }, 1))
    const accepted = await putFrom(alice.libp2p, aliceKey, aliceRecord)
    assert.ok(accepted.includes(victim.libp2p.peerId.toString()), 'the victim took the honest record')
    assert.equal(await storedSeq(victimStore, aliceKey), 1)
    assert.equal(await heldJunk(), 5, 'one junk record made room')

    const bob = await startHost(t)
    await connect(bob.libp2p, victim.libp2p)
    let found: Uint8Array | undefined
    for await (const event of bob.libp2p.services.dht.get(aliceKey, {
      signal: AbortSignal.timeout(20_000),
    })) {
      // the lookup asks every peer near the key; the victim's own answer is what counts
      if (event.name === 'PEER_RESPONSE' && event.from.equals(victim.libp2p.peerId) && event.record) {
        found = Uint8Array.from(event.record.value)
      }
    }
    assert.deepEqual(found, aliceRecord, "bob finds alice's record at the victim")
  })
})
