import type * as YT from 'yjs'
import type { MeshError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { AwarenessRelay } from './awareness-relay.ts'
import { splitDiff } from './backfill.ts'
import { hiddenHistory } from './history-limit.ts'
import { Y } from './lazy-yjs.ts' // issue 15: loaded on first use
import type { Link, LiveUpdate } from './link.ts'
import type { SyncProgress } from './progress.ts'
import type { Refuse } from './refusals.ts'
import type { Room, RoomOrigin } from './room.ts'
import { ROOM_LIMITS } from './room-entries.ts'
import type { RoomManager } from './room-manager.ts'
import type { ShareBook } from './share.ts'
import type { RoomFrame } from './sync-protocol.ts'

const MAX_INFLIGHT_APPLIES = 256
/**
 * Issue 15 (p99): live updates go out at most once per this many ms (a tick's batch at
 * once when the last went out longer ago): at 1,000 posts a second a frame a post cost
 * alpha a socket write and beta a frame, a transaction and a reader write each.
 */
export const MIN_FLUSH_GAP_MS = 2

/**
 * Live updates as one: their merge, and per client whose clock moved the least `from` and
 * the greatest `to` (what `Y.parseUpdateMeta` of the merge would say).
 */
export function mergeLive(updates: LiveUpdate[]): LiveUpdate {
  const from = new Map<number, number>()
  const to = new Map<number, number>()
  for (const u of updates) {
    for (const [client, clock] of u.to) {
      const start = u.from.get(client) ?? 0
      if (clock <= start) continue
      if (start < (from.get(client) ?? Number.POSITIVE_INFINITY)) from.set(client, start)
      if (clock > (to.get(client) ?? 0)) to.set(client, clock)
    }
  }
  return { update: Y.mergeUpdates(updates.map((u) => u.update)), from, to }
}

/** The frames of a room's content: the sync steps, live updates, the backfill announcement, awareness. */
export type ContentFrame = Extract<
  RoomFrame,
  { type: 'step1' | 'step2' | 'update' | 'backfill' | 'awareness' }
>

export interface ReplicatorComponents {
  rooms: Pick<RoomManager, 'load' | 'join' | 'peek'>
  shares: Pick<ShareBook, 'get' | 'peersOf'>
  /** The open link with a peer, if any. */
  link: (peer: string) => Link | undefined
  /** Every open link (their batches are flushed at the end of the tick). */
  links: () => Iterable<Link>
  progress: SyncProgress
  awareness: Pick<AwarenessRelay, 'watch' | 'receive'>
  refuse: Refuse
  /** Whether `did` names this mesh. */
  isOwn: (did: string) => boolean
  /** `backfillLimit`: messages of history a newly sharing peer gets (null or absent: all). */
  policy: () => Promise<{ maxBackfillEventsPerRequest: number; backfillLimit?: number | null }>
  logger: Logger
  /** Issue 15 (p99): least ms between two flushes of live updates; default MIN_FLUSH_GAP_MS. */
  flushGapMs?: number
}

/**
 * What of a shared room goes to which link: catch-up by state-vector diff in chunks
 * (SyncStep1 → backfill + SyncStep2…), then live updates batched per tick (a flush at most
 * every MIN_FLUSH_GAP_MS), never sent
 * back to the mesh they came from; and what comes in, applied in order.
 */
export class Replicator {
  readonly #c: ReplicatorComponents
  readonly #watched = new WeakSet<Room>()
  readonly #joining = new Set<string>()
  #flushScheduled = false
  #flushedAt = Number.NEGATIVE_INFINITY

  constructor(components: ReplicatorComponents) {
    this.#c = components
  }

  /** Asks the peer for what it has of a shared room (our SyncStep1). */
  async ask(link: Link, roomId: string): Promise<void> {
    const room = await this.#c.rooms.load(roomId)
    this.askLoaded(link, room)
  }

  /** `ask` for a room already loaded (the periodic re-sync: asking is not a use of the room). */
  askLoaded(link: Link, room: Room): void {
    if (link.closed) return
    this.#c.awareness.watch(room)
    this.#c.progress.asked(link.peer, room.id)
    link.send({ room: room.id, type: 'step1', stateVector: Y.encodeStateVector(room.doc) })
  }

  /** Watches a loaded room: its updates go to the peers it is shared with. */
  watch(room: Room): void {
    if (this.#watched.has(room)) return
    this.#watched.add(room)
    room.doc.on('update', (update: Uint8Array, origin: unknown, _doc: unknown, tr: YT.Transaction) => {
      const o = origin as RoomOrigin | null
      if (o?.source === 'store') return
      const shares = this.#c.shares.peersOf(room.id)
      if (shares.length === 0) return
      for (const share of shares) {
        if (o?.source === 'peer' && o.meshDid === share.peer) continue
        const link = this.#c.link(share.peer)
        if (link === undefined || !link.ready.has(room.id)) continue
        let list = link.batch.get(room.id)
        if (list === undefined) {
          list = []
          link.batch.set(room.id, list)
        }
        // issue 15 (alpha15): the clocks come with it, so that the flush need not parse it again
        list.push({ update, from: tr.beforeState, to: tr.afterState })
      }
      this.#scheduleFlush()
    })
    if (this.#c.shares.peersOf(room.id).length > 0) this.#c.awareness.watch(room)
  }

  /** A frame about a room's content from `link`: refused unless the room is shared with its peer. */
  async receive(link: Link, frame: ContentFrame): Promise<void> {
    const peer = link.peer
    if (this.#c.shares.get(frame.room, peer) === undefined) {
      this.#c.refuse(
        peer,
        frame.room,
        'MESH_UPDATE_REJECTED',
        'not-shared',
        'room is not shared with this mesh',
        link,
      )
      return
    }
    let room: Room
    try {
      // A peer's SyncStep1 and our diff's announcement (the periodic re-sync's too) are no
      // use of the room: they do not keep an idle room loaded.
      room =
        (frame.type === 'step1' || frame.type === 'backfill' ? this.#c.rooms.peek(frame.room) : undefined) ??
        (await this.#c.rooms.load(frame.room))
    } catch (err) {
      this.#c.logger.error(
        { event: 'rooms.sync.load_failed', room: frame.room, err },
        'could not load a shared room',
      )
      return
    }
    switch (frame.type) {
      case 'step1':
        await this.#answer(link, room, frame.stateVector)
        return
      case 'step2':
      case 'update':
        await this.#apply(link, room, frame.update, frame.type === 'step2')
        return
      case 'awareness':
        this.#c.awareness.receive(link, room, frame.update)
        return
      case 'backfill':
        this.#c.progress.announced(peer, room.id, frame)
        return
    }
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    const flush = () => {
      this.#flushScheduled = false
      this.#flushedAt = performance.now()
      for (const link of this.#c.links()) this.#flush(link)
    }
    const wait = this.#flushedAt + (this.#c.flushGapMs ?? MIN_FLUSH_GAP_MS) - performance.now()
    if (wait <= 0) setImmediate(flush)
    else setTimeout(flush, wait)
  }

  /** Sends a link's updates of this tick: one frame per room (merged when small enough). */
  #flush(link: Link): void {
    for (const [room, updates] of link.batch) {
      const merged = updates.length === 1 ? (updates[0] as LiveUpdate) : mergeLive(updates)
      const parts = merged.update.byteLength > (ROOM_LIMITS.maxUpdateBytes * 3) / 4 ? updates : [merged]
      for (const { update, from, to } of parts) {
        link.send({ room, type: 'update', update })
        // issue 15 (alpha15): from the transactions' clocks; parsing each update sent for them
        // was ≈ 2 % of alpha's CPU a post
        this.#c.progress.learnRange(link.peer, room, from, to)
      }
    }
    link.batch.clear()
  }

  /** The answer to a SyncStep1: the diff, in chunks of at most maxBackfillEventsPerRequest entries. */
  async #answer(link: Link, room: Room, stateVector: Uint8Array): Promise<void> {
    let theirs: Map<number, number>
    try {
      theirs = Y.decodeStateVector(stateVector)
    } catch {
      this.#c.refuse(link.peer, room.id, 'MESH_BAD_REQUEST', 'malformed', 'malformed state vector', link)
      return
    }
    const { maxBackfillEventsPerRequest, backfillLimit } = await this.#c.policy()
    if (link.closed) return
    // From here to `ready` nothing awaits: every change is either in the diff or sent live.
    const plan = splitDiff(room.doc, stateVector, {
      maxEntries: maxBackfillEventsPerRequest,
      hidden: this.#hidden(link.peer, room, backfillLimit ?? null),
    })
    const sent = this.#c.progress.answering(link.peer, room.id, theirs, plan)
    link.send({
      room: room.id,
      type: 'backfill',
      entries: plan.totalEntries,
      bytes: plan.totalBytes,
      chunks: plan.chunks.length,
    })
    plan.chunks.forEach((chunk, i) => {
      link.send({ room: room.id, type: 'step2', update: chunk, deflate: link.deflate }, () => sent(i, chunk))
      this.#c.progress.learn(link.peer, room.id, chunk)
    })
    link.ready.add(room.id)
    if (plan.chunks.length > 1) {
      this.#c.logger.info(
        {
          event: 'rooms.sync.backfill',
          peer: link.peer,
          room: room.id,
          entries: plan.totalEntries,
          chunks: plan.chunks.length,
        },
        'sending catch-up in chunks',
      )
    }
  }

  /** What of the room's history `peer` is not given (history-limit.ts): only the home mesh hides it. */
  #hidden(peer: string, room: Room, limit: number | null): Set<string> | undefined {
    const share = this.#c.shares.get(room.id, peer)
    if (limit === null || share?.direction !== 'out' || !this.#c.isOwn(room.homeMesh)) return undefined
    return hiddenHistory(room.doc, { decidedAt: share.decidedAt, limit })
  }

  async #apply(link: Link, room: Room, update: Uint8Array, step2: boolean): Promise<void> {
    const peer = link.peer
    if (step2) this.#c.progress.received(peer, room.id, update)
    let applying: Promise<{ error?: MeshError }>
    try {
      // Frames apply in order, each validated synchronously with its apply; their seals are
      // shared with a verifying thread meanwhile (issue 15, verify15: Room.applyPeerUpdate).
      applying = room.applyPeerUpdate(update, peer)
    } catch (err) {
      if (step2) this.#c.progress.applied(peer, room.id)
      this.#c.logger.error(
        { event: 'rooms.sync.apply_failed', peer, room: room.id, err },
        'applying an update failed',
      )
      return
    }
    link.inflight++
    const done = applying.then(
      (result) => {
        link.inflight--
        if (step2) this.#c.progress.applied(peer, room.id)
        if (result.error === undefined) {
          this.#c.progress.learn(peer, room.id, update)
          this.#maybeJoin(room)
        }
      },
      (err: unknown) => {
        link.inflight--
        if (step2) this.#c.progress.applied(peer, room.id)
        this.#c.logger.error(
          { event: 'rooms.sync.apply_failed', peer, room: room.id, err },
          'applying an update failed',
        )
      },
    )
    // Bounded work in flight: a flood waits for the store.
    if (link.inflight > MAX_INFLIGHT_APPLIES) await done
  }

  /** Joins the local principal an incoming share names, once the room's meta has arrived. */
  #maybeJoin(room: Room): void {
    if (room.meta() === undefined) return
    for (const share of this.#c.shares.peersOf(room.id)) {
      const did = share.join
      if (share.direction !== 'in' || did === undefined) continue
      const member = room.member(did)
      if (member !== undefined && this.#c.isOwn(member.mesh)) continue
      const key = `${room.id}/${did}`
      if (this.#joining.has(key)) continue
      this.#joining.add(key)
      this.#c.rooms
        .join(room.id, did)
        .then(
          () =>
            this.#c.logger.info({ event: 'rooms.sync.joined', room: room.id, did }, 'joined a shared room'),
          (err: unknown) =>
            this.#c.logger.warn(
              { event: 'rooms.sync.join_failed', room: room.id, did, err },
              'could not join a shared room',
            ),
        )
        .finally(() => this.#joining.delete(key))
    }
  }
}
