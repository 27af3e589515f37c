import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import type { Stream } from '@libp2p/interface'
import { Record as DhtRecord } from '@libp2p/kad-dht'
import { lpStream } from '@libp2p/utils'
import { compare } from 'uint8arrays/compare'
import { xor } from 'uint8arrays/xor'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { createLogger } from '../../src/log.ts'
import {
  checkMeshRecord,
  createMeshRecord,
  dhtRecordKey,
  encodeMeshRecord,
  kadIdOf,
  MESH_RECORD_PROTOCOL,
  type MeshLibp2p,
  type MeshRecord,
  meshRecordKey,
  NeighbourRecords,
} from '../../src/p2p/index.ts'
import type { RecordGuardDatastore } from '../../src/p2p/record-datastore.ts'
import { startHost, startMesh, waitFor } from './nodes.ts'

const logger = createLogger({ level: 'silent' })

function recordOf(key: Ed25519KeyPair, seq = 1): MeshRecord {
  return createMeshRecord(
    key,
    {
      name: 'alpha',
      multiaddrs: ['/ip4/127.0.0.1/tcp/4001'],
      protocolVersions: [],
      version: '0.1.0',
      members: 1,
      bots: 0,
      rooms: 2,
    },
    seq,
  )
}

/** Files `value` under `key` in a datastore the way kad-dht does. */
async function hold(datastore: RecordGuardDatastore | undefined, key: Uint8Array, value: Uint8Array) {
  await datastore?.put(dhtRecordKey(key), new DhtRecord(key, value, new Date()).serialize())
}

/** A host whose record protocol answers every request with `reply` (or never, with `stall`). */
async function hostileHost(t: TestContext, reply: Uint8Array | 'stall') {
  const host = await startHost(t)
  await host.libp2p.handle(MESH_RECORD_PROTOCOL, async (stream: Stream) => {
    const lp = lpStream(stream)
    try {
      for (;;) {
        await lp.read()
        if (reply !== 'stall') await lp.write(reply)
      }
    } catch {
      stream.abort(new Error('bye'))
    }
  })
  return host
}

async function startAsker(t: TestContext, libp2p: MeshLibp2p, datastore?: RecordGuardDatastore) {
  const records = new NeighbourRecords({ libp2p, logger, ...(datastore ? { datastore } : {}) })
  await records.start()
  t.after(() => records.stop())
  return records
}

function recordStreams(libp2p: MeshLibp2p): number {
  return libp2p
    .getConnections()
    .flatMap((c) => c.streams)
    .filter((s) => s.protocol === MESH_RECORD_PROTOCOL).length
}

describe('records from connected neighbours', () => {
  it('answers from the holder over one kept stream, and an empty answer for what it does not hold', async (t) => {
    const owner = Ed25519KeyPair.generate()
    const record = recordOf(owner)
    const key = meshRecordKey(owner.did)
    const holder = await startHost(t)
    await startAsker(t, holder.libp2p, holder.datastore)
    await hold(holder.datastore, key, encodeMeshRecord(record))

    const asker = await startHost(t)
    const records = await startAsker(t, asker.libp2p)
    await asker.libp2p.dial(holder.libp2p.getMultiaddrs())
    await waitFor(() => records.size === 1, 'the holder to be known as a neighbour')

    for (let i = 0; i < 5; i++) {
      const answer = await records.get(key, { parse: (bytes) => checkMeshRecord(key, bytes) })
      assert.equal(answer?.value.signature, record.signature)
      assert.equal(answer?.from.toString(), holder.libp2p.peerId.toString())
    }
    // five exchanges, one stream (opened when the neighbour was identified)
    assert.equal(recordStreams(asker.libp2p), 1)

    const other = meshRecordKey(Ed25519KeyPair.generate().did)
    assert.equal(await records.get(other, { parse: (bytes) => checkMeshRecord(other, bytes) }), undefined)
    // only mesh record keys are asked for at all
    assert.equal(
      await records.get(new TextEncoder().encode('/pk/abc'), { parse: () => 'anything' }),
      undefined,
    )
  })

  it('passes over forged, garbage and oversized answers and still takes the honest one', async (t) => {
    const owner = Ed25519KeyPair.generate()
    const record = recordOf(owner, 3)
    const key = meshRecordKey(owner.did)
    const forged = encodeMeshRecord({ ...recordOf(Ed25519KeyPair.generate(), 9), did: owner.did })
    const hostile = await Promise.all([
      hostileHost(t, forged),
      hostileHost(t, new TextEncoder().encode('{"not":"a record"}')),
      hostileHost(t, new Uint8Array(64 * 1024).fill(7)),
    ])
    const asker = await startHost(t)
    const records = await startAsker(t, asker.libp2p)
    for (const h of hostile) await asker.libp2p.dial(h.libp2p.getMultiaddrs())
    await waitFor(() => records.size === hostile.length, 'the hostile hosts to be known as neighbours')

    const parse = (bytes: Uint8Array) => checkMeshRecord(key, bytes)
    assert.equal(await records.get(key, { parse }), undefined, 'no hostile answer is taken')

    const honest = await startHost(t)
    await startAsker(t, honest.libp2p, honest.datastore)
    await hold(honest.datastore, key, encodeMeshRecord(record))
    await asker.libp2p.dial(honest.libp2p.getMultiaddrs())
    await waitFor(() => records.size === hostile.length + 1, 'the honest host to be known')
    const answer = await records.get(key, { parse })
    assert.equal(answer?.value.seq, 3)
    assert.equal(answer?.value.signature, record.signature)
  })

  it('asks the next neighbour when the closest one stalls (a hedged request)', async (t) => {
    const owner = Ed25519KeyPair.generate()
    const key = meshRecordKey(owner.did)
    const target = kadIdOf(key)
    const distance = (libp2p: MeshLibp2p) => xor(kadIdOf(libp2p.peerId.toMultihash().bytes), target)
    const honest = await startHost(t)
    await startAsker(t, honest.libp2p, honest.datastore)
    await hold(honest.datastore, key, encodeMeshRecord(recordOf(owner)))
    // a staller closer to the key than the honest holder, so it is asked first
    let staller = await hostileHost(t, 'stall')
    while (compare(distance(staller.libp2p), distance(honest.libp2p)) > 0) {
      await staller.libp2p.stop()
      staller = await hostileHost(t, 'stall')
    }
    const asker = await startHost(t)
    const records = await startAsker(t, asker.libp2p)
    await asker.libp2p.dial(staller.libp2p.getMultiaddrs())
    await asker.libp2p.dial(honest.libp2p.getMultiaddrs())
    await waitFor(() => records.size === 2, 'both to be known as neighbours')
    // well under the 5 s an exchange may take: the staller does not hold the lookup
    const answer = await records.get(key, {
      parse: (bytes) => checkMeshRecord(key, bytes),
      signal: AbortSignal.timeout(1_000),
    })
    assert.equal(answer?.from.toString(), honest.libp2p.peerId.toString())
    assert.equal(answer?.asked, 2)
  })

  it("refuses requests that are not a mesh record key or over a peer's rate, and keeps serving the others", async (t) => {
    const owner = Ed25519KeyPair.generate()
    const key = meshRecordKey(owner.did)
    const server = await startHost(t)
    await startAsker(t, server.libp2p, server.datastore)
    await hold(server.datastore, key, encodeMeshRecord(recordOf(owner)))
    const client = await startHost(t)
    await client.libp2p.dial(server.libp2p.getMultiaddrs())

    const ask = async (request: Uint8Array): Promise<Uint8Array> => {
      const stream = await client.libp2p.dialProtocol(server.libp2p.peerId, MESH_RECORD_PROTOCOL)
      const lp = lpStream(stream, { maxDataLength: 8192 })
      await lp.write(request)
      return (await lp.read()).subarray()
    }
    await assert.rejects(ask(new TextEncoder().encode('/pk/abc')), 'another namespace ends the stream')
    await assert.rejects(ask(new Uint8Array(300).fill(47)), 'an oversized request ends the stream')
    // a peer that floods requests has its stream ended at its budget (100 a second)
    const flood = await client.libp2p.dialProtocol(server.libp2p.peerId, MESH_RECORD_PROTOCOL)
    const floodLp = lpStream(flood, { maxDataLength: 8192 })
    let answered = 0
    await assert.rejects(async () => {
      for (let i = 0; i < 500; i++) {
        await floodLp.write(key)
        await floodLp.read()
        answered++
      }
    })
    assert.ok(answered >= 50 && answered <= 100, `${answered} answered before the stream ended`)
    // other peers are still served
    const other = await startHost(t)
    await other.libp2p.dial(server.libp2p.getMultiaddrs())
    const otherStream = await other.libp2p.dialProtocol(server.libp2p.peerId, MESH_RECORD_PROTOCOL)
    const otherLp = lpStream(otherStream, { maxDataLength: 8192 })
    await otherLp.write(key)
    assert.ok((await otherLp.read()).byteLength > 0)
    await new Promise((resolve) => setTimeout(resolve, 1_100))
    const stored = (await server.datastore?.get(dhtRecordKey(key))) as Uint8Array
    assert.deepEqual(
      Uint8Array.from(await ask(key)),
      Uint8Array.from(DhtRecord.deserialize(stored).value),
      'the record is still served',
    )
  })

  it('a neighbour that stalls costs the lookup a bounded wait; the DHT walk still finds the record', async (t) => {
    const a = await startMesh(t, { name: 'alpha' })
    const c = await startMesh(t, { name: 'charlie', bootstrap: [a.addr()] })
    await waitFor(() => c.discovery.get(a.key.did), 'C to find A')
    const quick = await c.discovery.lookup(a.key.did, { first: true })
    assert.equal(quick.via, 'neighbours')
    assert.equal(quick.hops, 1)

    // A stops answering the record protocol (its streams end with it); a hostile
    // neighbour takes every request and never answers
    await a.libp2p.unhandle(MESH_RECORD_PROTOCOL)
    for (const stream of a.libp2p.getConnections().flatMap((conn) => conn.streams)) {
      if (stream.protocol === MESH_RECORD_PROTOCOL) stream.abort(new Error('gone'))
    }
    const staller = await hostileHost(t, 'stall')
    await c.libp2p.dial(staller.libp2p.getMultiaddrs())
    for (let i = 0; i < 2; i++) {
      const walked = await c.discovery.lookup(a.key.did, { first: true, signal: AbortSignal.timeout(10_000) })
      assert.equal(walked.via, 'dht')
      assert.equal(walked.record.did, a.key.did)
      assert.equal(walked.record.name, 'alpha')
    }
  })
})
