import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { Record as DhtRecord, type SingleKadDHT } from '@libp2p/kad-dht'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { createMeshRecord, type DiscoveredMesh, dhtRecordKey, meshRecordKey } from '../../src/p2p/index.ts'
import { startHost, startMesh, type TestMesh, waitFor } from './nodes.ts'

async function listed(mesh: TestMesh, did: string): Promise<DiscoveredMesh | undefined> {
  return (await mesh.discovery.list()).find((m) => m.did === did)
}

/** A registry stand-in serving `GET /api/meshes/public` in pages of one. */
async function fakeRegistry(
  t: TestContext,
  meshes: () => object[],
): Promise<{ url: string; hits: string[] }> {
  const hits: string[] = []
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    hits.push(url.pathname + url.search)
    if (url.pathname !== '/api/meshes/public') return void res.writeHead(404).end()
    const all = meshes()
    const at = Number(url.searchParams.get('cursor') ?? '0')
    const nextCursor = at + 1 < all.length ? String(at + 1) : null
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ meshes: all.slice(at, at + 1), nextCursor }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise((resolve) => server.close(resolve)))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits }
}

describe('mesh discovery', () => {
  it('forgets a mesh not heard of for forgetAfterMs, and finds it again when it returns', async (t) => {
    const a = await startMesh(t, { name: 'alpha', intervalMs: 200 })
    const b = await startMesh(t, {
      name: 'bravo',
      intervalMs: 200,
      forgetAfterMs: 1_500,
      bootstrap: [a.addr()],
    })
    await waitFor(() => listed(b, a.key.did), 'B to find A')
    await a.stop()
    await waitFor(async () => (await listed(b, a.key.did)) === undefined, 'B to forget A', 10_000)
    assert.ok(
      b.lines.some((l) => l.event === 'discovery.mesh_forgotten' && l.did === a.key.did),
      'the forgetting is logged',
    )
    assert.equal(await b.discovery.get(a.key.did), undefined)
    // a mesh B still hears from is never forgotten: A comes back, same key and store
    const back = await startMesh(t, {
      name: 'alpha',
      key: a.key,
      storePath: a.store.path,
      intervalMs: 200,
      bootstrap: [b.addr()],
    })
    await waitFor(() => listed(b, back.key.did), 'B to find A again')
    await new Promise((resolve) => setTimeout(resolve, 2_000))
    assert.ok(await listed(b, a.key.did), 'a mesh that keeps publishing stays listed')
  })

  it('C, knowing only A, discovers A and B through the DHT directory', async (t) => {
    const a = await startMesh(t, { name: 'alpha', content: () => ({ members: 2, bots: 1, rooms: 3 }) })
    const b = await startMesh(t, { name: 'bravo', bootstrap: [a.addr()] })
    await waitFor(() => listed(b, a.key.did), 'B to find A')

    const started = Date.now()
    const c = await startMesh(t, { name: 'charlie', bootstrap: [a.addr()] })
    const [foundA, foundB] = await waitFor(async () => {
      const foundA = await listed(c, a.key.did)
      const foundB = await listed(c, b.key.did)
      return foundA !== undefined && foundB !== undefined && ([foundA, foundB] as const)
    }, 'C to find A and B')
    t.diagnostic(`C discovered A and B in ${Date.now() - started} ms`)

    assert.equal(foundA.name, 'alpha')
    assert.deepEqual([foundA.members, foundA.bots, foundA.rooms], [2, 1, 3])
    assert.equal(foundA.peerId, a.libp2p.peerId.toString())
    assert.equal(foundB.name, 'bravo')
    assert.equal(foundB.status, 'online')
    assert.deepEqual(foundB.multiaddrs, b.libp2p.getMultiaddrs().map(String))
    assert.ok(!Number.isNaN(Date.parse(foundB.lastHeartbeat)))
    // C was never given B's address: what it knows of B came from B's signed record
    assert.ok(!(await c.discovery.list()).some((m) => m.did === c.key.did), 'a mesh does not list itself')
    const found = c.lines.filter((l) => l.event === 'discovery.mesh_found').map((l) => l.did)
    assert.deepEqual(new Set(found), new Set([a.key.did, b.key.did]))

    const result = await c.discovery.lookup(b.key.did)
    assert.equal(result.record.did, b.key.did)
    assert.ok(typeof result.hops === 'number' && result.hops >= 0 && result.hops <= 3, `hops ${result.hops}`)
    assert.ok(result.ms > 0)
  })

  it('a content change is republished with a higher seq and picked up as an update', async (t) => {
    const a = await startMesh(t, { name: 'alpha' })
    const b = await startMesh(t, { name: 'bravo', bootstrap: [a.addr()] })
    const first = await waitFor(() => listed(b, a.key.did), 'B to find A')
    const seqBefore = a.discovery.record?.seq ?? 0

    a.discovery.setContent({ name: 'alpha-renamed', members: 42 })
    const renamed = await waitFor(async () => {
      const m = await listed(b, a.key.did)
      return m?.name === 'alpha-renamed' && m
    }, 'B to see the rename')
    assert.equal(first.name, 'alpha')
    assert.equal(renamed.members, 42)
    assert.ok((a.discovery.record?.seq ?? 0) > seqBefore)
    assert.ok(b.lines.some((l) => l.event === 'discovery.mesh_updated' && l.did === a.key.did))
  })

  it('a record put while few peers were known is put again once the routing table has doubled, not before', async (t) => {
    const quiet = { intervalMs: 600_000 } // rounds only when the test runs them
    const holds = (m: TestMesh, did: string) => m.datastore.has(dhtRecordKey(meshRecordKey(did)))
    const table = (m: TestMesh) => (m.libp2p.services.dht as unknown as SingleKadDHT).routingTable.size
    const a = await startMesh(t, { name: 'alpha', ...quiet })
    const b = await startMesh(t, { name: 'bravo', ...quiet, bootstrap: [a.addr()] })
    await waitFor(() => table(a) === 1, 'A to know B')
    await a.discovery.refresh()
    await waitFor(() => holds(b, a.key.did), 'B to hold A’s record')
    // Two meshes join, through A: they never got A's record.
    const joined = [
      await startMesh(t, { name: 'charlie', ...quiet, bootstrap: [a.addr()] }),
      await startMesh(t, { name: 'delta', ...quiet, bootstrap: [a.addr()] }),
    ]
    await waitFor(() => table(a) >= 3, 'A to know them')
    for (const m of joined) assert.equal(holds(m, a.key.did), false)
    const puts = () => a.lines.filter((l) => l.event === 'discovery.published').length
    const before = puts()
    await a.discovery.refresh() // the table went 1 → 3: put again
    await waitFor(() => joined.every((m) => holds(m, a.key.did)), 'the newcomers to hold A’s record')
    assert.equal(puts(), before + 1)
    await a.discovery.refresh() // unchanged, not due, the table as it was: no put
    assert.equal(puts(), before + 1)
  })

  it('seq only grows across a restart (store reopened)', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'mesh-p2p-restart-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const key = Ed25519KeyPair.generate()
    const observer = await startMesh(t, { name: 'observer' })

    const first = await startMesh(t, { name: 'alpha', key, storePath: dir, bootstrap: [observer.addr()] })
    const before = await waitFor(() => observer.discovery.get(key.did), 'observer to find alpha')
    await first.stop()

    // the observer (its store and its DHT records) refuses any seq it has seen already,
    // so the new name only arrives if the restarted node went on counting
    const second = await startMesh(t, { name: 'alpha-2', key, storePath: dir, bootstrap: [observer.addr()] })
    const after = await waitFor(async () => {
      const record = await observer.discovery.get(key.did)
      return record?.name === 'alpha-2' && record
    }, 'observer to see the restarted alpha')
    assert.ok(after.seq > before.seq, `seq ${after.seq} after restart, ${before.seq} before`)
    assert.ok((second.discovery.record?.seq ?? 0) >= after.seq)
  })

  it('dials meshes listed by the registry, following its pages', async (t) => {
    const a = await startMesh(t, { name: 'alpha' })
    const b = await startMesh(t, { name: 'bravo' })
    const registry = await fakeRegistry(t, () =>
      [a, b].map((m) => ({
        did: m.key.did,
        peerId: m.libp2p.peerId.toString(),
        // as a registry may store them: without /p2p/
        multiaddrs: m.libp2p.getMultiaddrs().map((ma) => ma.decapsulateCode(421).toString()),
      })),
    )
    const c = await startMesh(t, { name: 'charlie', registryUrl: registry.url })
    await waitFor(
      async () => (await listed(c, a.key.did)) && (await listed(c, b.key.did)),
      'C to find A and B',
    )
    assert.ok(
      registry.hits.some((h) => h.includes('cursor=1')),
      'second page fetched',
    )
    assert.ok(c.libp2p.getConnections(b.libp2p.peerId).length > 0)
  })

  it('an unreachable registry is logged, not fatal', async (t) => {
    const a = await startMesh(t, { name: 'alpha' })
    const c = await startMesh(t, {
      name: 'charlie',
      registryUrl: 'http://127.0.0.1:1',
      bootstrap: [a.addr()],
    })
    await waitFor(
      () => c.lines.find((l) => l.event === 'discovery.registry_unreachable'),
      'registry_unreachable',
    )
    await waitFor(() => listed(c, a.key.did), 'C to find A through its bootstrap peer')
  })

  it('lookup {first} ends at the first valid record, never at a forged one', async (t) => {
    // long intervals: no republish overwrites the forged copies during the test
    const a = await startMesh(t, { name: 'alpha', intervalMs: 60_000 })
    const hostile = [await startHost(t), await startHost(t)]
    for (const h of hostile) await h.libp2p.dial(a.libp2p.getMultiaddrs())
    const c = await startMesh(t, { name: 'charlie', intervalMs: 60_000, bootstrap: [a.addr()] })
    await waitFor(() => c.libp2p.getConnections(a.libp2p.peerId).length > 0, 'C connected to A')
    // A's put must reach C (C's own copy is the fallback below): C in A's routing table
    const table = (a.libp2p.services.dht as unknown as SingleKadDHT).routingTable
    await waitFor(() => table.size >= 3, 'C and both hostile hosts in A routing table')
    // …and C holds it: on a busy machine a put can miss a peer, so publish until C has it
    const heldByC = async (): Promise<boolean> => {
      const own = a.discovery.record
      if (own === undefined) return false
      try {
        const stored = await c.datastore.get(dhtRecordKey(meshRecordKey(own.did)))
        const value = JSON.parse(new TextDecoder().decode(DhtRecord.deserialize(stored).value))
        return value.signature === own.signature
      } catch {
        return false
      }
    }
    await waitFor(async () => {
      await a.discovery.refresh()
      return heldByC()
    }, 'C holding alpha’s record itself')
    const real = a.discovery.record
    assert.ok(real !== undefined)

    // mallory's copy of alpha's record: a higher seq, alpha's did, mallory's signature
    const mallory = Ed25519KeyPair.generate()
    const signed = createMeshRecord(mallory, { ...real, name: 'alpha-forged' }, real.seq + 10)
    const forged = { ...signed, did: real.did, peerId: real.peerId }
    const key = meshRecordKey(real.did)
    const dsKey = dhtRecordKey(key)
    const plant = async (): Promise<void> => {
      for (const h of hostile) {
        await h.datastore?.delete(dsKey)
        await h.datastore?.put(
          dsKey,
          new DhtRecord(key, new TextEncoder().encode(JSON.stringify(forged)), new Date()).serialize(),
        )
      }
    }
    await plant()

    // C queries A and both hostile holders in its first round; whichever answers first
    for (const h of hostile) await c.libp2p.dial(h.libp2p.getMultiaddrs())
    for (let i = 0; i < 5; i++) {
      const early = await c.discovery.lookup(real.did, { first: true })
      assert.equal(early.record.signature, real.signature)
      assert.equal(early.record.seq, real.seq)
      assert.equal(early.complete, false)
      assert.ok(typeof early.hops === 'number' && early.hops >= 1, `answered by a peer, hops ${early.hops}`)
    }

    // a record no newer than the one asked past never ends the query early
    const past = await c.discovery.lookup(real.did, { first: true, newerThan: real.seq })
    assert.equal(past.complete, true)
    assert.equal(past.record.signature, real.signature)

    // with A gone only forged copies are out there: they never end the query, which runs
    // to the end and falls back on the copy C holds itself (the full query above
    // corrected the hostile copies: plant them again)
    await plant()
    await a.stop()
    const fallback = await c.discovery.lookup(real.did, { first: true })
    assert.equal(fallback.record.signature, real.signature)
    assert.equal(fallback.complete, true)
    assert.equal(fallback.hops, 0)
    assert.equal((await c.discovery.get(real.did))?.name, 'alpha')
  })
})
