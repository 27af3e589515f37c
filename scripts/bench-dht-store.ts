/**
 * Heap per DHT key and put rate of the guarded store (RecordGuardDatastore, with its
 * quotas) against a plain MemoryDatastore: provider records of random CIDs and mesh
 * records of fresh keys, as a flood would bring them.
 *
 *   node --expose-gc scripts/bench-dht-store.ts [keys=20000]
 */
import { randomBytes } from 'node:crypto'
import { Record as DhtRecord } from '@libp2p/kad-dht'
import { MemoryDatastore } from 'datastore-core'
import { Key } from 'interface-datastore'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { Ed25519KeyPair } from '../src/identity/index.ts'
import {
  createMeshDatastore,
  createMeshRecord,
  dhtRecordKey,
  encodeMeshRecord,
  meshRecordKey,
} from '../src/p2p/index.ts'

const count = Number(process.argv[2] ?? 20_000)
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with --expose-gc')

function varint(value: number): Uint8Array {
  const bytes: number[] = []
  while (value >= 0x80) {
    bytes.push((value % 0x80) | 0x80)
    value = Math.floor(value / 0x80)
  }
  bytes.push(value)
  return Uint8Array.from(bytes)
}

const peers = Array.from({ length: 100 }, () => Ed25519KeyPair.generate().peerId().toString())
const providers = Array.from({ length: count }, (_, i) => {
  const cid = uint8ArrayToString(randomBytes(34), 'base32')
  return {
    key: new Key(`/dht/provider/${cid}/${peers[i % peers.length]}`),
    peer: peers[i % peers.length] as string,
  }
})
const recordKeys = Array.from({ length: Math.min(count, 5_000) }, () => {
  const key = Ed25519KeyPair.generate()
  const dhtKey = meshRecordKey(key.did)
  const value = new DhtRecord(
    dhtKey,
    encodeMeshRecord(
      createMeshRecord(
        key,
        {
          name: 'bench',
          multiaddrs: ['/ip4/127.0.0.1/tcp/4001'],
          protocolVersions: [],
          version: '0.1.0',
          members: 1,
          bots: 0,
          rooms: 0,
        },
        1,
      ),
    ),
    new Date(),
  ).serialize()
  return { key: dhtRecordKey(dhtKey), value, peer: peers[Math.floor(Math.random() * peers.length)] as string }
})

async function measure(
  name: string,
  make: () => MemoryDatastore,
  asSender: (ds: MemoryDatastore, peer: string, fn: () => unknown) => unknown,
) {
  gc?.()
  const before = process.memoryUsage().heapUsed
  const ds = make()
  const at = varint(Date.now())
  let t = performance.now()
  for (const { key, peer } of providers) await asSender(ds, peer, () => ds.put(key, at))
  const providerMs = performance.now() - t
  gc?.()
  const afterProviders = process.memoryUsage().heapUsed
  t = performance.now()
  for (const { key, value, peer } of recordKeys) await asSender(ds, peer, () => ds.put(key, value))
  const recordMs = performance.now() - t
  gc?.()
  const afterRecords = process.memoryUsage().heapUsed
  console.log(
    `${name}: provider records ${Math.round((afterProviders - before) / providers.length)} B each, ${Math.round(providers.length / (providerMs / 1000))}/s; ` +
      `mesh records ${Math.round((afterRecords - afterProviders) / recordKeys.length)} B each, ${Math.round(recordKeys.length / (recordMs / 1000))}/s`,
  )
  return ds
}

const unlimited = {
  maxProviders: 1e9,
  maxProvidersPerPeer: 1e9,
  maxProvidersPerKey: 1e9,
  maxRecords: 1e9,
  maxRecordsPerPeer: 1e9,
}
const keep: unknown[] = []
keep.push(
  await measure(
    'plain MemoryDatastore',
    () => new MemoryDatastore(),
    (_ds, _peer, fn) => fn(),
  ),
)
keep.push(
  await measure(
    'guarded, quotas never reached',
    () => createMeshDatastore(unlimited),
    (ds, peer, fn) => (ds as ReturnType<typeof createMeshDatastore>).asSender(peer, fn as () => unknown),
  ),
)
keep.push(
  await measure(
    'guarded, defaults (every put past 64/peer evicts)',
    () => createMeshDatastore(),
    (ds, peer, fn) => (ds as ReturnType<typeof createMeshDatastore>).asSender(peer, fn as () => unknown),
  ),
)
