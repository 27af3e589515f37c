import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import { computePow, powZeroBits } from '../../src/registry/index.ts'
import { alice, bob, mallory, tempStore } from '../fixtures/principals.ts'
import { type Reply, signedFor, startTestRegistry, TestClock } from './registry-fixtures.ts'

const INTERVAL = 1_000

/** `n` fresh keys, as an attacker makes them: each a valid did of its own. */
const fakes = (n: number): Ed25519KeyPair[] => Array.from({ length: n }, () => Ed25519KeyPair.generate())

describe('registry flood (issue 10 finding 6)', () => {
  it('cuts a flood of validly signed heartbeats from one source off with 429 MESH_RATE_LIMITED', async (t) => {
    const clock = new TestClock(Date.now())
    const reg = await startTestRegistry(
      t,
      await tempStore(t),
      { now: clock.now },
      { perSource: { max: 5, windowMs: 60_000 } },
    )
    const statuses: number[] = []
    const codes = new Set<string>()
    let retryAfter: string | string[] | undefined
    for (const [i, key] of fakes(40).entries()) {
      const response = await reg.app.inject({
        method: 'POST',
        url: '/api/meshes/heartbeat',
        remoteAddress: '203.0.113.7',
        payload: signedFor(key, clock.ms, { name: `aaa-${i}` }),
      })
      statuses.push(response.statusCode)
      if (response.statusCode === 429) {
        codes.add(response.json<{ error: { code: string } }>().error.code)
        retryAfter = response.headers['retry-after']
      }
    }
    assert.deepEqual(statuses.slice(0, 5), [200, 200, 200, 200, 200])
    assert.deepEqual(new Set(statuses.slice(5)), new Set([429]))
    assert.deepEqual([...codes], ['MESH_RATE_LIMITED'])
    assert.ok(Number(retryAfter) > 0, 'a 429 says when to retry')
    assert.equal((await reg.listed()).length, 5)
    assert.match(
      await reg.metrics.metrics(),
      /mesh_registry_heartbeats_total\{outcome="MESH_RATE_LIMITED"\} 35\n/,
    )
    // The budget is the source's: another address still gets through.
    const other = await reg.app.inject({
      method: 'POST',
      url: '/api/meshes/heartbeat',
      remoteAddress: '198.51.100.9',
      payload: signedFor(alice, clock.ms, { name: 'alice' }),
    })
    assert.equal(other.statusCode, 200)
  })

  it('admits at most newPerSource.burst new meshes per address; its known meshes keep beating', async (t) => {
    const clock = new TestClock()
    const reg = await startTestRegistry(t, await tempStore(t), {
      now: clock.now,
      newPerSource: { burst: 3, refillMs: 60_000 },
    })
    const from = async (remoteAddress: string, body: unknown) => {
      const response = await reg.app.inject({
        method: 'POST',
        url: '/api/meshes/heartbeat',
        remoteAddress,
        payload: body as object,
      })
      return { status: response.statusCode, error: response.json<Reply>().error }
    }
    const flood = fakes(4)
    for (const key of flood.slice(0, 3)) {
      assert.equal((await from('203.0.113.7', signedFor(key, clock.ms))).status, 200)
    }
    const fourth = await from('203.0.113.7', signedFor(flood[3] as Ed25519KeyPair, clock.ms))
    assert.equal(fourth.status, 429)
    assert.equal(fourth.error.code, 'MESH_RATE_LIMITED')
    assert.equal(fourth.error.details.reason, 'new-mesh-limit')
    // Known meshes behind that address are not charged; other addresses have their own budget.
    assert.equal(
      (await from('203.0.113.7', signedFor(flood[0] as Ed25519KeyPair, clock.ms, { seq: 2 }))).status,
      200,
    )
    assert.equal((await from('198.51.100.9', signedFor(alice, clock.ms))).status, 200)
    // IPv6 addresses of one /64 share a budget.
    for (const key of fakes(3))
      assert.equal((await from('2001:db8:0:1::a', signedFor(key, clock.ms))).status, 200)
    assert.equal((await from('2001:db8:0:1::b', signedFor(bob, clock.ms))).status, 429)
    // The budget comes back with time.
    clock.advance(60_000)
    assert.equal((await from('203.0.113.7', signedFor(flood[3] as Ed25519KeyPair, clock.ms))).status, 200)
  })

  it('a mesh evicted to make room comes back without spending its address’s admissions', async (t) => {
    const clock = new TestClock()
    const reg = await startTestRegistry(t, await tempStore(t), {
      now: clock.now,
      maxMeshes: 1,
      newPerSource: { burst: 1, refillMs: 60_000 },
    })
    const from = async (remoteAddress: string, body: object) =>
      (await reg.app.inject({ method: 'POST', url: '/api/meshes/heartbeat', remoteAddress, payload: body }))
        .statusCode
    assert.equal(await from('192.0.2.1', signedFor(bob, clock.ms, { seq: 1 })), 200)
    // mallory's fresh did from her own address takes bob's place (both unproven, hers newer).
    assert.equal(await from('203.0.113.7', signedFor(mallory, clock.ms, { seq: 1 })), 200)
    assert.deepEqual(
      (await reg.listed()).map((m) => m.did),
      [mallory.did],
    )
    // bob's address has spent its one admission, but bob is not new: he comes back.
    assert.equal(await from('192.0.2.1', signedFor(bob, clock.ms, { seq: 2 })), 200)
    // A did never listed from that address still needs an admission.
    assert.equal(await from('192.0.2.1', signedFor(alice, clock.ms, { seq: 1 })), 429)
  })

  it('limits one mesh beating too fast, and only its own fresh heartbeats spend its budget', async (t) => {
    const clock = new TestClock()
    const reg = await startTestRegistry(t, await tempStore(t), {
      now: clock.now,
      heartbeatIntervalMs: INTERVAL,
      didRate: { burst: 3, refillMs: INTERVAL },
    })
    const first = signedFor(alice, clock.ms, { seq: 1 })
    assert.equal((await reg.post(first)).status, 200)
    // mallory replays alice's signed heartbeat: refused as a replay, and charged to nobody.
    for (let i = 0; i < 10; i++) assert.equal((await reg.post(first)).body.error.code, 'MESH_REPLAY')
    assert.equal((await reg.post(signedFor(alice, clock.ms, { seq: 2 }))).status, 200)
    assert.equal((await reg.post(signedFor(alice, clock.ms, { seq: 3 }))).status, 200)
    const limited = await reg.post(signedFor(alice, clock.ms, { seq: 4 }))
    assert.equal(limited.status, 429)
    assert.equal(limited.body.error.code, 'MESH_RATE_LIMITED')
    assert.equal(limited.body.error.details.retryAfterMs, INTERVAL)
    // Another mesh is not affected, and alice's bucket refills with time.
    assert.equal((await reg.post(signedFor(bob, clock.ms, { seq: 1 }))).status, 200)
    clock.advance(INTERVAL)
    assert.equal((await reg.post(signedFor(alice, clock.ms, { seq: 5 }))).status, 200)
  })

  it('lists a new did only with an admission stamp of the registry’s difficulty; known meshes beat without', async (t) => {
    const clock = new TestClock()
    const reg = await startTestRegistry(t, await tempStore(t), { now: clock.now, powBits: 12 })
    const bare = await reg.post(signedFor(alice, clock.ms, { seq: 1 }))
    assert.equal(bare.status, 403)
    assert.equal(bare.body.error.code, 'MESH_FORBIDDEN')
    assert.deepEqual(bare.body.error.details, { did: alice.did, reason: 'pow-required', powBits: 12 })

    const aliceStamp = await computePow(alice.did, 12)
    // A stamp names its did: alice's does not admit bob (checked: it has too few bits for bob).
    assert.ok(powZeroBits(bob.did, aliceStamp) < 12)
    const borrowed = await reg.post(signedFor(bob, clock.ms, { seq: 1, pow: aliceStamp }))
    assert.equal(borrowed.body.error?.code, 'MESH_FORBIDDEN')
    // A stamp of too few bits is refused too.
    let weak = 0
    while (powZeroBits(mallory.did, weak.toString(36)) >= 12) weak++
    const cheap = await reg.post(signedFor(mallory, clock.ms, { seq: 1, pow: weak.toString(36) }))
    assert.equal(cheap.body.error?.code, 'MESH_FORBIDDEN')
    // A stamp that is not even a nonce is a malformed heartbeat.
    assert.equal((await reg.post(signedFor(alice, clock.ms, { pow: 'x'.repeat(33) }))).status, 400)

    assert.deepEqual((await reg.post(signedFor(alice, clock.ms, { seq: 2, pow: aliceStamp }))).body, {
      ok: true,
      status: 'online',
    })
    assert.equal((await reg.post(signedFor(alice, clock.ms, { seq: 3 }))).status, 200)
    assert.deepEqual(
      (await reg.listed()).map((m) => m.did),
      [alice.did],
    )
  })

  it('a full registry evicts the newest unproven fake, not an established mesh that went offline', async (t) => {
    const clock = new TestClock()
    const reg = await startTestRegistry(t, await tempStore(t), {
      now: clock.now,
      heartbeatIntervalMs: INTERVAL,
      establishedAfterMs: 3 * INTERVAL,
      maxMeshes: 6,
    })
    // alice, a real mesh, beats for five intervals, then stops cleanly.
    for (let seq = 1; seq <= 5; seq++) {
      assert.equal((await reg.post(signedFor(alice, clock.ms, { name: 'alice', seq }))).status, 200)
      clock.advance(INTERVAL)
    }
    assert.equal(
      (await reg.post(signedFor(alice, clock.ms, { name: 'alice', seq: 6, status: 'offline' }))).status,
      200,
    )
    // mallory fills the registry with fresh dids, which keep beating (online).
    const flood = fakes(5)
    for (const [i, key] of flood.entries()) {
      assert.equal((await reg.post(signedFor(key, clock.ms, { name: `aaa-${i}` }))).status, 200)
      clock.advance(10)
    }
    for (const key of flood) assert.equal((await reg.post(signedFor(key, clock.ms, { seq: 2 }))).status, 200)

    // bob, a new honest mesh, is not refused: the newest fake makes room.
    assert.deepEqual((await reg.post(signedFor(bob, clock.ms, { name: 'bob' }))).body, {
      ok: true,
      status: 'online',
    })
    const listed = (await reg.listed()).map((m) => m.did)
    assert.equal(listed.length, 6)
    assert.ok(listed.includes(alice.did), 'the established mesh that went offline is kept')
    assert.ok(listed.includes(bob.did))
    assert.ok(!listed.includes((flood.at(-1) as Ed25519KeyPair).did), 'the newest fake went')
    assert.ok(flood.slice(0, -1).every((key) => listed.includes(key.did)))

    // A fake that stopped beating goes before a live one.
    clock.advance(4 * INTERVAL)
    for (const key of flood.slice(1, -1)) {
      assert.equal((await reg.post(signedFor(key, clock.ms, { seq: 3 }))).status, 200)
    }
    assert.equal((await reg.post(signedFor(bob, clock.ms, { name: 'bob', seq: 2 }))).status, 200)
    assert.equal((await reg.post(signedFor(mallory, clock.ms, { name: 'mallory' }))).status, 200)
    const after = (await reg.listed()).map((m) => m.did)
    assert.ok(!after.includes((flood[0] as Ed25519KeyPair).did), 'the silent fake went')
    assert.ok(after.includes(alice.did) && after.includes(bob.did))
  })

  it('status=online&sort=age lists long-lived meshes before a flood of fresh ones, whatever their names', async (t) => {
    const clock = new TestClock()
    const reg = await startTestRegistry(t, await tempStore(t), { now: clock.now })
    assert.equal((await reg.post(signedFor(bob, clock.ms, { name: 'zulu' }))).status, 200)
    clock.advance(1_000)
    assert.equal((await reg.post(signedFor(alice, clock.ms, { name: 'yankee' }))).status, 200)
    assert.equal(
      (await reg.post(signedFor(mallory, clock.ms, { name: 'offline', status: 'offline' }))).status,
      200,
    )
    clock.advance(1_000)
    const flood = fakes(150)
    for (const [i, key] of flood.entries()) {
      await reg.registry.heartbeat(signedFor(key, clock.ms, { name: `aaa-${String(i).padStart(3, '0')}` }))
    }
    // By name, the flood hides both real meshes from the first page.
    const byName = await reg.get('?status=online&limit=100')
    assert.ok(byName.body.meshes.every((m) => m.name.startsWith('aaa-')))

    const first = await reg.get('?status=online&sort=age&limit=100')
    assert.equal(first.status, 200)
    assert.deepEqual(
      first.body.meshes.slice(0, 2).map((m) => m.name),
      ['zulu', 'yankee'],
    )
    assert.ok(first.body.meshes.every((m) => m.status === 'online'))
    assert.equal(first.body.meshes[0]?.firstSeen, new Date(clock.ms - 2_000).toISOString())
    // The age cursor pages on without repeats or gaps; a name cursor is refused there.
    const second = await reg.get(`?status=online&sort=age&limit=100&cursor=${first.body.nextCursor}`)
    assert.equal(second.body.nextCursor, null)
    const all = [...first.body.meshes, ...second.body.meshes].map((m) => m.did)
    assert.equal(new Set(all).size, 152)
    assert.equal((await reg.get(`?sort=age&cursor=${byName.body.nextCursor}`)).status, 400)
    assert.equal((await reg.get('?sort=uptime')).status, 400)
  })
})
