import { type BackfillPlan, countEntries } from './backfill.ts'
import { encoding, Y } from './lazy-yjs.ts' // issue 15: loaded on first use
import type { LinkError } from './link-manager.ts'
import type { RoomManager } from './room-manager.ts'
import type { ShareBook } from './share.ts'
import { takeMeta } from './update-structs.ts'

/** Progress of one direction of a room's catch-up with one peer. */
export interface TransferProgress {
  /** Entries, bytes and chunks of the latest state-vector diff. */
  entries: number
  bytes: number
  chunks: number
  entriesDone: number
  bytesDone: number
  chunksDone: number
  startedAt: string | null
  doneAt: string | null
}

/** `GET /api/rooms/:id/sync`: where each peer of a shared room stands. */
export interface RoomSyncStatus {
  room: string
  homeMesh: string
  federated: boolean
  /** This replica's Yjs state vector, base64. */
  stateVector: string
  messages: number
  /** Every peer's link is open, its diff received, and it lacks nothing we know of. */
  caughtUp: boolean
  peers: PeerSyncStatus[]
}

export interface PeerSyncStatus {
  peer: string
  name: string | null
  direction: 'out' | 'in'
  link: 'open' | 'closed'
  lastError: { code: string; message: string; at: string } | null
  /** The peer's state vector as last known (its SyncStep1, plus what went both ways since), base64. */
  theirStateVector: string | null
  /** What the peer lacks of this replica, as far as we know. */
  behind: { entries: number; bytes: number } | null
  /** Our catch-up from the peer: its diff for our SyncStep1. */
  incoming: TransferProgress
  /** The peer's catch-up from us: our diff for its SyncStep1. */
  outgoing: TransferProgress
  caughtUp: boolean
}

/** Where one room stands with one peer. */
export interface Progress {
  /** The peer's state vector as far as known; null until its SyncStep1. */
  theirs: Map<number, number> | null
  incoming: TransferProgress
  outgoing: TransferProgress
  /** When the incoming catch-up last moved (asked, announced, a chunk in or applied). */
  incomingActiveAt: number
  /** Chunks of the peer's diff received and not yet applied. */
  applying: number
}

export interface SyncProgressComponents {
  rooms: Pick<RoomManager, 'record' | 'load'>
  shares: Pick<ShareBook, 'peersOf'>
  /** Whether the link with `peer` is open now. */
  linkOpen: (peer: string) => boolean
  lastError: (peer: string) => LinkError | undefined
  /** The peer's name, as its connection knows it. */
  peerName: (peer: string) => string | null
  isFederated: (room: string, homeMesh: string) => boolean
  now: () => number
}

export function emptyTransfer(): TransferProgress {
  return {
    entries: 0,
    bytes: 0,
    chunks: 0,
    entriesDone: 0,
    bytesDone: 0,
    chunksDone: 0,
    startedAt: null,
    doneAt: null,
  }
}

/**
 * The catch-up of each shared room with each peer, both ways, and what the peer
 * holds as far as we know (its SyncStep1, plus what went both ways since): the
 * `GET /api/rooms/:id/sync` view.
 */
export class SyncProgress {
  readonly #c: SyncProgressComponents
  readonly #progress = new Map<string, Map<string, Progress>>()
  /** `<peer> <room>`: the last completed incoming catch-up that moved anything. */
  readonly #lastMoved = new Map<string, TransferProgress>()

  constructor(components: SyncProgressComponents) {
    this.#c = components
  }

  of(peer: string, room: string): Progress {
    let byRoom = this.#progress.get(peer)
    if (byRoom === undefined) {
      byRoom = new Map()
      this.#progress.set(peer, byRoom)
    }
    let p = byRoom.get(room)
    if (p === undefined) {
      p = {
        theirs: null,
        incoming: emptyTransfer(),
        outgoing: emptyTransfer(),
        incomingActiveAt: 0,
        applying: 0,
      }
      byRoom.set(room, p)
    }
    return p
  }

  /** Our SyncStep1 went out: the incoming catch-up starts over. */
  asked(peer: string, room: string): void {
    const p = this.of(peer, room)
    if (p.incoming.chunks > 0 && p.incoming.doneAt !== null)
      this.#lastMoved.set(`${peer} ${room}`, p.incoming)
    p.incoming = { ...emptyTransfer(), startedAt: this.#isoNow() }
    p.incomingActiveAt = this.#c.now()
  }

  /**
   * Whether our catch-up from `peer` is under way: asked, not all of its diff received or
   * applied, and moving within the last `withinMs`. A periodic re-sync then waits: our state
   * vector would not yet show what is on its way (the peer queues every chunk at once, and
   * chunks apply after they arrive), so the peer would send it again.
   */
  catchingUp(peer: string, room: string, withinMs: number): boolean {
    const p = this.#progress.get(peer)?.get(room)
    if (p === undefined || p.incoming.startedAt === null) return false
    if (p.incoming.doneAt !== null && p.applying === 0) return false
    return this.#c.now() - p.incomingActiveAt < withinMs
  }

  /** A chunk of the peer's diff (one `received`) is applied, or refused. */
  applied(peer: string, room: string): void {
    const p = this.of(peer, room)
    p.applying = Math.max(0, p.applying - 1)
    p.incomingActiveAt = this.#c.now()
  }

  /** The peer announced its diff (a `backfill` frame). */
  announced(peer: string, room: string, diff: { entries: number; bytes: number; chunks: number }): void {
    const p = this.of(peer, room)
    p.incomingActiveAt = this.#c.now()
    const last = this.#lastMoved.get(`${peer} ${room}`)
    // A later check that finds nothing to send (a periodic re-sync, a reload) keeps showing
    // the last catch-up that moved something, rather than wiping it with zeros.
    if (diff.chunks === 0 && last !== undefined) {
      p.incoming = last
      return
    }
    this.#lastMoved.delete(`${peer} ${room}`)
    Object.assign(p.incoming, {
      entries: diff.entries,
      bytes: diff.bytes,
      chunks: diff.chunks,
      entriesDone: 0,
      bytesDone: 0,
      chunksDone: 0,
      doneAt: diff.chunks === 0 ? this.#isoNow() : null,
    })
  }

  /** One chunk of the peer's diff arrived. */
  received(peer: string, room: string, chunk: Uint8Array): void {
    const p = this.of(peer, room)
    const incoming = p.incoming
    p.incomingActiveAt = this.#c.now()
    p.applying++
    incoming.chunksDone++
    incoming.bytesDone += chunk.byteLength
    incoming.entriesDone += countEntries(chunk)
    if (incoming.chunksDone >= incoming.chunks && incoming.doneAt === null) incoming.doneAt = this.#isoNow()
  }

  /**
   * We answer the peer's SyncStep1 with `plan`: its state vector is known from now,
   * and the outgoing catch-up starts over. Returns the hook to call as chunk `i` is sent.
   */
  answering(
    peer: string,
    room: string,
    theirs: Map<number, number>,
    plan: BackfillPlan,
  ): (i: number, chunk: Uint8Array) => void {
    const progress = this.of(peer, room)
    progress.theirs = theirs
    const now = this.#isoNow()
    const outgoing = progress.outgoing
    // As on the incoming side: an answer with nothing to send (a periodic re-sync's) keeps
    // showing the last catch-up that moved something.
    if (plan.chunks.length === 0 && outgoing.chunks > 0 && outgoing.doneAt !== null) return () => {}
    Object.assign(outgoing, {
      entries: plan.totalEntries,
      bytes: plan.totalBytes,
      chunks: plan.chunks.length,
      entriesDone: 0,
      bytesDone: 0,
      chunksDone: 0,
      startedAt: now,
      doneAt: plan.chunks.length === 0 ? now : null,
    })
    return (i, chunk) => {
      outgoing.entriesDone += plan.entries[i] ?? 0
      outgoing.bytesDone += chunk.byteLength
      outgoing.chunksDone++
      if (outgoing.chunksDone === outgoing.chunks) outgoing.doneAt = this.#isoNow()
    }
  }

  /** The peer has (or will have) what `update` holds: its known state vector grows. */
  learn(peer: string, room: string, update: Uint8Array): void {
    const known = takeMeta(update) // beta15: read on arrival (seal-preverify.ts), not parsed again
    if (this.of(peer, room).theirs === null) return
    let meta: { from: Map<number, number>; to: Map<number, number> }
    try {
      meta = known ?? Y.parseUpdateMeta(update)
    } catch {
      return // an update that does not parse teaches nothing
    }
    this.learnRange(peer, room, meta.from, meta.to)
  }

  /**
   * `learn` of an update whose clocks are known without parsing it (issue 15, alpha15: a
   * live update's, from its transactions' state vectors): per client, it holds `from` … `to`.
   */
  learnRange(peer: string, room: string, from: Map<number, number>, to: Map<number, number>): void {
    const theirs = this.of(peer, room).theirs
    if (theirs === null) return
    for (const [client, clock] of to) {
      const known = theirs.get(client) ?? 0
      if ((from.get(client) ?? 0) <= known && clock > known) theirs.set(client, clock)
    }
  }

  async status(roomId: string): Promise<RoomSyncStatus> {
    const record = await this.#c.rooms.record(roomId)
    const room = await this.#c.rooms.load(roomId)
    const peers: PeerSyncStatus[] = []
    for (const share of this.#c.shares.peersOf(roomId)) {
      const p = this.of(share.peer, roomId)
      let behind: PeerSyncStatus['behind'] = null
      let theirStateVector: string | null = null
      if (p.theirs !== null) {
        const sv = encodeStateVector(p.theirs)
        theirStateVector = Buffer.from(sv).toString('base64')
        const diff = Y.encodeStateAsUpdate(room.doc, sv)
        behind = { entries: countEntries(diff), bytes: diff.byteLength > 2 ? diff.byteLength : 0 }
      }
      const open = this.#c.linkOpen(share.peer)
      const caughtUp =
        open &&
        p.incoming.doneAt !== null &&
        p.outgoing.doneAt !== null &&
        behind !== null &&
        behind.entries === 0
      peers.push({
        peer: share.peer,
        name: this.#c.peerName(share.peer),
        direction: share.direction,
        link: open ? 'open' : 'closed',
        lastError: this.#c.lastError(share.peer) ?? null,
        theirStateVector,
        behind,
        incoming: { ...p.incoming },
        outgoing: { ...p.outgoing },
        caughtUp,
      })
    }
    return {
      room: roomId,
      homeMesh: record.homeMesh,
      federated: this.#c.isFederated(roomId, record.homeMesh),
      stateVector: Buffer.from(Y.encodeStateVector(room.doc)).toString('base64'),
      messages: room.messageCount,
      caughtUp: peers.every((p) => p.caughtUp),
      peers,
    }
  }

  #isoNow(): string {
    return new Date(this.#c.now()).toISOString()
  }
}

function encodeStateVector(sv: Map<number, number>): Uint8Array {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, sv.size)
  for (const [client, clock] of [...sv].sort((a, b) => b[0] - a[0])) {
    encoding.writeVarUint(e, client)
    encoding.writeVarUint(e, clock)
  }
  return encoding.toUint8Array(e)
}
