/**
 * B6, `rooms.durable_msgs_per_s` (SPEC §14): messages made durable per second through a
 * real Room and its LevelDB log, side by side in one run with the same update bytes
 * written by raw classic-level batches and by y-leveldb.
 *
 * - The room: mesh B's posts (carol's, `window` in flight: the posts of one turn are one
 *   Yjs update under one batch seal, as `RoomManager.post` makes them, issue 15) captured at B, then applied at A as B's link delivers them:
 *   `Room.applyPeerUpdate(update, peer)` — decode, seals shared with a verifying
 *   thread, then validate (membership, shape, each seal found good by that thread or
 *   verified then), apply, index, group-committed log write, fsynced
 *   (MeshStore's default) — frames applied in order as the replicator does, waiting for
 *   the store only with more than `window` in flight. Resolved = durable. One untimed round
 *   of n messages (posts at B, applied at A), then `ROUNDS` timed: the medians are the figures.
 * - `.vs_level`: the same bytes put by raw classic-level (`sync: true`, the node's
 *   durability), one value a message (an update's bytes cut in as many slices as it
 *   carries messages), in batches of `window`, one batch at a time (target ≥ 0.5×).
 * - `.vs_y_leveldb`: y-leveldb 0.2 `storeUpdate` of the same messages as a stock Yjs
 *   server persists them: one update a message (a client's transaction: the entry and
 *   its seal), `window` in flight (stock: unsynced, a read and a put per update) (target
 *   ≥ 2×). Like raw classic-level's one value a message, it is not handed this node's
 *   batching; its rate on the batched updates the link carries is printed beside it.
 * - `rooms.durable_posts_per_s`: carol's posts at B through `RoomManager.post` (the
 *   node's own write: entry, content id, seal, log), `window` in flight, against the
 *   same raw classic-level figure.
 * - `rooms.durable_posts_per_s.rooms16`: alice's posts at A into 16 rooms at once, one
 *   in flight per room (16 in all), against the same raw figure: every room's log rows
 *   share the store's group-committed writes (store/group-commit.ts).
 */
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { LeveldbPersistence } from 'y-leveldb'
import * as Y from 'yjs'
import type { RoomOrigin } from '../../src/rooms/index.ts'
import type { NodePool } from './nodes.ts'
import { emit, fmt, median, note, type ResultName } from './report.ts'
import { alice, body, carol, cpuMs, mainThreadMs, meshB, openStore, sharedRoom } from './rooms-fixture.ts'

/** Timed rounds of the post and peer phases (after one untimed): their medians are the figures. */
const ROUNDS = 3

export const ROOMS_DURABLE_NAMES: ResultName[] = [
  { name: 'rooms.durable_msgs_per_s.vs_level', unit: 'msgs/s', better: 'higher' },
  { name: 'rooms.durable_msgs_per_s.vs_y_leveldb', unit: 'msgs/s', better: 'higher' },
  { name: 'rooms.durable_posts_per_s.vs_level', unit: 'msgs/s', better: 'higher' },
  { name: 'rooms.durable_posts_per_s.rooms16', unit: 'msgs/s', better: 'higher' },
]

export interface DurableInit {
  pool: NodePool
  /** Messages per side; default 2000 × BENCH_ROOMS_SCALE. */
  messages?: number
  /** Writes in flight; default 16. */
  window?: number
}

/** Runs `fn(i)` for i < n with at most `window` in flight; resolves when all did. */
async function windowed(n: number, window: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < n) await fn(next++)
  }
  await Promise.all(Array.from({ length: Math.min(window, n) }, worker))
}

/** How many messages an update carries. */
function messagesIn(update: Uint8Array): number {
  const { structs } = Y.decodeUpdate(update)
  return structs.filter((s) => (s as unknown as { parent: unknown }).parent === 'messages').length
}

/** `u` cut in `k` slices of about the same size (k ≥ 1). */
function slices(u: Uint8Array, k: number): Uint8Array[] {
  const size = Math.ceil(u.byteLength / k)
  return Array.from({ length: k }, (_, j) => u.subarray(j * size, Math.min(u.byteLength, (j + 1) * size)))
}

/** The room's messages as a stock Yjs client writes them: one transaction a message, with its seal. */
function stockUpdates(room: Y.Doc): Uint8Array[] {
  const doc = new Y.Doc()
  const out: Uint8Array[] = []
  doc.on('update', (u: Uint8Array) => out.push(u))
  const seals = room.getMap('seals')
  for (const [id, entry] of room.getMap('messages').entries())
    doc.transact(() => {
      doc.getMap('messages').set(id, entry)
      doc.getMap('seals').set(`messages/${id}`, seals.get(`messages/${id}`))
    })
  doc.destroy()
  return out
}

/** y-leveldb 0.2 `storeUpdate` of `updates` (`n` messages in all), `window` in flight: messages a second. */
async function yLeveldbRate(
  pool: NodePool,
  updates: Uint8Array[],
  n: number,
  window: number,
): Promise<number> {
  const y = new LeveldbPersistence(join(await pool.dir('bench-rooms-yleveldb-'), 'db'))
  const t0 = performance.now()
  await windowed(updates.length, window, (i) => y.storeUpdate('bench', updates[i] as Uint8Array))
  const r = rate(n, t0)
  await y.destroy()
  return r
}

function rate(n: number, t0: number): number {
  return n / ((performance.now() - t0) / 1000)
}

export async function benchRoomsDurable(init: DurableInit): Promise<void> {
  const scale = Number(process.env.BENCH_ROOMS_SCALE ?? 1)
  const n = init.messages ?? Math.round(2000 * scale)
  const window = init.window ?? 16
  const storeA = await openStore(init.pool, 'a')
  const storeB = await openStore(init.pool, 'b')
  const shared = await sharedRoom(storeA, storeB)
  const { a, b, roomA, roomB, id } = shared
  try {
    // Rounds of n messages each: one untimed (V8 compiles the post and peer paths while it
    // runs: ≈ 20–30 µs a message of compiler threads, durable15), then ROUNDS timed, whose
    // medians are the figures, as the raw classic-level baseline's are (fsync times on a
    // shared disk vary several-fold from one second to the next).
    const updates: Uint8Array[] = []
    roomB.doc.on('update', (update: Uint8Array, origin: RoomOrigin | null) => {
      if (origin?.source === 'local') updates.push(update)
    })
    const postRates: number[] = []
    const postCpus: number[] = []
    const peerRates: number[] = []
    const peerCpus: number[] = []
    const peerMains: number[] = []
    const storeWrites: number[] = []
    let carried: number[] = []
    let roundUpdates: Uint8Array[] = []
    for (let round = 0; round <= ROUNDS; round++) {
      // Carol posts at B: the post path, and the updates B's link would send to A.
      updates.length = 0
      let t0 = performance.now()
      let c0 = cpuMs()
      await windowed(n, window, (i) => b.post(id, carol.did, body(round * n + i)))
      const posts = rate(n, t0)
      const postCpu = ((cpuMs() - c0) * 1000) / n
      // Issue 15 (batch15): the posts of one turn are one update under one batch seal, as the
      // origin now makes them (≈ `window` posts an update here): what B's link would carry.
      roundUpdates = [...updates]
      carried = roundUpdates.map(messagesIn)
      const sent = carried.reduce((sum, k) => sum + k, 0)
      if (sent !== n)
        throw new Error(`captured ${sent} messages in ${roundUpdates.length} updates for ${n} posts`)

      // A applies them as B's link delivers them (replicator.ts #apply: each frame applied at
      // once, in order; the link waits for the store only past `window` applies in flight).
      t0 = performance.now()
      c0 = cpuMs()
      const m0 = mainThreadMs()
      const peerGroup0 = storeA.groupStats
      let inflight = 0
      const pending: Promise<void>[] = []
      for (const update of roundUpdates) {
        const applying = roomA.applyPeerUpdate(update, meshB.did)
        inflight++
        const done = applying.then((result) => {
          inflight--
          if (result.error !== undefined) throw result.error
        })
        pending.push(done)
        if (inflight > window) await done
      }
      await Promise.all(pending)
      const peer = rate(n, t0)
      const peerCpu = ((cpuMs() - c0) * 1000) / n
      const peerMain = ((mainThreadMs() - m0) * 1000) / n
      if (roomA.messageCount !== (round + 1) * n)
        throw new Error(`room A holds ${roomA.messageCount} messages, not ${(round + 1) * n}`)
      if (round === 0) continue // the warm-up
      postRates.push(posts)
      postCpus.push(postCpu)
      peerRates.push(peer)
      peerCpus.push(peerCpu)
      peerMains.push(peerMain)
      storeWrites.push(storeA.groupStats.writes - peerGroup0.writes)
    }
    const bytes = roundUpdates.reduce((sum, u) => sum + u.byteLength, 0)
    note(
      `rooms durable: ${n} messages a round in ${roundUpdates.length} updates, ${Math.round(bytes / n)} bytes a message; ` +
        `1 warm-up round, then ${ROUNDS} timed (medians)`,
    )
    const posts = median(postRates)
    const peer = median(peerRates)
    // CPU per message (every thread of this process, LevelDB's included): steadier than the rates.
    note(
      `rooms durable CPU per message: peer ${Math.round(median(peerCpus))} µs (main thread ${Math.round(median(peerMains))}, ` +
        `${fmt(storeWrites)} store writes a round), post ${Math.round(median(postCpus))} µs; ` +
        `by round: peer ${fmt(peerRates.map(Math.round))} msgs/s at ${fmt(peerCpus.map(Math.round))} µs`,
    )
    // Raw classic-level puts one value a message, as before the batch seals (n puts, the same
    // bytes in all): each update's bytes cut in as many slices as it carries messages.
    const perMessage = roundUpdates.flatMap((u, i) => slices(u, carried[i] as number))

    // 16 rooms at A, one post in flight in each: the store's writes are shared by the rooms.
    const ids: string[] = []
    for (let r = 0; r < window; r++) ids.push((await a.create({ name: `bench ${r}`, creator: alice.did })).id)
    for (const rid of ids) await a.load(rid)
    const group0 = storeA.groupStats
    let t0 = performance.now()
    const c0 = cpuMs()
    await Promise.all(
      ids.map(async (rid, r) => {
        for (let k = r; k < n; k += ids.length) await a.post(rid, alice.did, body(k))
      }),
    )
    const manyRooms = rate(n, t0)
    const manyCpu = ((cpuMs() - c0) * 1000) / n
    const group1 = storeA.groupStats
    note(
      `rooms durable, ${ids.length} rooms: ${Math.round(manyRooms)} posts/s, CPU ${Math.round(manyCpu)} µs a post, ` +
        `${group1.writes - group0.writes} store writes for ${group1.batches - group0.batches} batches`,
    )

    // Raw classic-level: the same bytes, batches of `window`, synced; median of 3 runs
    // (fsync times on a shared disk vary several-fold from one second to the next).
    const levels: number[] = []
    for (let run = 0; run < 3; run++) {
      const dir = await init.pool.dir('bench-rooms-raw-')
      const raw = new ClassicLevel<string, Uint8Array>(join(dir, 'db'), { valueEncoding: 'view' })
      await raw.open()
      t0 = performance.now()
      for (let i = 0; i < n; i += window) {
        const batch = perMessage.slice(i, i + window).map((value, j) => ({
          type: 'put' as const,
          key: `u/${String(i + j).padStart(16, '0')}`,
          value,
        }))
        await raw.batch(batch, { sync: true })
      }
      levels.push(rate(n, t0))
      await raw.close()
    }
    const level = median(levels)

    // y-leveldb as a stock Yjs server stores the same messages: one update a message (a
    // client's transaction: the entry and its seal), `window` in flight. (It decodes what it
    // stores, so it takes whole updates; given the batched updates the link carries, it
    // would be handed this node's batching: that figure is printed too.)
    // n of the room's messages (it holds every round's), as a stock client writes them.
    const stock = stockUpdates(roomB.doc).slice(0, n)
    const yLeveldb = await yLeveldbRate(init.pool, stock, n, window)
    const yLeveldbBatched = await yLeveldbRate(init.pool, roundUpdates, n, window)

    note(
      `rooms durable (msgs/s): peer ${Math.round(peer)}, post ${Math.round(posts)}, ` +
        `raw classic-level ${Math.round(level)} (${fmt(levels.map(Math.round))}), y-leveldb ${Math.round(yLeveldb)} ` +
        `(one update a message; ${Math.round(yLeveldbBatched)} given the link's batched updates)`,
    )
    emit('rooms.durable_msgs_per_s.vs_level', peer, 'msgs/s', level, 0.5, 'higher')
    emit('rooms.durable_msgs_per_s.vs_y_leveldb', peer, 'msgs/s', yLeveldb, 2, 'higher')
    emit('rooms.durable_posts_per_s.vs_level', posts, 'msgs/s', level, 0.5, 'higher')
    emit('rooms.durable_posts_per_s.rooms16', manyRooms, 'msgs/s', level, 0.5, 'higher')
  } finally {
    await a.stop()
    await b.stop()
    await storeA.close()
    await storeB.close()
  }
}
