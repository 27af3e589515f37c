/**
 * A node holding many rooms (issue 15, growth): `rooms` rooms (default 1,000 ×
 * BENCH_ROOMS_SCALE) of `messages` messages each (default 20), in one store.
 *
 * - `rooms.many_heap_mib.unloaded`: the heap a fresh RoomManager holds after every room
 *   was loaded once and the idle ones were unloaded (lazy rooms, `roomIdleUnloadMs`), vs
 *   the same rooms all loaded (what a node without unloading holds once each room was
 *   used): target ≤ 0.1×.
 * - `rooms.many_load_one_ms`: median wall ms to load one unloaded room on demand
 *   (`RoomManager.load`: record, log read, apply, indexes), vs reading the same room's
 *   stored bytes with a raw iterator and `Y.applyUpdate` into a plain doc (what a stock
 *   Yjs store does): target ≤ 2×.
 */
import * as Y from 'yjs'
import type { RoomManager } from '../../src/rooms/index.ts'
import { roomSublevel } from '../../src/rooms/room-log.ts'
import type { MeshStore } from '../../src/store/index.ts'
import type { NodePool } from './nodes.ts'
import { emit, median, note, type ResultName } from './report.ts'
import { alice, clock, fillRoom, manager, meshA, openStore } from './rooms-fixture.ts'
import { heap } from './rooms-scale.ts'

export const ROOMS_MANY_NAMES: ResultName[] = [
  { name: 'rooms.many_heap_mib.unloaded', unit: 'MiB', better: 'lower' },
  { name: 'rooms.many_load_one_ms', unit: 'ms', better: 'lower' },
]

export interface ManyInit {
  pool: NodePool
  rooms?: number
  messages?: number
  /** Rooms loaded on demand for the median; default 50. */
  samples?: number
}

export async function benchRoomsMany(init: ManyInit): Promise<void> {
  const scale = Number(process.env.BENCH_ROOMS_SCALE ?? 1)
  const count = init.rooms ?? Math.round(1000 * scale)
  const messages = init.messages ?? 20
  const samples = Math.min(init.samples ?? 50, count)
  const store = await openStore(init.pool, 'many')
  const managers: RoomManager[] = []
  try {
    const maker = await manager(store, meshA, { roomIdleUnloadMs: 0 })
    managers.push(maker)
    const ids: string[] = []
    const t0 = performance.now()
    for (let i = 0; i < count; i += 16) {
      const batch = Array.from({ length: Math.min(16, count - i) }, async (_, j) => {
        const { id } = await maker.create({ name: `room ${i + j}`, creator: alice.did })
        await fillRoom(maker, await maker.load(id), messages)
        return id
      })
      ids.push(...(await Promise.all(batch)))
    }
    await maker.stop()
    note(
      `rooms many: ${count} rooms of ${messages} messages made in ${Math.round(performance.now() - t0)} ms`,
    )

    // Every room loaded once, then the idle ones unloaded (the sweep's work, done at once here).
    const h0 = heap()
    const rooms = await manager(store, meshA, { roomIdleUnloadMs: 60_000 })
    managers.push(rooms)
    for (const id of ids) await rooms.load(id)
    const loaded = heap() - h0
    clock.now += 60_000 // the fixture's virtual clock: every room idle for a minute
    const unloaded = rooms.unloadIdle()
    await new Promise((resolve) => setImmediate(resolve))
    const after = heap() - h0
    if (rooms.loaded().length !== 0) throw new Error(`${rooms.loaded().length} rooms still loaded`)

    // One room on demand, vs a raw read and a plain apply of the same bytes.
    const ours: number[] = []
    const plain: number[] = []
    for (const id of ids.slice(0, samples)) {
      let w = performance.now()
      await rawLoad(store, id)
      plain.push(performance.now() - w)
      w = performance.now()
      await rooms.load(id)
      ours.push(performance.now() - w)
    }
    note(
      `rooms many: ${count} rooms loaded ${(loaded / 2 ** 20).toFixed(1)} MiB, after unloading ${unloaded} ` +
        `${(after / 2 ** 20).toFixed(1)} MiB; one on demand ${median(ours).toFixed(2)} ms median ` +
        `(raw read + Y.applyUpdate ${median(plain).toFixed(2)} ms)`,
    )
    emit('rooms.many_heap_mib.unloaded', after / 2 ** 20, 'MiB', loaded / 2 ** 20, 0.1, 'lower')
    emit('rooms.many_load_one_ms', median(ours), 'ms', median(plain), 2, 'lower')
  } finally {
    for (const rooms of managers) await rooms.stop()
    await store.close()
  }
}

/** What a stock Yjs store does to load a document: read its stored updates, apply them. */
async function rawLoad(store: MeshStore, id: string): Promise<void> {
  const doc = new Y.Doc({ gc: false })
  const parts: Uint8Array[] = []
  for await (const value of roomSublevel(store, id).values({ lt: 'v/' })) parts.push(value)
  doc.transact(() => {
    for (const part of parts) Y.applyUpdate(doc, part)
  })
  doc.destroy()
}
