// phase-1 HTTP federation (SPEC §12)
import type { Stream } from '@libp2p/interface'
import { type AuditLog, RefusalThrottle } from '../audit/index.ts'
import type { Ed25519KeyPair } from '../identity/index.ts'
import { type Logger, silentLogger } from '../log.ts'
import type { MeshLibp2p } from '../p2p/index.ts'
import type { MeshStore } from '../store/index.ts'
import { type AcceptedPeer, AcceptedPeers } from './accepted-peers.ts'
import { AwarenessRelay } from './awareness-relay.ts'
import type { Link } from './link.ts'
import { INBOUND_DEFAULTS, type InboundLimits, LinkManager } from './link-manager.ts'
import { type RoomSyncStatus, SyncProgress } from './progress.ts'
import { type Refuse, refusals } from './refusals.ts'
import { Replicator } from './replicator.ts'
import type { RoomManager } from './room-manager.ts'
import { isLive, isOpen, ShareBook, type ShareRecord } from './share.ts'
import { type ShareActGate, ShareActs, type ShareView } from './share-acts.ts'
import { type InvitationView, ShareLifecycle } from './share-lifecycle.ts'
import { decodeFrame, MalformedFrameError, ROOM_SYNC_PROTOCOLS, type RoomFrame } from './sync-protocol.ts'

/**
 * A catch-up from a peer that has moved (asked, announced, a chunk in or applied) within this
 * long, or within the re-sync interval if longer, is under way: the periodic re-sync leaves it
 * be. One that has not is taken as stalled and asked for again.
 */
const CATCH_UP_STALLED_MS = 30_000

export type { AcceptedPeer } from './accepted-peers.ts'
export type { InboundLimits } from './link-manager.ts'
export type { PeerSyncStatus, RoomSyncStatus, TransferProgress } from './progress.ts'
export type { ShareView } from './share-acts.ts'
export type { InvitationView } from './share-lifecycle.ts'

export interface RoomSyncComponents {
  /** The host (a getter in the node: a key rotation replaces it, and restarts this service). */
  libp2p: MeshLibp2p
  /** The mesh key: it signs shares (a function: key rotation changes it). */
  key: () => Ed25519KeyPair
  store: MeshStore
  rooms: RoomManager
  /** The gate of human-signed UCAN chains (local and forwarded; it remembers spent invocations). */
  acts: ShareActGate
  audit?: AuditLog
  logger?: Logger
  /** Peers with an accepted connection now, by did (the room sync maps them to identities). */
  acceptedPeers: () => Promise<Map<string, AcceptedPeer>>
  /** Live policy values. */
  policy: () => Promise<{
    maxBackfillEventsPerRequest: number
    maxForeignParticipantsPerRoom: number
    /** Messages of history a newly sharing peer gets; null or absent: all (history-limit.ts). */
    backfillLimit?: number | null
    // room lifecycle (SPEC §9): accept every share at once (default false)
    autoAcceptRooms?: boolean
  }>
}

export interface RoomSyncInit {
  /** This mesh's architect: a local principal joins a room shared with this mesh (unless a DM names another). */
  architectDid: string
  /** How often links to peers are checked (opened, closed); default 2 000 ms. */
  checkIntervalMs?: number
  /** One dial of a link at most this long; default 10 000 ms. */
  dialTimeoutMs?: number
  /** Protocol ids spoken (tests use others); default ROOM_SYNC_PROTOCOLS. */
  protocols?: readonly string[]
  /** At most one refusal per peer and reason is recorded per this many ms (the rest are counted); default 1 000. */
  refusalLogIntervalMs?: number
  /** Limits on inbound `/mesh/rooms` streams, checked before any work is done for one. */
  inbound?: InboundLimits
  now?: () => number
  /**
   * How often every loaded shared room is checked again with each open link (a SyncStep1:
   * what a live update lost on the way would otherwise wait for the next link to bring);
   * default 30 000 ms, 0 = never.
   */
  resyncIntervalMs?: number
}

/**
 * Shared rooms between meshes, composed of: the share decisions (share-acts.ts), the
 * links to each peer mesh (`/mesh/rooms/1.0.0`, see sync-protocol.ts; link-manager.ts,
 * link.ts), catch-up by state-vector diff in chunks and live updates batched per tick
 * (replicator.ts), awareness (awareness-relay.ts), and the progress views (progress.ts).
 */
export class RoomSync {
  readonly #c: RoomSyncComponents
  readonly #init: RoomSyncInit
  readonly #shares: ShareBook
  readonly #log: Logger
  readonly #peers: AcceptedPeers
  readonly #links: LinkManager
  readonly #acts: ShareActs
  readonly #lifecycle: ShareLifecycle
  readonly #replicator: Replicator
  readonly #progress: SyncProgress
  readonly #refuse: Refuse
  #timer: ReturnType<typeof setInterval> | undefined
  #resyncTimer: ReturnType<typeof setInterval> | undefined
  #started = false
  #offLoad: (() => void) | undefined
  /** Counters for tests and metrics. */
  readonly stats = {
    framesIn: 0,
    framesOut: 0,
    malformed: 0,
    refused: 0,
    linksOpened: 0,
    /** Reloads of key histories and accepted peers (the periodic check's and on demand). */
    peerReloads: 0,
    /** Inbound streams reset before any work: over a limit, or from no accepted peer. */
    streamsRefused: 0,
    /** SyncStep1s sent by the periodic re-sync. */
    resyncs: 0,
    /** Re-syncs left for the next check because that room's catch-up from the peer was under way. */
    resyncsDeferred: 0,
  }

  constructor(components: RoomSyncComponents, init: RoomSyncInit) {
    const c = components
    this.#c = c
    this.#init = init
    const shares = new ShareBook(c.store)
    this.#shares = shares
    const logger = (c.logger ?? silentLogger()).child({ area: 'rooms.sync' })
    this.#log = logger
    const now = init.now ?? Date.now
    const limits = { ...INBOUND_DEFAULTS, ...definedOnly(init.inbound ?? {}) }
    const identity = () => c.rooms.ownMesh
    const keys = () => c.rooms.meshKeys
    const stats = this.stats
    const peers = new AcceptedPeers({
      identity,
      keys,
      acceptedPeers: c.acceptedPeers,
      stats,
      now,
      refreshIntervalMs: limits.refreshIntervalMs,
    })
    this.#peers = peers
    const refuse = refusals({
      rooms: c.rooms,
      stats,
      throttle: new RefusalThrottle({ intervalMs: init.refusalLogIntervalMs ?? 1000, now }),
    })
    this.#refuse = refuse
    const links = new LinkManager(
      {
        get libp2p() {
          return c.libp2p
        },
        self: () => c.key().did,
        keys,
        peers,
        shares,
        refuse,
        stats,
        logger,
        now,
        opened: (link) => this.#greet(link),
        frame: (link, bytes) => this.#onFrame(link, bytes),
      },
      {
        protocols: this.protocols,
        limits,
        ...(init.dialTimeoutMs !== undefined ? { dialTimeoutMs: init.dialTimeoutMs } : {}),
      },
    )
    this.#links = links
    this.#acts = new ShareActs({
      key: c.key,
      identity,
      keys,
      store: c.store,
      rooms: c.rooms,
      acts: c.acts,
      ...(c.audit !== undefined ? { audit: c.audit } : {}),
      shares,
      peers,
      policy: c.policy,
      refuse,
      rekey: (link, to) => links.rekey(link, to),
      announce: (share) => this.#announce(share),
      logger,
      now,
      architectDid: init.architectDid,
    })
    this.#lifecycle = new ShareLifecycle({
      key: c.key,
      identity,
      keys,
      store: c.store,
      rooms: c.rooms,
      acts: c.acts,
      ...(c.audit !== undefined ? { audit: c.audit } : {}),
      shares,
      peers,
      refuse,
      logger,
      now,
      architectDid: init.architectDid,
      link: (peer) => links.get(peer),
      started: (share) => {
        const link = links.get(share.peer)
        if (link === undefined) void links.dial(share.peer)
        else void this.#replicator.ask(link, share.room).catch((err: unknown) => link.fail(err))
      },
    })
    this.#progress = new SyncProgress({
      rooms: c.rooms,
      shares,
      linkOpen: (peer) => links.get(peer)?.closed === false,
      lastError: (peer) => links.lastError(peer),
      peerName: (peer) => peers.get(peer)?.name ?? null,
      isFederated: (room, homeMesh) => this.isFederated(room, homeMesh),
      now,
    })
    const link = (peer: string) => links.get(peer)
    this.#replicator = new Replicator({
      rooms: c.rooms,
      shares,
      link,
      links: () => links.values(),
      progress: this.#progress,
      awareness: new AwarenessRelay({ identity, shares, link, refuse }),
      refuse,
      isOwn: (did) => peers.isOwn(did),
      policy: c.policy,
      logger,
    })
  }

  get protocols(): readonly string[] {
    return this.#init.protocols ?? ROOM_SYNC_PROTOCOLS
  }

  async start(): Promise<void> {
    if (this.#started) return
    await this.#shares.load()
    // DMs stored before rooms had visibility: closed to every other local principal.
    for (const peer of this.#shares.peers())
      for (const share of this.#shares.roomsWith(peer))
        if (share.dm !== undefined) await this.#c.rooms.markDm(share.room)
    await this.#links.start()
    this.#offLoad = this.#c.rooms.onLoad((room) => this.#replicator.watch(room))
    this.#started = true
    this.#timer = setInterval(() => this.#tick(), this.#init.checkIntervalMs ?? 2000)
    this.#timer.unref()
    this.#tick()
    const resyncMs = this.#resyncMs
    if (resyncMs > 0) {
      this.#resyncTimer = setInterval(() => this.#resync(), resyncMs)
      this.#resyncTimer.unref()
    }
  }

  async stop(): Promise<void> {
    if (!this.#started) return
    this.#started = false
    clearInterval(this.#timer)
    clearInterval(this.#resyncTimer)
    this.#offLoad?.()
    await this.#links.stop()
  }

  /** Whether a room travels to any peer mesh (or came from one). */
  isFederated(room: string, homeMesh?: string): boolean {
    return this.#acts.isFederated(room, homeMesh)
  }

  shares(room: string): ShareView[] {
    return this.#acts.views(room)
  }

  /** See ShareActs.share. */
  share(input: { room: string; peer: string; ucan: string; actor: string }): Promise<ShareView> {
    return this.#acts.share(input)
  }

  /** See ShareActs.openDm. */
  openDm(input: {
    actor: string
    with: string
    mesh?: string
    ucan: string
  }): Promise<ShareView & { name: string }> {
    return this.#acts.openDm(input)
  }

  // room lifecycle (SPEC §9)
  /** See ShareLifecycle.invitations. */
  invitations(): InvitationView[] {
    return this.#lifecycle.invitations()
  }

  /** See ShareLifecycle.answer. */
  answer(input: {
    id: string
    answer: 'accept' | 'decline'
    ucan: string
    actor: string
  }): Promise<InvitationView> {
    return this.#lifecycle.answer(input)
  }

  /** See ShareLifecycle.unshare. */
  async unshare(input: { room: string; peer: string; ucan: string; actor: string }): Promise<ShareView> {
    return this.#acts.view(await this.#lifecycle.unshare(input))
  }

  /** See ShareLifecycle.removeMember. */
  removeMember(input: { room: string; did: string; ucan: string; actor: string }): Promise<void> {
    return this.#lifecycle.removeMember(input)
  }

  /** See ShareLifecycle.setRole. */
  setRole(input: Parameters<ShareLifecycle['setRole']>[0]): ReturnType<ShareLifecycle['setRole']> {
    return this.#lifecycle.setRole(input)
  }

  /** See ShareLifecycle.leave. */
  async leave(input: { room: string; ucan: string; actor: string }): Promise<ShareView[]> {
    return (await this.#lifecycle.leave(input)).map((s) => this.#acts.view(s))
  }

  status(roomId: string): Promise<RoomSyncStatus> {
    return this.#progress.status(roomId)
  }

  // paused links (issue 13)
  /**
   * Re-checks the accepted peers now (a connection was paused or resumed): links to
   * peers no longer accepted close before this resolves, links to peers accepted again
   * are dialled.
   */
  async recheckPeers(): Promise<void> {
    if (this.#started) await this.#links.check()
  }

  /** Open links, by peer did (for tests and views). */
  links(): string[] {
    return this.#links.peers()
  }

  // phase-1 HTTP federation (SPEC §12): room links over an HTTP tunnel
  /** A link on a stream that did not come through libp2p (see LinkManager.attach). */
  attachLink(key: string, stream: Stream, initiator: string): Promise<boolean> {
    return this.#links.attach(key, stream, initiator)
  }

  /** Accepted peers sharing rooms with this mesh that have no open link. */
  unlinkedPeers(): Array<{ peer: string; key: string }> {
    return this.#started ? this.#links.unlinked() : []
  }

  /** The open link's stream with `peer` (to tell which transport it runs on). */
  linkStream(peer: string): Stream | undefined {
    return this.#links.get(peer)?.stream
  }

  #tick(): void {
    if (!this.#started) return
    void this.#links.check().catch((err: unknown) => {
      this.#log.error({ event: 'rooms.sync.check_failed', err }, 'checking links failed')
    })
  }

  get #resyncMs(): number {
    return this.#init.resyncIntervalMs ?? 30_000
  }

  /**
   * Asks each open link again for every live shared room loaded here. Live updates go once,
   * batched per tick; one that did not take at the peer (its store failed while applying it
   * and the room was loaded again) would otherwise wait for the next link. The answer to an
   * in-sync room is an empty diff. A room still catching up from that peer waits (progress.ts
   * `catchingUp`).
   */
  #resync(): void {
    if (!this.#started) return
    const stalledMs = Math.max(this.#resyncMs, CATCH_UP_STALLED_MS)
    for (const link of [...this.#links.values()]) {
      for (const share of this.#shares.recordsWith(link.peer)) {
        if (link.closed) break
        const room = isLive(share) ? this.#c.rooms.peek(share.room) : undefined
        if (room === undefined) continue
        // A catch-up still arriving is not asked for again: the peer would send its rest twice.
        if (this.#progress.catchingUp(link.peer, room.id, stalledMs)) {
          this.stats.resyncsDeferred++
          continue
        }
        this.stats.resyncs++
        this.#replicator.askLoaded(link, room)
      }
    }
  }

  /** Tells the peer of a new share now if the link is open, else opens it. */
  #announce(share: ShareRecord): void {
    const link = this.#links.get(share.peer)
    if (link === undefined) {
      if (this.#peers.has(share.peer)) void this.#links.dial(share.peer)
      return
    }
    void this.#greetRoom(link, share).catch((err: unknown) => link.fail(err))
  }

  /**
   * Both sides, when the link opens: our shares that stand (pending or accepted), what
   * we decided about the peer's (answers, ends), then SyncStep1 for every live one.
   */
  async #greet(link: Link): Promise<void> {
    for (const share of this.#shares.recordsWith(link.peer)) {
      if (link.closed) return
      const notice = this.#lifecycle.noticeOf(share)
      if (notice !== undefined) link.send(this.#lifecycle.frame(share, notice))
      if (share.direction === 'out' && isOpen(share)) link.send(this.#acts.frame(share))
      if (isLive(share)) await this.#replicator.ask(link, share.room)
    }
  }

  async #greetRoom(link: Link, share: ShareRecord): Promise<void> {
    if (share.direction === 'out' && isOpen(share)) link.send(this.#acts.frame(share))
    if (isLive(share)) await this.#replicator.ask(link, share.room)
  }

  async #onFrame(link: Link, bytes: Uint8Array): Promise<void> {
    let frame: RoomFrame
    try {
      frame = decodeFrame(bytes)
    } catch (err) {
      this.stats.malformed++
      const reason = err instanceof MalformedFrameError ? err.message : 'malformed frame'
      this.#refuse(
        link.peer,
        null,
        'MESH_BAD_REQUEST',
        'malformed',
        `malformed frame dropped: ${reason}`,
        link,
      )
      return
    }
    switch (frame.type) {
      case 'share': {
        const got = await this.#acts.receive(link, frame.room, frame.json)
        if (got === undefined) return
        // room lifecycle (SPEC §9): an invitation is answered (again, when known) before it syncs
        const notice = this.#lifecycle.noticeOf(got.record)
        if (notice !== undefined) link.send(this.#lifecycle.frame(got.record, notice))
        if (got.fresh) await this.#greetRoom(link, got.record)
        return
      }
      case 'notice':
        await this.#lifecycle.receive(link, frame.room, frame.json)
        return
      case 'refused':
        this.#log.info(
          {
            event: 'rooms.sync.refused_by_peer',
            peer: link.peer,
            room: frame.room,
            code: frame.code.slice(0, 64),
          },
          frame.reason.slice(0, 256),
        )
        return
      default:
        await this.#replicator.receive(link, frame)
    }
  }
}

/** The fields of `o` that are set (an `undefined` must not replace a default). */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}
