import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { createRotationRecord } from '../../src/identity/index.ts'
import { createMeshRecord, DiscoveredMeshBook } from '../../src/p2p/index.ts'
import { alice, bob, mallory, tempStore } from '../fixtures/principals.ts'
import { captureLogger, RECORD_CONTENT } from './nodes.ts'

const DAY = 24 * 60 * 60 * 1000
const INTERVAL = 10_000

/** A book on a real LevelDB in a temp dir, on a clock the test moves; `self` is mallory. */
async function book(t: TestContext, connected = new Set<string>()) {
  const clock = { ms: Date.now() }
  const { logger, lines } = captureLogger()
  const store = await tempStore(t)
  const meshes = new DiscoveredMeshBook(
    { store, logger, isConnected: (peerId) => connected.has(peerId), now: () => clock.ms },
    { self: mallory.did, intervalMs: INTERVAL, forgetAfterMs: 7 * DAY },
  )
  return { meshes, clock, lines }
}

describe('the discovered-mesh book', () => {
  it('keeps the newest record per mesh and its first sighting', async (t) => {
    const { meshes, clock } = await book(t)
    const found = clock.ms
    await meshes.ingest(createMeshRecord(alice, { ...RECORD_CONTENT, name: 'alpha' }, 2, clock.ms))
    clock.ms += 1_000
    await meshes.ingest(createMeshRecord(alice, { ...RECORD_CONTENT, name: 'stale' }, 1, clock.ms))
    assert.equal((await meshes.get(alice.did))?.name, 'alpha', 'a lower seq never replaces')
    await meshes.ingest(createMeshRecord(alice, { ...RECORD_CONTENT, name: 'alpha-2' }, 3, clock.ms))
    const [listed, ...rest] = await meshes.list()
    assert.equal(rest.length, 0)
    assert.equal(listed?.name, 'alpha-2')
    assert.equal(listed?.firstSeen, new Date(found).toISOString())
    assert.equal(listed?.lastHeartbeat, new Date(clock.ms).toISOString())
  })

  it('never lists this mesh, nor a record whose rotation chain names it', async (t) => {
    const { meshes, clock } = await book(t)
    await meshes.ingest(createMeshRecord(mallory, RECORD_CONTENT, 1, clock.ms))
    const rotation = createRotationRecord(mallory, bob, { identity: mallory.did, seq: 1 })
    const keys = { identity: mallory.did, rotations: [rotation] }
    await meshes.ingest(createMeshRecord(bob, RECORD_CONTENT, 2, clock.ms, keys))
    assert.deepEqual(await meshes.list(), [])
  })

  it('lists a rotated mesh once, under its current key', async (t) => {
    const { meshes, clock } = await book(t)
    await meshes.ingest(createMeshRecord(alice, RECORD_CONTENT, 1, clock.ms))
    const rotation = createRotationRecord(alice, bob, { identity: alice.did, seq: 1 })
    const keys = { identity: alice.did, rotations: [rotation] }
    // the moved record of the old key is not listed, and drops the old entry
    await meshes.ingest(createMeshRecord(alice, { ...RECORD_CONTENT, multiaddrs: [] }, 2, clock.ms, keys))
    assert.equal(await meshes.get(alice.did), undefined)
    await meshes.ingest(createMeshRecord(bob, RECORD_CONTENT, 2, clock.ms, keys))
    assert.deepEqual(
      (await meshes.list()).map((m) => m.did),
      [bob.did],
    )
  })

  it('reads status from the record age: online, idle, offline; connected is online', async (t) => {
    const connected = new Set<string>()
    const { meshes, clock } = await book(t, connected)
    await meshes.ingest(createMeshRecord(alice, RECORD_CONTENT, 1, clock.ms))
    const status = async () => (await meshes.list())[0]?.status
    assert.equal(await status(), 'online')
    clock.ms += 3 * INTERVAL + 1
    assert.equal(await status(), 'idle')
    clock.ms += 7 * INTERVAL
    assert.equal(await status(), 'offline')
    connected.add(alice.peerId().toString())
    assert.equal(await status(), 'online')
  })

  it('forgets a mesh not heard of for 7 days unless connected, and a stale copy does not bring it back', async (t) => {
    const connected = new Set<string>()
    const { meshes, clock, lines } = await book(t, connected)
    const old = createMeshRecord(alice, RECORD_CONTENT, 1, clock.ms)
    await meshes.ingest(old)
    await meshes.ingest(createMeshRecord(bob, RECORD_CONTENT, 1, clock.ms))
    meshes.markChecked(alice.did)
    connected.add(bob.peerId().toString())

    clock.ms += 7 * DAY // exactly 7 days: still kept
    await meshes.forgetStale()
    assert.equal((await meshes.list()).length, 2)

    clock.ms += 60 * 60 * 1000 // an hour later, the next sweep is due
    await meshes.forgetStale()
    assert.equal(await meshes.get(alice.did), undefined)
    assert.equal(meshes.checkedAt(alice.did), undefined, 'fetched again as a new mesh when it returns')
    assert.ok((await meshes.get(bob.did)) !== undefined, 'a connected mesh is never forgotten')
    assert.ok(lines.some((l) => l.event === 'discovery.mesh_forgotten' && l.did === alice.did))
    assert.ok(!lines.some((l) => l.event === 'discovery.mesh_forgotten' && l.did === bob.did))

    // a DHT node still holding alice's old record does not list her again
    await meshes.ingest(old)
    assert.equal(await meshes.get(alice.did), undefined)
    // her fresh record does
    await meshes.ingest(createMeshRecord(alice, RECORD_CONTENT, 2, clock.ms))
    assert.equal((await meshes.get(alice.did))?.seq, 2)
  })

  it('sweeps at most every tenth of forgetAfterMs (and hourly at least)', async (t) => {
    const { meshes, clock } = await book(t)
    await meshes.forgetStale() // the first sweep, on an empty book
    await meshes.ingest(createMeshRecord(alice, RECORD_CONTENT, 1, clock.ms - 7 * DAY + 1_000))
    clock.ms += 2_000 // alice is now older than 7 days, but the sweep is not due
    await meshes.forgetStale()
    assert.ok((await meshes.get(alice.did)) !== undefined)
    clock.ms += 60 * 60 * 1000
    await meshes.forgetStale()
    assert.equal(await meshes.get(alice.did), undefined)
  })
})
