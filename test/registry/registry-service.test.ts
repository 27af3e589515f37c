import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { Ed25519KeyPair, signCanonical } from '../../src/identity/index.ts'
import { RegistryService } from '../../src/registry/index.ts'
import { MeshStore } from '../../src/store/index.ts'
import { alice, bob, mallory, tempDir, tempStore } from '../fixtures/principals.ts'
import { contentFor, signedFor, startTestRegistry, storedEntries, TestClock } from './registry-fixtures.ts'

const INTERVAL = 1_000

describe('registry heartbeats over HTTP', () => {
  it('accepts a signed heartbeat and lists the mesh with its counts', async (t) => {
    const clock = new TestClock()
    const reg = await startTestRegistry(t, await tempStore(t), { now: clock.now })
    const hb = signedFor(alice, clock.ms, { name: 'alice', members: 4, bots: 2, rooms: 7 })
    assert.deepEqual(await reg.post(hb), { status: 200, body: { ok: true, status: 'online' } })
    assert.deepEqual(await reg.listed(), [
      {
        did: alice.did,
        name: 'alice',
        peerId: alice.peerId().toString(),
        multiaddrs: hb.multiaddrs,
        status: 'online',
        members: 4,
        bots: 2,
        rooms: 7,
        version: '0.1.0',
        protocolVersions: ['/mesh/kad/1.0.0'],
        lastHeartbeat: new Date(clock.ms).toISOString(),
        firstSeen: new Date(clock.ms).toISOString(),
      },
    ])
    const next = signedFor(alice, clock.ms, { name: 'alice', seq: 2, status: 'idle' })
    assert.deepEqual((await reg.post(next)).body, { ok: true, status: 'idle' })
  })

  it('refuses each bad heartbeat with its code and stores nothing', async (t) => {
    const clock = new TestClock()
    const store = await tempStore(t)
    const reg = await startTestRegistry(t, store, { now: clock.now })
    assert.equal((await reg.post(signedFor(alice, clock.ms, { name: 'alice', seq: 5 }))).status, 200)
    assert.equal((await reg.post(signedFor(bob, clock.ms, { name: 'bob', seq: 1 }))).status, 200)
    const listBefore = await reg.listed()
    const storedBefore = await storedEntries(store)

    const good = signedFor(alice, clock.ms, { name: 'alice renamed', seq: 6 })
    const forgedContent = contentFor(alice, clock.ms, { name: 'alice (mallory)', seq: 99 })
    const cases: Array<[string, unknown, number, string]> = [
      ['bad signature', { ...good, members: 999 }, 401, 'MESH_SIGNATURE_MISMATCH'],
      ['replayed (same seq)', signedFor(alice, clock.ms, { name: 'alice', seq: 5 }), 409, 'MESH_REPLAY'],
      ['stale (lower seq)', signedFor(alice, clock.ms, { name: 'alice stale', seq: 4 }), 409, 'MESH_REPLAY'],
      [
        'another mesh’s did',
        { ...forgedContent, signature: signCanonical(mallory, forgedContent) },
        401,
        'MESH_SIGNATURE_MISMATCH',
      ],
      [
        'peerId of another mesh',
        signedFor(mallory, clock.ms, { peerId: alice.peerId().toString(), multiaddrs: [] }),
        401,
        'MESH_SIGNATURE_MISMATCH',
      ],
      ['ts 61 s ahead', signedFor(alice, clock.ms + 61_000, { seq: 7 }), 400, 'MESH_CLOCK_SKEW'],
      ['ts 61 s behind', signedFor(alice, clock.ms - 61_000, { seq: 8 }), 400, 'MESH_CLOCK_SKEW'],
      ['malformed JSON', '{"did": "did:key:z6Mk', 400, 'MESH_BAD_REQUEST'],
      ['empty body', '', 400, 'MESH_BAD_REQUEST'],
      ['unknown field', { ...good, admin: true }, 400, 'MESH_BAD_REQUEST'],
      ['missing field', { ...good, seq: undefined }, 400, 'MESH_BAD_REQUEST'],
      ['string count', { ...good, members: '3' }, 400, 'MESH_BAD_REQUEST'],
      ['oversized body', { ...good, name: 'x'.repeat(70 * 1024) }, 413, 'MESH_TOO_LARGE'],
    ]
    for (const [what, body, status, code] of cases) {
      const response = await reg.post(body)
      assert.equal(response.status, status, what)
      assert.equal(response.body.error?.code, code, what)
      assert.equal(typeof response.body.error.message, 'string', what)
    }
    assert.deepEqual(await reg.listed(), listBefore)
    assert.deepEqual(await storedEntries(store), storedBefore)

    // The sentinel after the attacks: alice's next real heartbeat still gets through.
    assert.equal((await reg.post(good)).status, 200)
    assert.equal((await reg.listed()).find((m) => m.did === alice.did)?.name, 'alice renamed')

    const metrics = await reg.metrics.metrics()
    for (const [outcome, count] of [
      ['accepted', 3],
      ['MESH_REPLAY', 2],
      ['MESH_SIGNATURE_MISMATCH', 3],
      ['MESH_CLOCK_SKEW', 2],
      ['MESH_BAD_REQUEST', 5],
      ['MESH_TOO_LARGE', 1],
    ] as const) {
      assert.match(
        metrics,
        new RegExp(`mesh_registry_heartbeats_total\\{outcome="${outcome}"\\} ${count}\\n`),
      )
    }
    assert.match(metrics, /mesh_registry_meshes 2\n/)
  })

  it('refuses bad list query params with MESH_BAD_REQUEST', async (t) => {
    const reg = await startTestRegistry(t, await tempStore(t))
    const badCursor = Buffer.from('["only one"]').toString('base64url')
    for (const query of [
      '?limit=0',
      '?limit=101',
      '?limit=abc',
      '?limit=-1',
      '?limit=',
      '?status=asleep',
      '?status=online&status=idle',
      '?cursor=%21%21%21',
      `?cursor=${badCursor}`,
      `?q=${'x'.repeat(129)}`,
      '?page=2',
    ]) {
      const { status, body } = await reg.get(query)
      assert.equal(status, 400, query)
      assert.equal(body.error.code, 'MESH_BAD_REQUEST', query)
    }
    assert.deepEqual((await reg.get('?limit=100&status=online&q=')).body, { meshes: [], nextCursor: null })
  })

  it('searches, filters by status and pages with a cursor over seven meshes', async (t) => {
    const clock = new TestClock()
    const reg = await startTestRegistry(t, await tempStore(t), {
      now: clock.now,
      heartbeatIntervalMs: INTERVAL,
    })
    const others = [4, 5, 6, 7].map((n) => new Ed25519KeyPair(Buffer.alloc(32, n)))
    const meshes = [
      { key: alice, name: 'Alice Labs', status: 'online' },
      { key: bob, name: 'bob’s garage', status: 'idle' },
      { key: mallory, name: 'Totally Legit', status: 'online' },
      { key: others[0], name: 'alpine', status: 'online' },
      { key: others[1], name: 'Delta', status: 'offline' },
      { key: others[2], name: 'charlie', status: 'idle' },
      { key: others[3], name: 'echo', status: 'online' },
    ] as const
    for (const { key, name, status } of meshes) {
      if (key === undefined) throw new Error('missing key')
      assert.equal((await reg.post(signedFor(key, clock.ms, { name, status }))).status, 200)
    }

    const names: string[] = []
    const pageSizes: number[] = []
    let query = '?limit=3'
    for (;;) {
      const { status, body } = await reg.get(query)
      assert.equal(status, 200)
      names.push(...body.meshes.map((m: { name: string }) => m.name))
      pageSizes.push(body.meshes.length)
      if (body.nextCursor === null) break
      query = `?limit=3&cursor=${body.nextCursor}`
    }
    assert.deepEqual(pageSizes, [3, 3, 1])
    assert.deepEqual(names, [
      'Alice Labs',
      'alpine',
      'bob’s garage',
      'charlie',
      'Delta',
      'echo',
      'Totally Legit',
    ])

    const namesOf = async (q: string) => (await reg.get(q)).body.meshes.map((m: { name: string }) => m.name)
    assert.deepEqual(await namesOf('?q=AL'), ['Alice Labs', 'alpine', 'Totally Legit'])
    assert.deepEqual(await namesOf(`?q=${encodeURIComponent(bob.did.slice(-12).toUpperCase())}`), [
      'bob’s garage',
    ])
    assert.deepEqual(await namesOf('?status=idle'), ['bob’s garage', 'charlie'])
    assert.deepEqual(await namesOf('?status=offline'), ['Delta'])
    assert.deepEqual(await namesOf('?status=online&q=e'), ['Alice Labs', 'alpine', 'echo', 'Totally Legit'])
    const filtered = (await reg.get('?status=online&limit=2')).body
    assert.deepEqual(
      filtered.meshes.map((m: { name: string }) => m.name),
      ['Alice Labs', 'alpine'],
    )
    assert.deepEqual(await namesOf(`?status=online&limit=2&cursor=${filtered.nextCursor}`), [
      'echo',
      'Totally Legit',
    ])
  })

  it('turns a silent mesh idle after one missed heartbeat and offline after three', async (t) => {
    const clock = new TestClock()
    const reg = await startTestRegistry(t, await tempStore(t), {
      now: clock.now,
      heartbeatIntervalMs: INTERVAL,
    })
    const statusOf = async () => (await reg.listed()).find((m) => m.did === alice.did)?.status
    await reg.post(signedFor(alice, clock.ms, { seq: 1 }))
    const start = clock.ms
    const at = async (sinceStart: number) => {
      clock.ms = start + sinceStart
      return statusOf()
    }
    assert.equal(await at(1.5 * INTERVAL), 'online')
    assert.equal(await at(1.5 * INTERVAL + 1), 'idle')
    assert.equal(await at(3.5 * INTERVAL), 'idle')
    assert.equal(await at(3.5 * INTERVAL + 1), 'offline')
    // A heartbeat brings it back at once.
    assert.deepEqual((await reg.post(signedFor(alice, clock.ms, { seq: 2 }))).body, {
      ok: true,
      status: 'online',
    })
    assert.equal(await statusOf(), 'online')
  })

  it('lists a mesh that reported idle as idle, and one that said offline at shutdown as offline at once', async (t) => {
    const clock = new TestClock()
    const reg = await startTestRegistry(t, await tempStore(t), {
      now: clock.now,
      heartbeatIntervalMs: INTERVAL,
    })
    await reg.post(signedFor(alice, clock.ms, { seq: 1, status: 'idle' }))
    await reg.post(signedFor(bob, clock.ms, { seq: 1 }))
    assert.deepEqual((await reg.post(signedFor(bob, clock.ms, { seq: 2, status: 'offline' }))).body, {
      ok: true,
      status: 'offline',
    })
    const byDid = new Map((await reg.listed()).map((m) => [m.did, m.status]))
    assert.equal(byDid.get(alice.did), 'idle')
    assert.equal(byDid.get(bob.did), 'offline')
  })

  it('keeps its list and its seqs across a restart', async (t) => {
    const path = join(await tempDir(t, 'mesh-registry-'), 'db')
    const clock = new TestClock()
    const first = new MeshStore({ path })
    await first.open()
    const registry = new RegistryService({ store: first, now: clock.now, powBits: 0 })
    await registry.start()
    await registry.heartbeat(signedFor(alice, clock.ms, { name: 'alice', seq: 10 }))
    await registry.heartbeat(signedFor(bob, clock.ms, { name: 'bob', seq: 3 }))
    const before = await registry.list()
    await registry.stop()
    await first.close()

    const store = new MeshStore({ path })
    await store.open()
    t.after(() => store.close())
    const reg = await startTestRegistry(t, store, { now: clock.now })
    assert.deepEqual(await reg.listed(), before.meshes)
    assert.equal(
      (await reg.post(signedFor(alice, clock.ms, { name: 'alice', seq: 10 }))).body.error.code,
      'MESH_REPLAY',
    )
    assert.equal((await reg.post(signedFor(alice, clock.ms, { name: 'alice', seq: 11 }))).status, 200)
  })

  it('holds at most maxMeshes: full of established live meshes it refuses, else drops the silent one', async (t) => {
    const clock = new TestClock()
    const store = await tempStore(t)
    const reg = await startTestRegistry(t, store, {
      now: clock.now,
      heartbeatIntervalMs: INTERVAL,
      establishedAfterMs: 2 * INTERVAL,
      maxMeshes: 2,
    })
    // alice and bob beat for three intervals: both established.
    for (let seq = 1; seq <= 3; seq++) {
      assert.equal((await reg.post(signedFor(alice, clock.ms, { seq }))).status, 200)
      assert.equal((await reg.post(signedFor(bob, clock.ms, { seq }))).status, 200)
      clock.advance(INTERVAL)
    }
    const full = await reg.post(signedFor(mallory, clock.ms))
    assert.equal(full.status, 503)
    assert.equal(full.body.error.code, 'MESH_UNAVAILABLE')
    // A known mesh may still beat when full.
    assert.equal((await reg.post(signedFor(bob, clock.ms, { seq: 4 }))).status, 200)

    // alice falls silent and turns offline: the newcomer takes her place.
    clock.advance(4 * INTERVAL)
    assert.equal((await reg.post(signedFor(mallory, clock.ms))).status, 200)
    assert.deepEqual((await reg.listed()).map((m) => m.did).sort(), [bob.did, mallory.did].sort())
    assert.equal((await storedEntries(store)).length, 2)
  })

  it('refuses heartbeats with MESH_UNAVAILABLE when not started', async (t) => {
    const registry = new RegistryService({ store: await tempStore(t) })
    await assert.rejects(registry.heartbeat(signedFor(alice, Date.now())), { code: 'MESH_UNAVAILABLE' })
  })

  it('keeps the highest seq when heartbeats of one mesh race', async (t) => {
    const clock = new TestClock()
    const reg = await startTestRegistry(t, await tempStore(t), { now: clock.now })
    const results = await Promise.allSettled(
      [3, 1, 2].map((seq) => reg.registry.heartbeat(signedFor(alice, clock.ms, { seq, name: `seq ${seq}` }))),
    )
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'rejected'],
    )
    assert.equal((await reg.listed())[0]?.name, 'seq 3')
  })
})
