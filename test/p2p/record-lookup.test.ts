import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { PeerId } from '@libp2p/interface'
import { Record as DhtRecord, type QueryEvent, type SingleKadDHT } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Datastore } from 'interface-datastore'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import {
  createMeshRecord,
  dhtRecordKey,
  type MeshRecord,
  meshRecordKey,
  type NeighbourGetOptions,
} from '../../src/p2p/index.ts'
import { RecordLookup } from '../../src/p2p/record-lookup.ts'
import { captureLogger, RECORD_CONTENT, startHost, waitFor } from './nodes.ts'

/** Writes `bytes` as the DHT record filed under `did` straight into a node's store. */
async function plant(datastore: Datastore | undefined, did: string, bytes: Uint8Array): Promise<void> {
  assert.ok(datastore !== undefined)
  const key = meshRecordKey(did)
  // the guard refuses a record worse than the one held: plant over an empty slot
  await datastore.delete(dhtRecordKey(key))
  await datastore.put(dhtRecordKey(key), new DhtRecord(key, bytes, new Date()).serialize())
}

const encode = (record: object): Uint8Array => new TextEncoder().encode(JSON.stringify(record))

/** alice's real record, and mallory's copy of it: a higher seq, alice's did, mallory's signature. */
function records(): { alice: Ed25519KeyPair; real: MeshRecord; forged: MeshRecord } {
  const alice = Ed25519KeyPair.generate()
  const mallory = Ed25519KeyPair.generate()
  const real = createMeshRecord(alice, { ...RECORD_CONTENT, name: 'alpha' }, 3)
  const signed = createMeshRecord(mallory, { ...RECORD_CONTENT, name: 'alpha-forged' }, 13)
  return { alice, real, forged: { ...signed, did: real.did, peerId: real.peerId } }
}

const noNeighbours = { get: async () => undefined }

describe('record lookup', () => {
  it('held() returns the copy this node holds only when it is valid', async (t) => {
    const { alice, real, forged } = records()
    const host = await startHost(t)
    const { logger } = captureLogger()
    const lookup = new RecordLookup({
      libp2p: host.libp2p,
      neighbours: noNeighbours,
      logger,
      ...(host.datastore !== undefined ? { datastore: host.datastore } : {}),
    })
    assert.equal(await lookup.held(alice.did), undefined, 'nothing held')
    await plant(host.datastore, alice.did, encode(forged))
    assert.equal(await lookup.held(alice.did), undefined, 'signed by another key')
    await plant(host.datastore, alice.did, new TextEncoder().encode('{"did":'))
    assert.equal(await lookup.held(alice.did), undefined, 'not a record')
    await plant(host.datastore, alice.did, encode(real))
    assert.equal((await lookup.held(alice.did))?.signature, real.signature)
    const without = new RecordLookup({ libp2p: host.libp2p, neighbours: noNeighbours, logger })
    assert.equal(await without.held(alice.did), undefined, 'no datastore, nothing held')
  })

  it('fetch() finds the record a peer holds', async (t) => {
    const { alice, real } = records()
    const holder = await startHost(t)
    const asker = await startHost(t)
    await asker.libp2p.dial(holder.libp2p.getMultiaddrs())
    const table = (asker.libp2p.services.dht as unknown as SingleKadDHT).routingTable
    await waitFor(() => table.size >= 1, 'the holder in the asker routing table')
    const { logger } = captureLogger()
    const lookup = new RecordLookup({ libp2p: asker.libp2p, neighbours: noNeighbours, logger })
    await plant(holder.datastore, alice.did, encode(real))
    const found = await lookup.fetch(alice.did, { signal: AbortSignal.timeout(10_000) })
    assert.equal(found?.record.signature, real.signature)
    assert.equal(found?.via, 'dht')
    assert.equal(found?.complete, true)
    assert.equal(found?.hops, 1, 'answered by a peer of the routing table')
  })

  // A real kad-dht peer never serves a record its validator refuses, so the answers of
  // a hostile peer are scripted here: the query events kad-dht's get would emit.
  it('fetch() drops a forged answer, whatever its seq, and keeps the valid one', async (t) => {
    const { alice, real, forged } = records()
    const host = await startHost(t)
    const key = meshRecordKey(alice.did)
    const mallory = peerIdFromString(Ed25519KeyPair.generate().peerId().toString())
    const honest = peerIdFromString(Ed25519KeyPair.generate().peerId().toString())
    const answer = (from: PeerId, record: object) =>
      ({
        name: 'PEER_RESPONSE',
        messageName: 'GET_VALUE',
        from,
        closer: [],
        record: new DhtRecord(key, encode(record), new Date()),
      }) as unknown as QueryEvent
    let answers: QueryEvent[] = []
    const dht = {
      async *get(): AsyncGenerator<QueryEvent> {
        yield* answers
      },
    }
    const libp2p = { peerId: host.libp2p.peerId, services: { dht } } as unknown as typeof host.libp2p
    const { logger, lines } = captureLogger()
    const lookup = new RecordLookup({ libp2p, neighbours: noNeighbours, logger })

    answers = [answer(mallory, forged)]
    assert.equal(await lookup.fetch(alice.did), undefined, 'only a forged copy out there')
    assert.ok(lines.some((l) => l.event === 'discovery.record_invalid' && l.did === alice.did))

    answers = [answer(mallory, forged), answer(honest, real), answer(mallory, forged)]
    const full = await lookup.fetch(alice.did)
    assert.equal(full?.record.signature, real.signature)
    assert.equal(full?.complete, true)
    const first = await lookup.fetch(alice.did, { first: true })
    assert.equal(first?.record.signature, real.signature)
    assert.equal(first?.complete, false, 'ended at the first valid answer')
    const past = await lookup.fetch(alice.did, { first: true, newerThan: real.seq })
    assert.equal(past?.complete, true, 'an answer no newer than the held one does not end the query')
  })

  it('fetch({first}) takes a neighbour answer only when the record validates and is newer', async (t) => {
    const { alice, real, forged } = records()
    const host = await startHost(t)
    const { logger } = captureLogger()
    // A neighbour that answers what it is given, through the parse the lookup hands it.
    let answer = encode(forged)
    const neighbours = {
      get: async <T>(_key: Uint8Array, options: NeighbourGetOptions<T>) => {
        try {
          const value = await options.parse(answer)
          return value === undefined ? undefined : { value, from: host.libp2p.peerId, asked: 1 }
        } catch {
          return undefined
        }
      },
    }
    // behind the neighbours, a DHT with nothing to say
    const dht = { async *get(): AsyncGenerator<QueryEvent> {} }
    const libp2p = { peerId: host.libp2p.peerId, services: { dht } } as unknown as typeof host.libp2p
    const lookup = new RecordLookup({ libp2p, neighbours, logger })
    assert.equal(await lookup.fetch(alice.did, { first: true }), undefined, 'the forged answer is refused')
    answer = encode(real)
    const early = await lookup.fetch(alice.did, { first: true })
    assert.equal(early?.via, 'neighbours')
    assert.equal(early?.record.signature, real.signature)
    assert.equal(
      await lookup.fetch(alice.did, { first: true, newerThan: real.seq }),
      undefined,
      'no newer than what is held: passed on',
    )
  })
})
