/**
 * Rooms as they grow (issue 15, SPEC §14): load time and memory of a room of 1k, 10k
 * and 100k messages, validation cost per update at each size, and the memory of an
 * idle loaded room beyond its content.
 *
 * One room homed at A grows by alice's sealed writes (500 messages a write) to each
 * size; its log is compacted to one snapshot, as RoomLog leaves a room by then. Then:
 *
 * - `rooms.load_ms.<size>`: a fresh RoomManager over the same store loads it (log read,
 *   merge, apply, indexes) vs `Y.applyUpdate` of the same document (its snapshot) into
 *   a plain `Y.Doc`; CPU time of this process, every thread (the machine is shared).
 *   Aim ≤ 2×.
 * - `rooms.room_heap_mib.<size>`: heap held by the loaded room (after full GCs) vs the
 *   plain document's. The issue aims for ≤ 64 KiB beyond the content: target 1.1×.
 * - `rooms.validate_us.<size>`: median CPU time (µs) of `Room.applyUpdate` of one of
 *   carol's posts from B (one message, its seal, a peer update: the synchronous part —
 *   decode, checks, apply, index) over `updates` updates, vs
 *   the same figure at the smallest size: it must not grow with the room (target 1.5×).
 *   `rooms.validate_first_ms.<size>`: the first such update after a load, which builds
 *   nothing more since issue 15 (no scratch copy), vs `Y.applyUpdate` of the whole document (target 2×).
 * - `rooms.post_cpu_us.<size>`: CPU µs per post at A (`RoomManager.post`, durable),
 *   over enough posts to cross a compaction of the log, vs the smallest size: it must
 *   not grow with the room (target 1.5×; before issue 15, each compaction re-encoded the
 *   whole document).
 * - `rooms.idle_room_kib`: `idleRooms` rooms of 200 messages loaded idle in one manager
 *   (no awareness): heap per room beyond the same snapshots applied to
 *   plain docs, vs the budget of 64 KiB (target 1×).
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import * as Y from 'yjs'
import type { Room, RoomManager, RoomOrigin } from '../../src/rooms/index.ts'
import { roomSublevel } from '../../src/rooms/room-log.ts'
import type { MeshStore } from '../../src/store/index.ts'
import type { NodePool } from './nodes.ts'
import { emit, median, note, type ResultName } from './report.ts'
import {
  alice,
  body,
  carol,
  cpuMs,
  fill,
  fillRoom,
  manager,
  meshA,
  meshB,
  openStore,
  type Shared,
  sharedRoom,
} from './rooms-fixture.ts'

const DEFAULT_SIZES = [1_000, 10_000, 100_000]

export function roomsScaleNames(sizes = roomsSizes()): ResultName[] {
  return [
    { name: 'rooms.idle_room_kib', unit: 'KiB', better: 'lower' },
    ...sizes.flatMap((size): ResultName[] => [
      { name: `rooms.load_ms.${label(size)}`, unit: 'ms', better: 'lower' },
      { name: `rooms.room_heap_mib.${label(size)}`, unit: 'MiB', better: 'lower' },
      { name: `rooms.validate_us.${label(size)}`, unit: 'µs', better: 'lower' },
      { name: `rooms.validate_first_ms.${label(size)}`, unit: 'ms', better: 'lower' },
      { name: `rooms.post_cpu_us.${label(size)}`, unit: 'µs', better: 'lower' },
    ]),
  ]
}

/** BENCH_ROOMS_SIZES (comma-separated message counts) or 1k, 10k, 100k. */
export function roomsSizes(): number[] {
  const env = process.env.BENCH_ROOMS_SIZES
  if (env === undefined || env.trim() === '') return DEFAULT_SIZES
  return env.split(',').map((s) => Number(s.trim()))
}

function label(size: number): string {
  return size >= 1000 && size % 1000 === 0 ? `${size / 1000}k` : String(size)
}

/** A full, synchronous GC (exposed for this process on first use). */
let collect: (() => void) | undefined
function gc(): void {
  if (collect === undefined) {
    setFlagsFromString('--expose-gc')
    collect = runInNewContext('gc') as () => void
  }
  collect()
  collect()
}

export function heap(): number {
  gc()
  return process.memoryUsage().heapUsed
}

export interface ScaleInit {
  pool: NodePool
  sizes?: number[]
  /** Peer updates timed at each size; default 200. */
  updates?: number
  /** Rooms for the idle-room figure; default 20. */
  idleRooms?: number
}

export async function benchRoomsScale(init: ScaleInit): Promise<void> {
  const sizes = init.sizes ?? roomsSizes()
  const updates = init.updates ?? 200
  const storeA = await openStore(init.pool, 'a')
  const storeB = await openStore(init.pool, 'b')
  const shared = await sharedRoom(storeA, storeB)
  const managers: RoomManager[] = [shared.a, shared.b]
  try {
    await idleRoom(storeA, init.idleRooms ?? 20, managers)
    let smallest: number | undefined
    let smallestPost: number | undefined
    for (const size of sizes) {
      await fill(shared, size - shared.roomA.messageCount)
      // A restarts: a fresh manager loads the room from its store.
      await shared.a.stop()
      const snapshot = await storedSnapshot(storeA, shared.id)
      const plain = applyPlain(snapshot)
      const h0 = heap()
      const t0 = cpuMs()
      const w0 = performance.now()
      const a = await manager(storeA, meshA)
      managers.push(a)
      const roomA = await a.load(shared.id)
      const loadMs = cpuMs() - t0
      const loadWall = performance.now() - w0
      const roomHeap = heap() - h0
      Object.assign(shared, { a, roomA })
      if (roomA.messageCount < size) throw new Error(`loaded ${roomA.messageCount} messages, not ${size}`)

      const posts = await carolPosts(shared, updates + 1)
      const first = applyTimed(roomA, posts[0] as Uint8Array)
      const times: number[] = []
      for (const update of posts.slice(1)) times.push(applyTimed(roomA, update) * 1000)
      await roomA.flush()
      const validate = median(times)
      smallest ??= validate
      const post = await postCpu(a, shared.id, posts.length + 400)
      smallestPost ??= post
      note(
        `rooms at ${size} messages: load ${Math.round(loadMs)} ms CPU (${Math.round(loadWall)} ms wall) vs ` +
          `Y.applyUpdate ${Math.round(plain.ms)} ms (${(snapshot.byteLength / 2 ** 20).toFixed(1)} MiB snapshot); ` +
          `heap ${(roomHeap / 2 ** 20).toFixed(1)} MiB vs ${(plain.heap / 2 ** 20).toFixed(1)} MiB; ` +
          `peer update ${Math.round(validate)} µs median, first ${Math.round(first)} ms; ` +
          `a post ${Math.round(post)} µs CPU (compaction included)`,
      )
      emit(`rooms.load_ms.${label(size)}`, loadMs, 'ms', plain.ms, 2, 'lower')
      emit(
        `rooms.room_heap_mib.${label(size)}`,
        roomHeap / 2 ** 20,
        'MiB',
        plain.heap / 2 ** 20,
        1.1,
        'lower',
      )
      emit(`rooms.validate_us.${label(size)}`, validate, 'µs', smallest, 1.5, 'lower')
      emit(`rooms.validate_first_ms.${label(size)}`, first, 'ms', plain.ms, 2, 'lower')
      emit(`rooms.post_cpu_us.${label(size)}`, post, 'µs', smallestPost, 1.5, 'lower')
    }
  } finally {
    for (const rooms of managers) await rooms.stop()
    await storeA.close()
    await storeB.close()
  }
}

/** The room's stored snapshot (the log is compacted to it: see `fill`). */
async function storedSnapshot(store: MeshStore, id: string): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const value of roomSublevel(store, id).values({ lt: 'v/' })) parts.push(value)
  return parts.length === 1 ? (parts[0] as Uint8Array) : Y.mergeUpdates(parts)
}

/** CPU ms and heap bytes of `Y.applyUpdate` of `update` into a plain doc (then dropped). */
function applyPlain(update: Uint8Array): { ms: number; heap: number } {
  const h0 = heap()
  const t0 = cpuMs()
  const doc = new Y.Doc({ gc: false })
  Y.applyUpdate(doc, update)
  const ms = cpuMs() - t0
  const held = heap() - h0
  doc.destroy()
  return { ms, heap: held }
}

/** CPU ms of the synchronous part of a peer update (validation and apply); the write goes on. */
function applyTimed(room: Room, update: Uint8Array): number {
  const t0 = cpuMs()
  const applying = room.applyUpdate(update, { kind: 'peer', meshDid: meshB.did })
  const ms = cpuMs() - t0
  applying.then(
    (result) => {
      if (result.error !== undefined) note(`rooms scale: a peer update was refused: ${result.error.message}`)
    },
    (err: unknown) => note(`rooms scale: a peer update failed: ${String(err)}`),
  )
  return ms
}

/**
 * CPU µs per post of alice's at A (`RoomManager.post`, one at a time, until durable), over
 * `n` posts: with the peer updates before them, past the log's compaction (every 500
 * updates), whose cost is the point — it must not grow with the room (issue 15). One at a
 * time, each post is its own turn, update and log row (posts of one turn share them since
 * batch15, and 16 in flight would no longer reach the compaction).
 */
async function postCpu(rooms: RoomManager, id: string, n: number): Promise<number> {
  const t0 = cpuMs()
  for (let i = 0; i < n; i++) await rooms.post(id, alice.did, body(i))
  return ((cpuMs() - t0) * 1000) / n
}

/** `n` posts of carol's at B, each the update B's link would send. */
async function carolPosts(shared: Shared, n: number): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  const listener = (update: Uint8Array, origin: RoomOrigin | null): void => {
    if (origin?.source === 'local') out.push(update)
  }
  shared.roomB.doc.on('update', listener)
  // One at a time (issue 15, batch15): posts of one turn would share one update and one batch seal.
  for (let i = 0; i < n; i++) await shared.b.post(shared.id, carol.did, body(i))
  shared.roomB.doc.off('update', listener)
  return out
}

/** `rooms.idle_room_kib`: `count` rooms of 200 messages, loaded idle in a fresh manager. */
async function idleRoom(store: MeshStore, count: number, managers: RoomManager[]): Promise<void> {
  const maker = await manager(store, meshA)
  managers.push(maker)
  const ids: string[] = []
  for (let i = 0; i < count; i++) {
    const { id } = await maker.create({ name: `idle ${i}`, creator: alice.did })
    await fillRoom(maker, await maker.load(id), 200)
    ids.push(id)
  }
  await maker.stop()
  const snapshots = await Promise.all(ids.map((id) => storedSnapshot(store, id)))
  let h0 = heap()
  const docs = snapshots.map((snapshot) => {
    const doc = new Y.Doc({ gc: false })
    Y.applyUpdate(doc, snapshot)
    return doc
  })
  const plain = (heap() - h0) / count
  for (const doc of docs) doc.destroy()
  docs.length = 0
  h0 = heap()
  const rooms = await manager(store, meshA)
  managers.push(rooms)
  const managerHeap = heap() - h0
  h0 = heap()
  for (const id of ids) await rooms.load(id)
  const perRoom = (heap() - h0) / count
  const overhead = (perRoom - plain) / 1024
  note(
    `rooms idle: ${count} rooms of 200 messages: ${Math.round(perRoom / 1024)} KiB each loaded vs ` +
      `${Math.round(plain / 1024)} KiB plain Y.Doc (the manager itself ${Math.round(managerHeap / 1024)} KiB)`,
  )
  emit('rooms.idle_room_kib', overhead, 'KiB', 64, 1, 'lower')
}
