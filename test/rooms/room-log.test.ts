import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as Y from 'yjs'
import { MAX_SEGMENT_BYTES, RoomLog, roomSublevel } from '../../src/rooms/room-log.ts'
import type { MeshStore } from '../../src/store/index.ts'
import { tempStore } from '../fixtures/principals.ts'

const ROOM = 'r'.repeat(32)

/** A log over a fresh document holding what it read (as RoomManager loads a room). */
async function openLog(
  store: MeshStore,
  compactEvery: number,
  maxSegmentBytes?: number,
): Promise<{ log: RoomLog; parts: Uint8Array[]; append: (updates: Uint8Array[]) => Promise<void> }> {
  const doc = new Y.Doc({ gc: false })
  const log = new RoomLog({
    store,
    room: ROOM,
    doc,
    compactEvery,
    ...(maxSegmentBytes !== undefined ? { maxSegmentBytes } : {}),
    onFailure: (err) => {
      throw err
    },
  })
  const parts = await log.read()
  doc.transact(() => {
    for (const part of parts) Y.applyUpdate(doc, part)
  })
  // Each update is in the document before it is logged, as a room does it.
  const append = (updates: Uint8Array[]) =>
    Promise.all(
      updates.map((u) => {
        Y.applyUpdate(doc, u)
        return log.append(u)
      }),
    ).then(() => {})
  return { log, parts, append }
}

/** `n` updates of one writer, each one map entry, as a room's log receives them. */
function updates(n: number, from = 0): Uint8Array[] {
  const doc = new Y.Doc({ gc: false })
  doc.clientID = 7
  const out: Uint8Array[] = []
  doc.on('update', (u: Uint8Array) => out.push(u))
  for (let i = 0; i < from + n; i++) doc.getMap('messages').set(`m${i}`, { body: `message ${i}` })
  return out.slice(from)
}

/** `n` updates of one writer, each one map entry of `bytes` bytes (a large message, or many merged). */
function bigUpdates(n: number, bytes: number): Uint8Array[] {
  const doc = new Y.Doc({ gc: false })
  doc.clientID = 9
  const out: Uint8Array[] = []
  doc.on('update', (u: Uint8Array) => out.push(u))
  for (let i = 0; i < n; i++) doc.getMap('messages').set(`b${i}`, 'x'.repeat(bytes))
  return out
}

async function keys(store: MeshStore): Promise<string[]> {
  const out: string[] = []
  for await (const key of roomSublevel(store, ROOM).keys()) out.push(key)
  return out
}

function reload(parts: Uint8Array[]): Y.Map<unknown> {
  const doc = new Y.Doc({ gc: false })
  doc.transact(() => {
    for (const part of parts) Y.applyUpdate(doc, part)
  })
  assert.equal(doc.store.pendingStructs, null)
  return doc.getMap('messages')
}

describe('RoomLog: compaction into segments', () => {
  it('keeps about log2(n / compactEvery) segments, and every update', async (t) => {
    const store = await tempStore(t)
    const { log, append } = await openLog(store, 10)
    const all = updates(1000)
    for (let i = 0; i < all.length; i += 5) await append(all.slice(i, i + 5))
    await log.drain() // a compaction follows the appends that call for it
    const stored = await keys(store)
    const segments = stored.filter((k) => k.startsWith('s/')).length
    assert.ok(segments >= 1 && segments <= Math.ceil(Math.log2(1000 / 10)) + 1, `${segments} segments`)
    assert.ok(stored.filter((k) => k.startsWith('u/')).length < 10)
    const again = await openLog(store, 10)
    assert.equal(reload(again.parts).size, 1000)
    assert.equal(again.log.seq, 1000)
    // Appending after a reopen goes on from there.
    for (const u of updates(30, 1000)) await again.append([u])
    await again.log.drain()
    assert.equal(reload((await openLog(store, 10)).parts).size, 1030)
  })

  it('never merges segments beyond maxSegmentBytes', async (t) => {
    const store = await tempStore(t)
    const { log, append } = await openLog(store, 10, 600)
    for (const u of updates(200)) await append([u])
    await log.drain()
    const segments = (await keys(store)).filter((k) => k.startsWith('s/')).length
    assert.ok(segments >= 5, `${segments} segments`)
    assert.equal(reload((await openLog(store, 10, 600)).parts).size, 200)
  })

  it('by default never joins segments beyond 256 KiB: no compaction encodes more at once (issue 15, p99)', async (t) => {
    const store = await tempStore(t)
    const { log, append } = await openLog(store, 50)
    // 1,200 updates of 2 KiB: 2.4 MiB, compacted every 50 (100 KiB a segment before joins).
    const rows = bigUpdates(1200, 2048)
    for (let i = 0; i < rows.length; i += 10) await append(rows.slice(i, i + 10))
    await log.drain()
    const sizes: number[] = []
    for await (const [key, value] of roomSublevel(store, ROOM).iterator())
      if (key.startsWith('s/')) sizes.push(value.byteLength)
    assert.ok(sizes.length >= 8, `${sizes.length} segments`)
    assert.ok(Math.max(...sizes) <= MAX_SEGMENT_BYTES, `largest segment ${Math.max(...sizes)} bytes`)
    assert.equal(reload((await openLog(store, 50)).parts).size, 1200)
  })

  it('compacts once the logged updates reach 256 KiB, before compactEvery of them (issue 15, p99)', async (t) => {
    const store = await tempStore(t)
    const { log, append } = await openLog(store, 500)
    // 80 updates of 8 KiB (a peer's merged batch of messages is one update): the first 40
    // are 320 KiB, far fewer than 500 updates; their diff, encoded at once, would exceed
    // what a join may.
    const rows = bigUpdates(80, 8192)
    assert.ok(rows.slice(0, 40).reduce((n, u) => n + u.byteLength, 0) > MAX_SEGMENT_BYTES)
    for (const u of rows.slice(0, 40)) await append([u])
    await log.drain()
    const stored = await keys(store)
    assert.ok(
      stored.some((k) => k.startsWith('s/')),
      'a segment written',
    )
    assert.ok(stored.filter((k) => k.startsWith('u/')).length < 40, 'rows it holds deleted')
    // A reopened log counts the bytes of its rows after the last segment, and goes on.
    const again = await openLog(store, 500)
    assert.equal(reload(again.parts).size, 40)
    for (const u of rows.slice(40)) await again.append([u])
    await again.log.drain()
    assert.equal(reload((await openLog(store, 500)).parts).size, 80)
    assert.ok((await keys(store)).filter((k) => k.startsWith('u/')).length < 40)
    // No segment encoded at once is much over the bound (at most the update that reached it).
    for await (const [key, value] of roomSublevel(store, ROOM).iterator())
      if (key.startsWith('s/'))
        assert.ok(value.byteLength <= MAX_SEGMENT_BYTES + 16 * 1024, `${value.byteLength} B`)
  })

  it('reads a store of the earlier layout (one snapshot of the whole state) and goes on', async (t) => {
    const store = await tempStore(t)
    const first = updates(50)
    const sub = roomSublevel(store, ROOM)
    await sub.put(`s/${String(40).padStart(16, '0')}`, Y.mergeUpdates(first.slice(0, 40)))
    for (let seq = 41; seq <= 50; seq++)
      await sub.put(`u/${String(seq).padStart(16, '0')}`, first[seq - 1] as Uint8Array)
    const log = await openLog(store, 10)
    assert.equal(reload(log.parts).size, 50)
    for (const u of updates(25, 50)) await log.append([u])
    await log.log.drain()
    assert.equal(reload((await openLog(store, 10)).parts).size, 75)
  })
})
