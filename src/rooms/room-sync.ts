import type { Connection, Stream } from '@libp2p/interface'
import { type LengthPrefixedStream, lpStream } from '@libp2p/utils'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as Y from 'yjs'
import type { AuditLog } from '../audit/index.ts'
import type { ActGate, GateAct } from '../connections/act-gate.ts'
import {
  BadRequestError,
  ConflictError,
  ForbiddenError,
  MeshError,
  type MeshErrorCode,
  NotConnectedError,
  NotFoundError,
  PolicyRejectedError,
} from '../errors.ts'
import { didFromPeerId, type Ed25519KeyPair, isDidKey, peerIdFromDid } from '../identity/index.ts'
import { type Logger, silentLogger } from '../log.ts'
import type { MeshLibp2p } from '../p2p/index.ts'
import type { MeshStore } from '../store/index.ts'
import { countEntries, splitDiff } from './backfill.ts'
import type { MeshKeys } from './mesh-keys.ts'
import type { Room, RoomOrigin } from './room.ts'
import { type ClientBinding, ROOM_LIMITS } from './room-entries.ts'
import type { RoomManager } from './room-manager.ts'
import { ShareBook, type ShareRecord, shareResource, signShare, verifyShare } from './share.ts'
import {
  decodeFrame,
  encodeFrame,
  MalformedFrameError,
  ROOM_SYNC_LIMITS,
  ROOM_SYNC_PROTOCOLS,
  type RoomFrame,
} from './sync-protocol.ts'

/** A peer mesh with an accepted connection, as the sync layer needs to know it. */
export interface AcceptedPeer {
  /** The peer as the connection layer files it (its identity, or the key it was first met with). */
  did: string
  /** Its keys, oldest first (the last is current); default `[did]`. */
  keys?: string[]
  name: string | null
  architectDid: string | null
  multiaddrs: string[]
}

export interface RoomSyncComponents {
  /** The host (a getter in the node: a key rotation replaces it, and restarts this service). */
  libp2p: MeshLibp2p
  /** The mesh key: it signs shares (a function: key rotation changes it). */
  key: () => Ed25519KeyPair
  store: MeshStore
  rooms: RoomManager
  /** The gate of human-signed UCAN chains (local and forwarded; it remembers spent invocations). */
  acts: Pick<ActGate, 'local' | 'peer' | 'peek' | 'release'>
  audit?: AuditLog
  logger?: Logger
  /** Peers with an accepted connection now, by did (the room sync maps them to identities). */
  acceptedPeers: () => Promise<Map<string, AcceptedPeer>>
  /** Live policy values. */
  policy: () => Promise<{ maxBackfillEventsPerRequest: number; maxForeignParticipantsPerRoom: number }>
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
}

/**
 * Inbound streams cost a key lookup, a link and a greeting each, so they are metered
 * per peer key (a libp2p PeerId, whatever identity it maps to) before anything else.
 */
export interface InboundLimits {
  /**
   * Inbound streams open at once per peer key, over all its connections (also libp2p's
   * per-connection `maxInboundStreams`); a live link needs one. Default 4.
   */
  maxStreamsPerPeer?: number
  /** New inbound streams per peer key per `windowMs`; the rest are reset at once. Default 16. */
  maxNewStreamsPerPeer?: number
  /** default 60 000 ms */
  windowMs?: number
  /**
   * A key a reload of the key histories and accepted peers found not accepted is
   * refused without another reload for this long (streams and connections alike; the
   * periodic check reloads anyway); default 2 000 ms.
   */
  refreshIntervalMs?: number
}

const INBOUND_DEFAULTS = {
  maxStreamsPerPeer: 4,
  maxNewStreamsPerPeer: 16,
  windowMs: 60_000,
  refreshIntervalMs: 2_000,
} as const

/** Per-key counters of inbound streams, kept for at most MAX_INBOUND_KEYS keys. */
interface InboundCount {
  open: number
  windowStart: number
  opened: number
}

const MAX_INBOUND_KEYS = 10_000

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

export interface ShareView {
  room: string
  peer: string
  direction: 'out' | 'in'
  createdAt: string
  dm?: string
}

interface Progress {
  theirs: Map<number, number> | null
  incoming: TransferProgress
  outgoing: TransferProgress
}

interface Queued {
  bytes: Uint8Array
  onSent?: () => void
}

class Link {
  /** The peer mesh's identity (re-keyed when its history is learned later). */
  peer: string
  /** The key the peer authenticated the stream with. */
  readonly key: string
  /** The key of the side that opened the stream. */
  readonly initiator: string
  readonly stream: Stream
  readonly lp: LengthPrefixedStream<Stream>
  closed = false
  queue: Queued[] = []
  queuedBytes = 0
  writing = false
  inflight = 0
  /** Live updates per room, sent at the end of the tick. */
  readonly batch = new Map<string, Uint8Array[]>()
  /** Rooms whose SyncStep1 from the peer was answered: live updates flow from then on. */
  readonly ready = new Set<string>()

  constructor(peer: string, key: string, initiator: string, stream: Stream) {
    this.peer = peer
    this.key = key
    this.initiator = initiator
    this.stream = stream
    this.lp = lpStream(stream, {
      maxDataLength: ROOM_SYNC_LIMITS.maxFrameBytes,
      maxBufferSize: 32 * 1024 * 1024,
    })
  }
}

const MAX_INFLIGHT_APPLIES = 256
const MAX_CLAIMS_PER_ROOM = 10_000

function emptyTransfer(): TransferProgress {
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
 * Shared rooms between meshes: the share decision (a human act), the link to each
 * peer mesh (`/mesh/rooms/1.0.0`, see sync-protocol.ts), catch-up by state-vector
 * diff in chunks, live updates batched per tick, awareness, and the progress views.
 */
export class RoomSync {
  readonly #c: RoomSyncComponents
  readonly #init: RoomSyncInit
  readonly #shares: ShareBook
  readonly #log: Logger
  readonly #now: () => number
  readonly #links = new Map<string, Link>()
  readonly #dialing = new Set<string>()
  readonly #progress = new Map<string, Map<string, Progress>>()
  readonly #errors = new Map<string, { code: string; message: string; at: string }>()
  readonly #watched = new WeakSet<Room>()
  readonly #watchedAwareness = new WeakSet<Room>()
  readonly #claims = new Map<string, Map<number, string>>()
  readonly #joining = new Set<string>()
  readonly #refusalLog = new Map<string, { at: number; suppressed: number }>()
  #accepted = new Map<string, AcceptedPeer>()
  readonly #inbound = new Map<string, InboundCount>()
  readonly #limits: Required<InboundLimits>
  #refreshing: Promise<void> | undefined
  /** Keys a reload found not accepted, until when they are refused without another. */
  readonly #strangers = new Map<string, number>()
  /** Reloads of the accepted peers started and applied: an older one never overwrites a newer. */
  #acceptedStarted = 0
  #acceptedApplied = 0
  #timer: ReturnType<typeof setInterval> | undefined
  #flushScheduled = false
  #started = false
  #shutdown = new AbortController()
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
  }

  constructor(components: RoomSyncComponents, init: RoomSyncInit) {
    this.#c = components
    this.#init = init
    this.#shares = new ShareBook(components.store)
    this.#log = (components.logger ?? silentLogger()).child({ area: 'rooms.sync' })
    this.#now = init.now ?? Date.now
    this.#limits = { ...INBOUND_DEFAULTS, ...definedOnly(init.inbound ?? {}) }
  }

  /** This mesh's current key: acts are addressed to it; links are ordered by it. */
  get #self(): string {
    return this.#c.key().did
  }

  /** This mesh's identity: how rooms and peers name it. */
  get #identity(): string {
    return this.#c.rooms.ownMesh
  }

  get #keys(): MeshKeys {
    return this.#c.rooms.meshKeys
  }

  #isOwn(did: string): boolean {
    return did === this.#identity || this.#keys.ownDids().includes(did)
  }

  /** The key a peer mesh holds now, as far as known. */
  #currentKey(identity: string): string {
    const known = this.#keys.keysOf(identity)?.map((k) => k.did) ?? []
    const accepted = this.#accepted.get(identity)?.keys ?? []
    return (accepted.length > known.length ? accepted : known).at(-1) ?? identity
  }

  /** Every did known for a peer mesh: its identity and keys. */
  #didsOf(identity: string): string[] {
    const keys = this.#keys.keysOf(identity)?.map((k) => k.did) ?? []
    return [...new Set([identity, ...keys, ...(this.#accepted.get(identity)?.keys ?? [])])]
  }

  /** Accepted peers by identity (a peer's rotated keys and a learned chain map to it). */
  async #loadAccepted(): Promise<Map<string, AcceptedPeer>> {
    const started = ++this.#acceptedStarted
    const out = new Map<string, AcceptedPeer>()
    for (const p of (await this.#c.acceptedPeers()).values()) {
      const identity = this.#keys.identityOf(p.did)
      out.set(identity, { ...p, did: identity, keys: p.keys ?? [p.did] })
    }
    // Reloads overlap (the periodic check, streams, connects): the latest started wins.
    if (started > this.#acceptedApplied) {
      this.#acceptedApplied = started
      this.#accepted = out
    }
    return out
  }

  get protocols(): readonly string[] {
    return this.#init.protocols ?? ROOM_SYNC_PROTOCOLS
  }

  async start(): Promise<void> {
    if (this.#started) return
    this.#shutdown = new AbortController()
    await this.#shares.load()
    // DMs stored before rooms had visibility: closed to every other local principal.
    for (const peer of this.#shares.peers())
      for (const share of this.#shares.roomsWith(peer))
        if (share.dm !== undefined) await this.#c.rooms.markDm(share.room)
    await this.#c.libp2p.handle(
      [...this.protocols],
      (stream: Stream, connection: Connection) => this.#onStream(stream, connection),
      { maxInboundStreams: this.#limits.maxStreamsPerPeer, maxOutboundStreams: 8 },
    )
    this.#c.libp2p.addEventListener('peer:connect', this.#onPeerConnect)
    this.#offLoad = this.#c.rooms.onLoad((room) => this.#watch(room))
    this.#started = true
    this.#timer = setInterval(() => this.#tick(), this.#init.checkIntervalMs ?? 2000)
    this.#timer.unref()
    this.#tick()
  }

  async stop(): Promise<void> {
    if (!this.#started) return
    this.#started = false
    clearInterval(this.#timer)
    this.#shutdown.abort(new Error('room sync stopped'))
    this.#c.libp2p.removeEventListener('peer:connect', this.#onPeerConnect)
    this.#offLoad?.()
    for (const link of [...this.#links.values()]) this.#close(link, 'stopping')
    await this.#c.libp2p.unhandle([...this.protocols]).catch(() => {})
  }

  // ------------------------------------------------------------------ sharing

  /** Whether a room travels to any peer mesh (or came from one). */
  isFederated(room: string, homeMesh?: string): boolean {
    return (homeMesh !== undefined && !this.#isOwn(homeMesh)) || this.#shares.peersOf(room).length > 0
  }

  shares(room: string): ShareView[] {
    return this.#shares.peersOf(room).map(view)
  }

  /**
   * A human shares a room this mesh holds with a peer mesh (`POST
   * /api/rooms/:id/share`): `ucan` is a human-signed chain invoking `room/share` on
   * `<this mesh's key>/rooms/<room>` with `nb.peer` = the peer as named, rooted in
   * this mesh's root delegation (the Authority checks tiers and the human in the
   * chain); an accepted connection with the peer (MESH_NOT_CONNECTED otherwise), and
   * room for one more foreign participant (MESH_POLICY_REJECTED). The chain's spend is
   * written with the share. Idempotent.
   */
  async share(input: { room: string; peer: string; ucan: string; actor: string }): Promise<ShareView> {
    const record = await this.#c.rooms.record(input.room)
    if (!isDidKey(input.peer)) throw new BadRequestError('mesh must be a did:key', { mesh: input.peer })
    if (this.#isOwn(input.peer)) throw new BadRequestError('a room is not shared with its own mesh')
    // The act names the peer as the architect knew it; the share is filed under its identity.
    const peer = this.#keys.identityOf(input.peer)
    const existing = this.#shares.get(input.room, peer)
    if (existing !== undefined) return view(existing)
    await this.#requireAccepted(peer)
    const act = await this.#c.acts.local(input.ucan, {
      audience: this.#self,
      act: 'room/share',
      subject: input.peer,
      resource: shareResource(this.#self, input.room),
    })
    try {
      const room = await this.#c.rooms.load(input.room)
      await this.#checkForeignRoom(room)
      const meta = room.meta()
      const share: ShareRecord = {
        room: input.room,
        peer,
        ...(peer !== input.peer ? { to: input.peer } : {}),
        direction: 'out',
        homeMesh: record.homeMesh,
        name: meta?.name ?? record.name,
        topic: meta?.topic ?? record.topic,
        act: input.ucan,
        ...credentialsOf(act),
        by: act.issuer,
        decidedAt: this.#now(),
        createdAt: new Date(this.#now()).toISOString(),
      }
      await this.#persist(share, 'rooms.shared', act.issuer, act.operations)
      this.#announce(share)
      return view(share)
    } catch (err) {
      await this.#c.acts.release(act)
      throw err
    }
  }

  /**
   * A federated DM (`POST /api/me/federated-dms`): a room owned by `actor` with one
   * foreign participant, `with`, at `mesh` (found among the members of shared rooms
   * when not given). `ucan` is `actor`'s chain invoking `room/share` on this mesh's
   * key with `nb.peer` = `with` (MESH_FORBIDDEN when another principal invoked it). On
   * the other mesh, `with` joins the room (tier 4) when it arrives.
   */
  async openDm(input: {
    actor: string
    with: string
    mesh?: string
    ucan: string
  }): Promise<ShareView & { name: string }> {
    if (!isDidKey(input.with)) throw new BadRequestError('with must be a did:key')
    const named = input.mesh ?? this.#meshOf(input.with)
    if (named === undefined)
      throw new BadRequestError('the principal’s mesh is not known here; pass mesh', { with: input.with })
    if (this.#isOwn(named)) throw new BadRequestError('a federated DM is with a principal of another mesh')
    const mesh = this.#keys.identityOf(named)
    await this.#requireAccepted(mesh)
    const act = await this.#c.acts.local(input.ucan, {
      audience: this.#self,
      act: 'room/share',
      subject: input.with,
      resource: shareResource(this.#self, '', input.with),
    })
    try {
      if (act.issuer !== input.actor)
        throw new ForbiddenError('a federated DM is opened by its owner’s own chain', {
          issuer: act.issuer,
          actor: input.actor,
        })
      const peerName = this.#accepted.get(mesh)?.name ?? mesh.slice(-8)
      const name = `dm ${input.with.slice(-8)}@${peerName}`.slice(0, ROOM_LIMITS.maxNameLength)
      const record = await this.#c.rooms.create({
        name,
        topic: 'direct message',
        creator: input.actor,
        dm: true,
      })
      const share: ShareRecord = {
        room: record.id,
        peer: mesh,
        direction: 'out',
        homeMesh: this.#identity,
        name,
        topic: record.topic,
        act: input.ucan,
        ...credentialsOf(act),
        by: act.issuer,
        decidedAt: this.#now(),
        dm: input.with,
        createdAt: new Date(this.#now()).toISOString(),
      }
      await this.#persist(share, 'rooms.dm.opened', act.issuer, act.operations)
      this.#announce(share)
      return { ...view(share), name }
    } catch (err) {
      await this.#c.acts.release(act)
      throw err
    }
  }

  async #requireAccepted(peer: string): Promise<AcceptedPeer> {
    const accepted = (await this.#loadAccepted()).get(peer)
    if (accepted === undefined)
      throw new NotConnectedError('there is no accepted connection with that mesh', { mesh: peer })
    return accepted
  }

  /** MESH_POLICY_REJECTED when one more foreign participant would exceed the policy. */
  async #checkForeignRoom(room: Room): Promise<void> {
    const { maxForeignParticipantsPerRoom: max } = await this.#c.policy()
    let foreign = 0
    for (const m of room.members().values()) if (m.mesh !== room.homeMesh) foreign++
    if (foreign + 1 > max) {
      throw new PolicyRejectedError('the room has its maximum of foreign participants', {
        reason: 'foreign-limit',
        max,
        foreign,
      })
    }
  }

  #meshOf(did: string): string | undefined {
    for (const room of this.#c.rooms.loaded()) {
      const m = room.member(did)
      if (m !== undefined && !this.#isOwn(m.mesh)) return m.mesh
    }
    return undefined
  }

  async #persist(
    share: ShareRecord,
    action: string,
    actor: string,
    extra: GateAct['operations'],
    human?: string,
  ) {
    const ops = [this.#shares.putOperation(share), ...extra]
    const entry = {
      action,
      actor,
      subject: share.room,
      details: {
        peer: share.peer,
        direction: share.direction,
        ...(share.dm ? { dm: share.dm } : {}),
        ...(human !== undefined ? { human } : {}),
      },
    }
    if (this.#c.audit !== undefined) await this.#c.audit.append(entry, { with: ops })
    else await this.#c.store.batch(ops)
    this.#shares.commit(share)
    this.#log.info({ event: action, room: share.room, peer: share.peer }, 'room shared')
  }

  /** Tells the peer of a new share now if the link is open, else opens it. */
  #announce(share: ShareRecord): void {
    const link = this.#links.get(share.peer)
    if (link === undefined) {
      if (this.#accepted.has(share.peer)) void this.#dial(share.peer)
      return
    }
    void this.#greetRoom(link, share).catch((err: unknown) => this.#linkError(link, err))
  }

  // ------------------------------------------------------------------ links

  readonly #onPeerConnect = (event: CustomEvent): void => {
    let key: string
    try {
      key = didFromPeerId(event.detail)
    } catch {
      return
    }
    const known = this.#keys.identityOf(key)
    if (this.#links.has(known)) return
    // Any host may connect, as often as it likes: a key found a stranger costs no reload.
    if (this.#strangerRecently(key)) return
    void this.#reloadShared()
      .then(async () => {
        const did = this.#keys.identityOf(key)
        if (this.#links.has(did) || this.#shares.roomsWith(did).length === 0) return
        if (this.#accepted.has(did)) return this.#dial(did)
      })
      .catch((err: unknown) =>
        this.#log.error({ event: 'rooms.sync.peer_connect_failed', err }, 'peer:connect'),
      )
  }

  #tick(): void {
    if (!this.#started) return
    void this.#check().catch((err: unknown) => {
      this.#log.error({ event: 'rooms.sync.check_failed', err }, 'checking links failed')
    })
  }

  /** Opens links to accepted peers that share rooms with us; closes links to peers no longer accepted. */
  async #check(): Promise<void> {
    await this.#reloadPeers()
    for (const link of [...this.#links.values()]) {
      const identity = this.#keys.identityOf(link.key)
      if (identity !== link.peer) this.#rekey(link, identity)
      if (!this.#accepted.has(link.peer)) this.#close(link, 'not-connected')
      else if (this.#currentKey(link.peer) !== link.key) this.#close(link, 'peer-rotated')
    }
    for (const peer of this.#shares.peers()) {
      if (this.#accepted.has(peer) && !this.#links.has(peer)) void this.#dial(peer)
    }
  }

  async #dial(peer: string): Promise<void> {
    if (this.#dialing.has(peer) || this.#links.has(peer) || !this.#started) return
    this.#dialing.add(peer)
    try {
      const key = this.#currentKey(peer)
      const peerId = peerIdFromDid(key)
      if (this.#c.libp2p.getConnections(peerId).length === 0) {
        const addrs = addressesOf(this.#accepted.get(peer)?.multiaddrs ?? [])
        if (addrs.length > 0) await this.#c.libp2p.peerStore.merge(peerId, { multiaddrs: addrs })
      }
      const signal = AbortSignal.any([
        AbortSignal.timeout(this.#init.dialTimeoutMs ?? 10_000),
        this.#shutdown.signal,
      ])
      const stream = await this.#c.libp2p.dialProtocol(peerId, [...this.protocols], { signal })
      if (!this.#started) {
        stream.abort(new Error('room sync stopped'))
        return
      }
      this.#open(peer, key, stream, this.#self)
    } catch (err) {
      if (this.#shutdown.signal.aborted) return
      const unsupported = (err as Error)?.name === 'UnsupportedProtocolError'
      const code: MeshErrorCode = unsupported ? 'MESH_PROTOCOL_VERSION' : 'MESH_UNAVAILABLE'
      const message = unsupported
        ? 'the peer speaks no version of the room sync protocol in common'
        : ((err as Error)?.message ?? String(err))
      this.#errors.set(peer, {
        code,
        message: message.slice(0, 512),
        at: new Date(this.#now()).toISOString(),
      })
      this.#log.warn(
        { event: unsupported ? 'rooms.sync.protocol_version' : 'rooms.sync.dial_failed', peer, code },
        message,
      )
    } finally {
      this.#dialing.delete(peer)
    }
  }

  /**
   * An inbound link: its key must be the current key of a peer with an accepted
   * connection (a key it rotated to is learned from the PeerBook first; a key it
   * rotated away from is refused). The per-key limits come first; a key not known as
   * accepted costs one reload of keys and peers (shared by every stream waiting for
   * it), after which it is refused at once for `inbound.refreshIntervalMs`.
   */
  #onStream(stream: Stream, connection: Connection): void {
    let key: string
    try {
      key = didFromPeerId(connection.remotePeer)
    } catch {
      // Not an Ed25519 peer: no mesh.
      this.stats.streamsRefused++
      stream.abort(new Error('not a mesh key'))
      return
    }
    const over = this.#admit(key, stream)
    if (over !== undefined) {
      this.#refuseStream(stream, key, 'MESH_RATE_LIMITED', over, 'too many room streams from this peer')
      return
    }
    void (async () => {
      let peer = this.#keys.identityOf(key)
      if (!this.#accepted.has(peer) || this.#currentKey(peer) !== key) {
        if (!this.#strangerRecently(key)) {
          await this.#reloadShared()
          peer = this.#keys.identityOf(key)
          if (!this.#accepted.has(peer)) this.#markStranger(key)
        }
      }
      if (!this.#accepted.has(peer)) {
        this.#refuseStream(
          stream,
          peer,
          'MESH_NOT_CONNECTED',
          'not-connected',
          'no accepted connection with this mesh',
        )
        return
      }
      if (this.#currentKey(peer) !== key) {
        this.#refuseStream(
          stream,
          peer,
          'MESH_SIGNATURE_MISMATCH',
          'retired-key',
          'a link from a key this mesh has rotated away from',
        )
        return
      }
      this.#open(peer, key, stream, key)
    })().catch((err: unknown) => {
      stream.abort(err as Error)
      this.#log.error({ event: 'rooms.sync.inbound_failed', peer: key, err }, 'inbound link failed')
    })
  }

  /** Whether a reload found `key` not accepted less than `refreshIntervalMs` ago. */
  #strangerRecently(key: string): boolean {
    const until = this.#strangers.get(key)
    if (until === undefined) return false
    if (until > this.#now()) return true
    this.#strangers.delete(key)
    return false
  }

  #markStranger(key: string): void {
    if (this.#strangers.size >= MAX_INBOUND_KEYS) this.#strangers.clear()
    this.#strangers.set(key, this.#now() + this.#limits.refreshIntervalMs)
  }

  /**
   * Counts a new inbound stream against its key's limits; returns the reason when it
   * is over one (the stream is then not counted as open).
   */
  #admit(key: string, stream: Stream): string | undefined {
    const now = this.#now()
    let count = this.#inbound.get(key)
    if (count === undefined) {
      if (this.#inbound.size >= MAX_INBOUND_KEYS) this.#pruneInbound(now)
      count = { open: 0, windowStart: now, opened: 0 }
      this.#inbound.set(key, count)
    }
    if (now - count.windowStart >= this.#limits.windowMs) {
      count.windowStart = now
      count.opened = 0
    }
    count.opened++
    if (count.opened > this.#limits.maxNewStreamsPerPeer) return 'stream-rate'
    if (count.open >= this.#limits.maxStreamsPerPeer) return 'too-many-streams'
    // A stream closed already emits no 'close' to count it out again.
    if (stream.status !== 'open') return undefined
    count.open++
    const counted = count
    stream.addEventListener('close', () => {
      counted.open--
    })
    return undefined
  }

  /** Forgets the counters of keys with no open stream and a window that has passed. */
  #pruneInbound(now: number): void {
    for (const [key, count] of this.#inbound) {
      if (count.open === 0 && now - count.windowStart >= this.#limits.windowMs) this.#inbound.delete(key)
    }
    // Still full: the oldest idle ones go (a flood of fresh keys must not grow this).
    if (this.#inbound.size >= MAX_INBOUND_KEYS) {
      for (const [key, count] of this.#inbound) {
        if (count.open === 0) this.#inbound.delete(key)
        if (this.#inbound.size < MAX_INBOUND_KEYS / 2) break
      }
    }
  }

  #refuseStream(stream: Stream, peer: string, code: MeshErrorCode, reason: string, message: string): void {
    this.stats.streamsRefused++
    stream.abort(new Error(message))
    this.#refuse(peer, null, code, reason, message)
  }

  /** The periodic reload of key histories and accepted peers (and the one on demand). */
  async #reloadPeers(): Promise<void> {
    this.stats.peerReloads++
    await this.#keys.refresh()
    await this.#loadAccepted()
  }

  /** A reload on demand: the one under way if there is one (its answer serves every waiter). */
  #reloadShared(): Promise<void> {
    this.#refreshing ??= this.#reloadPeers().finally(() => {
      this.#refreshing = undefined
    })
    return this.#refreshing
  }

  /** A new stream with `peer`: kept unless a link opened by the mesh whose key sorts first exists. */
  #open(peer: string, key: string, stream: Stream, initiator: string): void {
    const existing = this.#links.get(peer)
    if (existing !== undefined) {
      const first = this.#self < key ? this.#self : key
      if (existing.key === key && existing.initiator !== initiator && existing.initiator === first) {
        stream.abort(new Error('duplicate link'))
        return
      }
      this.#close(existing, 'replaced')
    }
    const link = new Link(peer, key, initiator, stream)
    this.#links.set(peer, link)
    this.#errors.delete(peer)
    this.stats.linksOpened++
    this.#log.info(
      { event: 'rooms.sync.link_opened', peer, initiator: initiator === this.#self },
      'link opened',
    )
    void this.#readLoop(link)
    void this.#greet(link).catch((err: unknown) => this.#linkError(link, err))
  }

  #close(link: Link, reason: string, err?: Error): void {
    if (link.closed) return
    link.closed = true
    if (this.#links.get(link.peer) === link) this.#links.delete(link.peer)
    link.queue = []
    link.queuedBytes = 0
    link.batch.clear()
    if (err !== undefined || reason !== 'stopping') link.stream.abort(err ?? new Error(reason))
    else link.stream.abort(new Error(reason))
    this.#log.info({ event: 'rooms.sync.link_closed', peer: link.peer, reason }, 'link closed')
  }

  /** The peer's identity became known (its chain was learned): its link is filed under it. */
  #rekey(link: Link, identity: string): void {
    if (this.#links.get(link.peer) === link) this.#links.delete(link.peer)
    this.#log.info(
      { event: 'rooms.sync.link_rekeyed', from: link.peer, to: identity },
      'peer identity learned',
    )
    link.peer = identity
    const other = this.#links.get(identity)
    if (other !== undefined && other !== link) this.#close(other, 'replaced')
    this.#links.set(identity, link)
  }

  #linkError(link: Link, err: unknown): void {
    if (link.closed) return
    this.#log.warn({ event: 'rooms.sync.link_failed', peer: link.peer, err }, 'link failed')
    this.#errors.set(link.peer, {
      code: 'MESH_UNAVAILABLE',
      message: String((err as Error)?.message ?? err).slice(0, 512),
      at: new Date(this.#now()).toISOString(),
    })
    this.#close(link, 'error', err as Error)
  }

  /** Both sides, when the link opens: our shares, then SyncStep1 for every room shared with the peer. */
  async #greet(link: Link): Promise<void> {
    for (const share of this.#shares.roomsWith(link.peer)) {
      if (link.closed) return
      await this.#greetRoom(link, share)
    }
  }

  async #greetRoom(link: Link, share: ShareRecord): Promise<void> {
    if (share.direction === 'out') {
      // Our chain, and the home mesh's: the peer needs them for seals by rotated keys.
      const chains = [this.#keys.chainOf(this.#identity)]
      if (!this.#isOwn(share.homeMesh)) chains.push(this.#keys.chainOf(share.homeMesh))
      const carried = chains.filter((c) => c.length > 0)
      const signed = signShare(this.#c.key(), {
        room: share.room,
        homeMesh: share.homeMesh,
        name: share.name,
        topic: share.topic,
        to: share.to ?? share.peer,
        act: share.act,
        ...(share.credentials !== undefined ? { credentials: share.credentials } : {}),
        decidedAt: share.decidedAt,
        ...(share.dm !== undefined ? { join: share.dm } : {}),
        ...(carried.length > 0 ? { chains: carried } : {}),
      })
      this.#send(link, { room: share.room, type: 'share', json: JSON.stringify(signed) })
    }
    const room = await this.#c.rooms.load(share.room)
    if (link.closed) return
    this.#watchAwareness(room)
    const incoming = this.#progressOf(link.peer, room.id).incoming
    Object.assign(incoming, emptyTransfer(), { startedAt: new Date(this.#now()).toISOString() })
    this.#send(link, { room: room.id, type: 'step1', stateVector: Y.encodeStateVector(room.doc) })
  }

  // ------------------------------------------------------------------ writing

  #send(link: Link, frame: RoomFrame, onSent?: () => void): void {
    if (link.closed) return
    const bytes = encodeFrame(frame)
    link.queue.push({ bytes, ...(onSent !== undefined ? { onSent } : {}) })
    link.queuedBytes += bytes.byteLength
    if (link.queuedBytes > ROOM_SYNC_LIMITS.maxQueuedBytes) {
      this.#linkError(link, new Error('peer reads too slowly'))
      return
    }
    if (!link.writing) void this.#drain(link)
  }

  async #drain(link: Link): Promise<void> {
    link.writing = true
    try {
      while (!link.closed && link.queue.length > 0) {
        const next = link.queue.shift() as Queued
        link.queuedBytes -= next.bytes.byteLength
        await link.lp.write(next.bytes, { signal: this.#shutdown.signal })
        this.stats.framesOut++
        next.onSent?.()
      }
    } catch (err) {
      this.#linkError(link, err)
    } finally {
      link.writing = false
    }
  }

  /** Watches a loaded room: its updates go to the peers it is shared with. */
  #watch(room: Room): void {
    if (this.#watched.has(room)) return
    this.#watched.add(room)
    room.doc.on('update', (update: Uint8Array, origin: unknown) => {
      const o = origin as RoomOrigin | null
      if (o?.source === 'store') return
      const shares = this.#shares.peersOf(room.id)
      if (shares.length === 0) return
      for (const share of shares) {
        if (o?.source === 'peer' && o.meshDid === share.peer) continue
        const link = this.#links.get(share.peer)
        if (link === undefined || !link.ready.has(room.id)) continue
        let list = link.batch.get(room.id)
        if (list === undefined) {
          list = []
          link.batch.set(room.id, list)
        }
        list.push(update)
      }
      this.#scheduleFlush()
    })
    if (this.#shares.peersOf(room.id).length > 0) this.#watchAwareness(room)
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    setImmediate(() => {
      this.#flushScheduled = false
      for (const link of this.#links.values()) this.#flush(link)
    })
  }

  /** Sends a link's updates of this tick: one frame per room (merged when small enough). */
  #flush(link: Link): void {
    for (const [room, updates] of link.batch) {
      const merged = updates.length === 1 ? (updates[0] as Uint8Array) : Y.mergeUpdates(updates)
      const parts = merged.byteLength > (ROOM_LIMITS.maxUpdateBytes * 3) / 4 ? updates : [merged]
      for (const update of parts) {
        this.#send(link, { room, type: 'update', update })
        this.#learn(link.peer, room, update)
      }
    }
    link.batch.clear()
  }

  // ------------------------------------------------------------------ reading

  async #readLoop(link: Link): Promise<void> {
    try {
      while (!link.closed) {
        const data = await link.lp.read({ signal: this.#shutdown.signal })
        this.stats.framesIn++
        await this.#onFrame(link, data.subarray())
      }
    } catch (err) {
      if (link.closed || this.#shutdown.signal.aborted) return
      const name = (err as Error)?.name
      if (name === 'InvalidDataLengthError' || name === 'InvalidDataLengthLengthError') {
        this.#refuse(
          link.peer,
          null,
          'MESH_TOO_LARGE',
          'frame-too-large',
          'frame over the size limit; link closed',
        )
        this.#close(link, 'frame-too-large', err as Error)
        return
      }
      if (name === 'UnexpectedEOFError' || name === 'StreamResetError' || name === 'StreamClosedError') {
        this.#close(link, 'closed by peer')
        return
      }
      this.#linkError(link, err)
    } finally {
      this.#close(link, 'ended')
    }
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
    const peer = link.peer
    if (frame.type === 'share') {
      await this.#onShare(link, frame.room, frame.json)
      return
    }
    if (frame.type === 'refused') {
      this.#log.info(
        { event: 'rooms.sync.refused_by_peer', peer, room: frame.room, code: frame.code.slice(0, 64) },
        frame.reason.slice(0, 256),
      )
      return
    }
    if (this.#shares.get(frame.room, peer) === undefined) {
      this.#refuse(
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
      room = await this.#c.rooms.load(frame.room)
    } catch (err) {
      this.#log.error(
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
        this.#onAwareness(link, room, frame.update)
        return
      case 'backfill': {
        const incoming = this.#progressOf(peer, room.id).incoming
        Object.assign(incoming, {
          entries: frame.entries,
          bytes: frame.bytes,
          chunks: frame.chunks,
          entriesDone: 0,
          bytesDone: 0,
          chunksDone: 0,
          doneAt: frame.chunks === 0 ? new Date(this.#now()).toISOString() : null,
        })
        return
      }
    }
  }

  /** The answer to a SyncStep1: the diff, in chunks of at most maxBackfillEventsPerRequest entries. */
  async #answer(link: Link, room: Room, stateVector: Uint8Array): Promise<void> {
    let theirs: Map<number, number>
    try {
      theirs = Y.decodeStateVector(stateVector)
    } catch {
      this.#refuse(link.peer, room.id, 'MESH_BAD_REQUEST', 'malformed', 'malformed state vector', link)
      return
    }
    const { maxBackfillEventsPerRequest } = await this.#c.policy()
    if (link.closed) return
    // From here to `ready` nothing awaits: every change is either in the diff or sent live.
    const plan = splitDiff(room.doc, stateVector, { maxEntries: maxBackfillEventsPerRequest })
    const progress = this.#progressOf(link.peer, room.id)
    progress.theirs = theirs
    const now = new Date(this.#now()).toISOString()
    const outgoing = progress.outgoing
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
    this.#send(link, {
      room: room.id,
      type: 'backfill',
      entries: plan.totalEntries,
      bytes: plan.totalBytes,
      chunks: plan.chunks.length,
    })
    plan.chunks.forEach((chunk, i) => {
      this.#send(link, { room: room.id, type: 'step2', update: chunk }, () => {
        outgoing.entriesDone += plan.entries[i] ?? 0
        outgoing.bytesDone += chunk.byteLength
        outgoing.chunksDone++
        if (outgoing.chunksDone === outgoing.chunks) outgoing.doneAt = new Date(this.#now()).toISOString()
      })
      this.#learn(link.peer, room.id, chunk)
    })
    link.ready.add(room.id)
    if (plan.chunks.length > 1) {
      this.#log.info(
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

  async #apply(link: Link, room: Room, update: Uint8Array, step2: boolean): Promise<void> {
    const peer = link.peer
    const progress = this.#progressOf(peer, room.id)
    if (step2) {
      const incoming = progress.incoming
      incoming.chunksDone++
      incoming.bytesDone += update.byteLength
      incoming.entriesDone += countEntries(update)
      if (incoming.chunksDone >= incoming.chunks && incoming.doneAt === null)
        incoming.doneAt = new Date(this.#now()).toISOString()
    }
    let applying: Promise<{ error?: MeshError }>
    try {
      // Validation and apply run synchronously in this call: frames apply in order.
      applying = room.applyUpdate(update, { kind: 'peer', meshDid: peer })
    } catch (err) {
      this.#log.error(
        { event: 'rooms.sync.apply_failed', peer, room: room.id, err },
        'applying an update failed',
      )
      return
    }
    link.inflight++
    const done = applying.then(
      (result) => {
        link.inflight--
        if (result.error === undefined) {
          this.#learn(peer, room.id, update)
          this.#maybeJoin(room)
        }
      },
      (err: unknown) => {
        link.inflight--
        this.#log.error(
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
    for (const share of this.#shares.peersOf(room.id)) {
      const did = share.join
      if (share.direction !== 'in' || did === undefined) continue
      const member = room.member(did)
      if (member !== undefined && this.#isOwn(member.mesh)) continue
      const key = `${room.id}/${did}`
      if (this.#joining.has(key)) continue
      this.#joining.add(key)
      this.#c.rooms
        .join(room.id, did)
        .then(
          () => this.#log.info({ event: 'rooms.sync.joined', room: room.id, did }, 'joined a shared room'),
          (err: unknown) =>
            this.#log.warn(
              { event: 'rooms.sync.join_failed', room: room.id, did, err },
              'could not join a shared room',
            ),
        )
        .finally(() => this.#joining.delete(key))
    }
  }

  async #onShare(link: Link, roomId: string, json: string): Promise<void> {
    let peer = link.peer
    if (json.length > ROOM_SYNC_LIMITS.maxShareBytes) {
      this.#refuse(peer, roomId, 'MESH_TOO_LARGE', 'share-too-large', 'share too large', link)
      return
    }
    const accepted = this.#accepted.get(peer)
    let act: GateAct | undefined
    try {
      const selfDids = [this.#identity, ...this.#keys.ownDids()]
      const { share, chains, senderDids } = verifyShare(json, {
        remote: link.key,
        remoteDids: this.#didsOf(peer),
        selfDids,
        room: roomId,
        now: this.#now(),
      })
      // Key histories first: the sender's may tell its identity (a peer met on a later key).
      for (const chain of chains) await this.#keys.learn(chain.records, { now: this.#now() })
      const identity = this.#keys.identityOf(link.key)
      if (identity !== link.peer) {
        this.#rekey(link, identity)
        if (accepted !== undefined) this.#accepted.set(identity, { ...accepted, did: identity })
        peer = identity
      }
      const existing = this.#shares.get(roomId, peer)
      if (existing !== undefined) return
      act = await this.#checkShareAct(share, senderDids, selfDids, accepted?.architectDid ?? null)
      const held = await this.#c.rooms.record(roomId).catch(() => undefined)
      if (
        held !== undefined &&
        this.#keys.identityOf(held.homeMesh) !== this.#keys.identityOf(share.homeMesh)
      )
        throw new ConflictError('this mesh holds that room with another home mesh', { room: roomId })
      const join = share.join ?? this.#init.architectDid
      if (share.join !== undefined && (await this.#c.rooms.principal(share.join)) === undefined)
        throw new NotFoundError('no such principal on this mesh', { did: share.join })
      await this.#c.rooms.adopt({
        id: roomId,
        homeMesh: share.homeMesh,
        name: share.name,
        topic: share.topic,
        admits: join,
        dm: share.join !== undefined,
      })
      const record: ShareRecord = {
        room: roomId,
        peer,
        direction: 'in',
        homeMesh: share.homeMesh,
        name: share.name,
        topic: share.topic,
        act: share.act,
        by: peer,
        decidedAt: share.decidedAt,
        join,
        ...(share.join !== undefined ? { dm: share.join } : {}),
        createdAt: new Date(this.#now()).toISOString(),
      }
      await this.#persist(record, 'rooms.share.received', peer, act.operations, act.human)
    } catch (err) {
      if (act !== undefined) await this.#c.acts.release(act)
      const e = err instanceof MeshError ? err : new MeshError('MESH_INTERNAL', 'share could not be applied')
      if (!(err instanceof MeshError))
        this.#log.error({ event: 'rooms.sync.share_failed', peer, room: roomId, err }, 'share failed')
      this.#refuse(peer, roomId, e.code, 'share-refused', e.message, link)
      return
    }
    const record = this.#shares.get(roomId, peer) as ShareRecord
    await this.#greetRoom(link, record)
  }

  /**
   * The chain inside a share a peer forwarded, as a foreign act (SPEC §4): an invocation
   * of `room/share` addressed to a key of the sender, on that key's room (or, for a DM,
   * on the key itself) with `nb.peer` = the receiver (the DM's principal), rooted in that
   * key, valid when the share was decided, with a human the sender vouches for who is
   * no mesh key; a share (not a DM) passes through the sender's architect. Claimed:
   * the caller writes its `operations` with the share, or releases it.
   */
  async #checkShareAct(
    share: ReturnType<typeof verifyShare>['share'],
    senderDids: Set<string>,
    selfDids: string[],
    architect: string | null,
  ): Promise<GateAct> {
    const peeked = this.#c.acts.peek(share.act)
    if (peeked.format !== 'ucan')
      throw new MeshError('MESH_UCAN_INVALID', 'a share carries a UCAN chain', { reason: 'interim' })
    const isMeshKey = (did: string) => senderDids.has(did) || selfDids.includes(did)
    if (isMeshKey(peeked.issuer))
      throw new MeshError('MESH_NOT_HUMAN_SIGNED', 'the act is signed by a mesh key, not by a human', {
        iss: peeked.issuer,
      })
    if (!senderDids.has(peeked.audience))
      throw new MeshError('MESH_UCAN_INVALID', 'the act is addressed to another mesh than the sender', {
        aud: peeked.audience,
      })
    const act = await this.#c.acts.peer([share.act, ...(share.credentials ?? [])], {
      audience: peeked.audience,
      act: 'room/share',
      subject: share.join ?? share.to,
      resource: shareResource(peeked.audience, share.room, share.join),
      now: share.decidedAt,
    })
    try {
      if (act.human === undefined || isMeshKey(act.human))
        throw new MeshError('MESH_NOT_HUMAN_SIGNED', 'the human in the chain is a mesh key', {
          human: act.human ?? null,
        })
      if (share.join === undefined && architect !== null && !act.issuers.includes(architect))
        throw new ForbiddenError('the chain does not pass through the peer’s architect', {
          architect,
          issuers: act.issuers,
        })
    } catch (err) {
      await this.#c.acts.release(act)
      throw err
    }
    return act
  }

  // ------------------------------------------------------------------ awareness

  #watchAwareness(room: Room): void {
    if (this.#watchedAwareness.has(room)) return
    this.#watchedAwareness.add(room)
    const awareness = room.awareness
    awareness.on(
      'update',
      (
        { added, updated, removed }: { added: number[]; updated: number[]; removed: number[] },
        origin: unknown,
      ) => {
        // Only what this mesh's own clients say travels: no peer speaks for another.
        if ((origin as RoomOrigin | null)?.source === 'peer') return
        const claims = this.#claimsOf(room.id)
        const ids = [...added, ...updated, ...removed].filter((id) => {
          const owner = claims.get(id)
          if (owner !== undefined && owner !== this.#identity) return false
          claims.set(id, this.#identity)
          return true
        })
        if (ids.length === 0) return
        const update = awarenessProtocol.encodeAwarenessUpdate(awareness, ids)
        for (const share of this.#shares.peersOf(room.id)) {
          const link = this.#links.get(share.peer)
          if (link?.ready.has(room.id)) this.#send(link, { room: room.id, type: 'awareness', update })
        }
      },
    )
  }

  #claimsOf(room: string): Map<number, string> {
    let claims = this.#claims.get(room)
    if (claims === undefined || claims.size > MAX_CLAIMS_PER_ROOM) {
      claims = new Map()
      this.#claims.set(room, claims)
    }
    return claims
  }

  /**
   * Awareness from a peer: each state must be for a Yjs client id bound to that mesh
   * in the room (or not bound, and not claimed by another mesh or a local client),
   * a JSON object (or null) of at most 4 KiB; it is stamped with `mesh`.
   */
  #onAwareness(link: Link, room: Room, update: Uint8Array): void {
    const peer = link.peer
    const kept: Array<{ client: number; clock: number; state: string }> = []
    try {
      const d = decoding.createDecoder(update.slice())
      const count = decoding.readVarUint(d)
      if (count > ROOM_SYNC_LIMITS.maxAwarenessStates) {
        this.#refuse(peer, room.id, 'MESH_TOO_LARGE', 'awareness-too-many', 'too many awareness states', link)
        return
      }
      const clients = room.doc.getMap('clients')
      const claims = this.#claimsOf(room.id)
      for (let i = 0; i < count; i++) {
        const client = decoding.readVarUint(d)
        const clock = decoding.readVarUint(d)
        const text = decoding.readVarString(d)
        const bound = clients.get(String(client)) as ClientBinding | undefined
        const owner = claims.get(client)
        if ((bound !== undefined && bound.mesh !== peer) || (owner !== undefined && owner !== peer)) {
          this.#refuse(
            peer,
            room.id,
            'MESH_UPDATE_REJECTED',
            'awareness-impersonation',
            'awareness for a client of another mesh',
            link,
          )
          continue
        }
        if (Buffer.byteLength(text) > ROOM_LIMITS.maxAwarenessBytes) {
          this.#refuse(
            peer,
            room.id,
            'MESH_TOO_LARGE',
            'awareness-too-large',
            'awareness state too large',
            link,
          )
          continue
        }
        let state: unknown
        try {
          state = JSON.parse(text)
        } catch {
          state = undefined
        }
        if (state === undefined || (state !== null && (typeof state !== 'object' || Array.isArray(state)))) {
          this.#refuse(
            peer,
            room.id,
            'MESH_BAD_REQUEST',
            'awareness-malformed',
            'awareness state is not an object',
            link,
          )
          continue
        }
        claims.set(client, peer)
        kept.push({
          client,
          clock,
          state: state === null ? 'null' : JSON.stringify({ ...(state as object), mesh: peer }),
        })
      }
      if (d.pos !== d.arr.length) throw new MalformedFrameError('trailing bytes')
    } catch {
      this.#refuse(peer, room.id, 'MESH_BAD_REQUEST', 'malformed', 'malformed awareness update', link)
      return
    }
    if (kept.length === 0) return
    const e = encoding.createEncoder()
    encoding.writeVarUint(e, kept.length)
    for (const k of kept) {
      encoding.writeVarUint(e, k.client)
      encoding.writeVarUint(e, k.clock)
      encoding.writeVarString(e, k.state)
    }
    awarenessProtocol.applyAwarenessUpdate(room.awareness, encoding.toUint8Array(e), {
      source: 'peer',
      meshDid: peer,
    } satisfies RoomOrigin)
  }

  // ------------------------------------------------------------------ refusals

  /**
   * Records a refused frame in the rejected log (through the room manager, so that
   * `onRejected` hears of it) and tells the peer; at most one per peer and reason per
   * interval, the rest counted in the next record.
   */
  #refuse(
    peer: string,
    room: string | null,
    code: MeshErrorCode,
    reason: string,
    message: string,
    link?: Link,
  ): void {
    this.stats.refused++
    const now = this.#now()
    const key = `${peer} ${reason}`
    const last = this.#refusalLog.get(key)
    if (last !== undefined && now - last.at < (this.#init.refusalLogIntervalMs ?? 1000)) {
      last.suppressed++
      return
    }
    if (this.#refusalLog.size > 10_000) this.#refusalLog.clear()
    this.#refusalLog.set(key, { at: now, suppressed: 0 })
    const details: Record<string, unknown> = { reason, peer }
    if (last !== undefined && last.suppressed > 0) details.suppressedSinceLast = last.suppressed
    this.#c.rooms.recordRefusal(
      room ?? '-',
      { kind: 'peer', meshDid: peer },
      new MeshError(code, message, details),
      'room.sync',
    )
    if (link !== undefined && room !== null) this.#send(link, { room, type: 'refused', code, reason })
  }

  // ------------------------------------------------------------------ progress

  #progressOf(peer: string, room: string): Progress {
    let byRoom = this.#progress.get(peer)
    if (byRoom === undefined) {
      byRoom = new Map()
      this.#progress.set(peer, byRoom)
    }
    let p = byRoom.get(room)
    if (p === undefined) {
      p = { theirs: null, incoming: emptyTransfer(), outgoing: emptyTransfer() }
      byRoom.set(room, p)
    }
    return p
  }

  /** The peer has (or will have) what `update` holds: its known state vector grows. */
  #learn(peer: string, room: string, update: Uint8Array): void {
    const p = this.#progressOf(peer, room)
    if (p.theirs === null) return
    try {
      const { from, to } = Y.parseUpdateMeta(update)
      for (const [client, clock] of to) {
        if ((from.get(client) ?? 0) <= (p.theirs.get(client) ?? 0) && clock > (p.theirs.get(client) ?? 0))
          p.theirs.set(client, clock)
      }
    } catch {
      // an update that does not parse teaches nothing
    }
  }

  async status(roomId: string): Promise<RoomSyncStatus> {
    const record = await this.#c.rooms.record(roomId)
    const room = await this.#c.rooms.load(roomId)
    const peers: PeerSyncStatus[] = []
    for (const share of this.#shares.peersOf(roomId)) {
      const p = this.#progressOf(share.peer, roomId)
      const link = this.#links.get(share.peer)
      let behind: PeerSyncStatus['behind'] = null
      let theirStateVector: string | null = null
      if (p.theirs !== null) {
        const sv = encodeStateVector(p.theirs)
        theirStateVector = Buffer.from(sv).toString('base64')
        const diff = Y.encodeStateAsUpdate(room.doc, sv)
        behind = { entries: countEntries(diff), bytes: diff.byteLength > 2 ? diff.byteLength : 0 }
      }
      const open = link !== undefined && !link.closed
      const caughtUp =
        open &&
        p.incoming.doneAt !== null &&
        p.outgoing.doneAt !== null &&
        behind !== null &&
        behind.entries === 0
      peers.push({
        peer: share.peer,
        name: this.#accepted.get(share.peer)?.name ?? null,
        direction: share.direction,
        link: open ? 'open' : 'closed',
        lastError: this.#errors.get(share.peer) ?? null,
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
      federated: this.isFederated(roomId, record.homeMesh),
      stateVector: Buffer.from(Y.encodeStateVector(room.doc)).toString('base64'),
      messages: room.messageCount,
      caughtUp: peers.every((p) => p.caughtUp),
      peers,
    }
  }

  /** Open links, by peer did (for tests and views). */
  links(): string[] {
    return [...this.#links.keys()]
  }
}

/** The credentials a local act forwards after its token. */
function credentialsOf(act: GateAct): { credentials?: string[] } {
  const credentials = act.forward.slice(1)
  return credentials.length > 0 ? { credentials } : {}
}

function view(s: ShareRecord): ShareView {
  return {
    room: s.room,
    peer: s.peer,
    direction: s.direction,
    createdAt: s.createdAt,
    ...(s.dm !== undefined ? { dm: s.dm } : {}),
  }
}

/** The fields of `o` that are set (an `undefined` must not replace a default). */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
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

function addressesOf(list: string[]): Multiaddr[] {
  const out: Multiaddr[] = []
  for (const a of list) {
    try {
      const ma = multiaddr(a)
      out.push(ma.getComponents().some((c) => c.name === 'p2p') ? ma.decapsulateCode(421) : ma)
    } catch {
      // skipped
    }
  }
  return out
}
