/**
 * Rooms for the rooms benchmarks (SPEC §14): real RoomManagers over real MeshStores
 * (LevelDB, fsynced as the node runs it) in temp directories of a NodePool, one room
 * homed at mesh A and shared with mesh B (alice at A, carol at B), on a virtual clock
 * that starts 30 minutes ago and moves 1 ms per message, so that a room of 100k
 * messages is never dated in the future.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import * as Y from 'yjs'
import { Ed25519KeyPair } from '../../src/identity/index.ts'
import {
  contentId,
  type LocalPrincipal,
  type MessageEntry,
  type Room,
  RoomManager,
  type RoomManagerInit,
} from '../../src/rooms/index.ts'
import { roomSublevel } from '../../src/rooms/room-log.ts'
import { MeshStore } from '../../src/store/index.ts'
import type { NodePool } from './nodes.ts'

export const meshA = Ed25519KeyPair.generate()
export const meshB = Ed25519KeyPair.generate()
export const alice = Ed25519KeyPair.generate()
export const carol = Ed25519KeyPair.generate()

const PRINCIPALS: Record<string, Record<string, LocalPrincipal>> = {
  [meshA.did]: { [alice.did]: { localId: 'alice', tier: 1 } },
  [meshB.did]: { [carol.did]: { localId: 'carol', tier: 2 } },
}

/** The shared virtual clock (ms). */
export const clock = { now: Date.now() - 30 * 60_000 }
const now = (): number => clock.now

const WORDS = 'the mesh keeps every room in sync across meshes while peers come and go offline'.split(' ')

/** A message body of about 100 UTF-8 bytes (a chat line), different for each i. */
export function body(i: number): string {
  let out = `#${i}`
  let k = i
  while (out.length < 100) {
    out += ` ${WORDS[k % WORDS.length]}`
    k = (k * 7 + 3) % 1009
  }
  return out
}

export async function openStore(pool: NodePool, name: string): Promise<MeshStore> {
  const dir = await pool.dir(`bench-rooms-${name}-`)
  const store = new MeshStore({ path: join(dir, 'db') })
  await store.open()
  return store
}

export async function manager(
  store: MeshStore,
  key: Ed25519KeyPair,
  options: Partial<RoomManagerInit> = {},
): Promise<RoomManager> {
  const rooms = new RoomManager({
    localPrincipal: async (did) => PRINCIPALS[key.did]?.[did],
    store,
    key: () => key,
    meshName: key === meshA ? 'alpha' : 'beta',
    now,
    ...options,
  })
  await rooms.start()
  stores.set(rooms, store)
  return rooms
}

const stores = new WeakMap<RoomManager, MeshStore>()

/** The store a manager of this module was made over. */
export function storeOf(rooms: RoomManager): MeshStore {
  const store = stores.get(rooms)
  if (store === undefined) throw new Error('not a bench manager')
  return store
}

export interface Shared {
  a: RoomManager
  b: RoomManager
  roomA: Room
  roomB: Room
  id: string
}

/** A room homed at A (alice, owner), shared with B where carol joined; both replicas in sync. */
export async function sharedRoom(storeA: MeshStore, storeB: MeshStore): Promise<Shared> {
  const a = await manager(storeA, meshA)
  const b = await manager(storeB, meshB)
  const { id } = await a.create({ name: 'bench', creator: alice.did })
  await b.adopt({ id, homeMesh: meshA.did })
  const roomA = await a.load(id)
  const roomB = await b.load(id)
  await syncPeer(roomA, roomB, meshA.did)
  await b.join(id, carol.did)
  await syncPeer(roomB, roomA, meshB.did)
  return { a, b, roomA, roomB, id }
}

/** Sends `to` everything `from` has that it lacks, as a peer update; throws on a refusal. */
export async function syncPeer(from: Room, to: Room, fromMesh: string): Promise<void> {
  const diff = Y.encodeStateAsUpdate(from.doc, Y.encodeStateVector(to.doc))
  const result = await to.applyUpdate(diff, { kind: 'peer', meshDid: fromMesh })
  if (result.error !== undefined) throw result.error
}

/** A message of `author` (a principal of `mesh`), dated by the virtual clock. */
export function message(room: string, author: string, mesh: string, i: number): MessageEntry {
  clock.now++
  return { v: 1, room, author, authorMesh: mesh, body: body(i), mentions: [], ts: clock.now }
}

/**
 * Adds `count` of alice's messages to A's room, each its own write in its own turn of the
 * event loop (the node's own path, less HTTP), as a room written message by message over
 * time holds them: one seal each, not batch records (issue 15, batch15: the writes of one
 * turn share one), the log group-committing them; then compacts the room's log into one
 * snapshot as the node's log would have done by then.
 */
export async function fill(shared: Shared, count: number): Promise<void> {
  await fillRoom(shared.a, shared.roomA, count)
}

/** `fill` for any room of A's. */
export async function fillRoom(rooms: RoomManager, room: Room, count: number): Promise<void> {
  const start = room.messageCount
  const written: Array<Promise<void>> = []
  for (let i = 0; i < count; i++) {
    const value = message(room.id, alice.did, meshA.did, start + i)
    written.push(room.write([{ map: 'messages', key: contentId(value), value }]))
    await new Promise((resolve) => setImmediate(resolve)) // the next write in the next turn
    if (written.length >= 512) await Promise.all(written.splice(0))
  }
  await Promise.all(written)
  await compact(rooms, room)
}

/**
 * Replaces a room's stored log by one segment of its whole document (what RoomLog compaction
 * writes), then has LevelDB compact what that left behind. A node writes a room of 100k
 * messages over hours, LevelDB compacting as it goes; `fill` writes it at once (tens of MiB
 * of updates, deleted, and a snapshot as large), and LevelDB's background compaction of
 * that would otherwise run (on this process's threads) during whatever is timed next
 * (issue 15: `rooms.post_cpu_us.100k` measured it: 60–130 ms of a LevelDB thread and
 * ≈ 100 ms of system time for 601 posts, none of it at 1k).
 */
export async function compact(rooms: RoomManager, room: Room): Promise<void> {
  await room.flush()
  const sub = roomSublevel(storeOf(rooms), room.id)
  const keys: string[] = []
  for await (const key of sub.keys()) keys.push(key)
  const last = keys.filter((k) => k.startsWith('u/')).at(-1) ?? keys.at(-1) ?? 's/0000000000000001'
  const seq = last.slice(2)
  const snapshot = Y.encodeStateAsUpdate(room.doc)
  await sub.batch([
    ...keys.map((key) => ({ type: 'del' as const, key })),
    { type: 'put' as const, key: `s/${seq}`, value: snapshot },
    // With its state vector, as RoomLog writes a segment (issue 15): no decode to find it.
    { type: 'put' as const, key: `v/${seq}`, value: Y.encodeStateVector(room.doc) },
  ])
  // A small room leaves LevelDB little to do (and the 1,000-room bench would pay a compaction per room).
  if (snapshot.byteLength >= SETTLE_BYTES) await settle(sub)
}

/**
 * This process's CPU time (ms, every thread: LevelDB's included). The rooms benches time
 * CPU-bound work with it: the machine is shared, and wall time counts other processes.
 */
export function cpuMs(): number {
  const usage = process.cpuUsage()
  return (usage.user + usage.system) / 1000
}

/**
 * CPU ms of the calling (main) thread alone (Linux: /proc/thread-self/schedstat, ns on a
 * CPU); NaN elsewhere. Beside `cpuMs`: work moved to another thread shows in one, not the
 * other (issue 15, verify15).
 */
export function mainThreadMs(): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6
  } catch {
    return Number.NaN
  }
}

const SETTLE_BYTES = 256 * 1024

/** LevelDB compacts the room's keys now (classic-level `compactRange` on the root database, over the sublevel's range). */
async function settle(sub: { db: unknown; prefix: string }): Promise<void> {
  // A sublevel's keys are its prefix (ending in '!') and more: up to the prefix with '"' for its last '!'.
  const end = `${sub.prefix.slice(0, -1)}"`
  await (sub.db as { compactRange(start: string, end: string): Promise<void> }).compactRange(sub.prefix, end)
}
