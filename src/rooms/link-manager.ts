import type { Connection, Stream } from '@libp2p/interface'
import type { MeshErrorCode } from '../errors.ts'
import { didFromPeerId, peerIdFromDid } from '../identity/index.ts'
import type { Logger } from '../log.ts'
import type { MeshLibp2p } from '../p2p/index.ts'
import type { AcceptedPeers } from './accepted-peers.ts'
import { dialPeerProtocol } from './dial.ts'
import { Link } from './link.ts'
import type { MeshKeys } from './mesh-keys.ts'
import type { Refuse } from './refusals.ts'
import type { ShareBook } from './share.ts'

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

export const INBOUND_DEFAULTS = {
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

export interface LinkError {
  code: string
  message: string
  at: string
}

export interface LinkManagerComponents {
  /** The host (read at each use: a key rotation replaces it). */
  readonly libp2p: MeshLibp2p
  /** This mesh's current key: links are ordered by it. */
  self: () => string
  keys: () => MeshKeys
  peers: AcceptedPeers
  shares: Pick<ShareBook, 'peers' | 'roomsWith'>
  refuse: Refuse
  stats: {
    framesIn: number
    framesOut: number
    linksOpened: number
    streamsRefused: number
  }
  logger: Logger
  now: () => number
  /** A link opened: greet the peer (a failure fails the link). */
  opened: (link: Link) => Promise<void>
  /** A frame arrived on a link. */
  frame: (link: Link, bytes: Uint8Array) => Promise<void>
}

export interface LinkManagerInit {
  protocols: readonly string[]
  limits: Required<InboundLimits>
  /** One dial of a link at most this long; default 10 000 ms. */
  dialTimeoutMs?: number
}

/**
 * The links with peer meshes, one per peer: inbound streams metered and admitted,
 * dials to accepted peers that share rooms with us, links closed when the peer is no
 * longer accepted or rotated its key, and the last error per peer.
 */
export class LinkManager {
  readonly #c: LinkManagerComponents
  readonly #init: LinkManagerInit
  readonly #links = new Map<string, Link>()
  readonly #dialing = new Set<string>()
  readonly #errors = new Map<string, LinkError>()
  readonly #inbound = new Map<string, InboundCount>()
  #started = false
  #shutdown = new AbortController()

  constructor(components: LinkManagerComponents, init: LinkManagerInit) {
    this.#c = components
    this.#init = init
  }

  async start(): Promise<void> {
    this.#shutdown = new AbortController()
    await this.#c.libp2p.handle(
      [...this.#init.protocols],
      (stream: Stream, connection: Connection) => this.#onStream(stream, connection),
      {
        maxInboundStreams: this.#init.limits.maxStreamsPerPeer,
        maxOutboundStreams: 8,
        runOnLimitedConnection: true, // reachability (SPEC §10): rooms run over relayed connections
      },
    )
    this.#c.libp2p.addEventListener('peer:connect', this.#onPeerConnect)
    this.#started = true
  }

  /** Stops dialling and closes every link; the protocol handler goes last. */
  async stop(): Promise<void> {
    this.#started = false
    this.#shutdown.abort(new Error('room sync stopped'))
    this.#c.libp2p.removeEventListener('peer:connect', this.#onPeerConnect)
    for (const link of [...this.#links.values()]) link.close('stopping')
    await this.#c.libp2p.unhandle([...this.#init.protocols]).catch(() => {})
  }

  get(peer: string): Link | undefined {
    return this.#links.get(peer)
  }

  values(): IterableIterator<Link> {
    return this.#links.values()
  }

  /** Open links, by peer identity. */
  peers(): string[] {
    return [...this.#links.keys()]
  }

  lastError(peer: string): LinkError | undefined {
    return this.#errors.get(peer)
  }

  /** Opens links to accepted peers that share rooms with us; closes links to peers no longer accepted. */
  async check(): Promise<void> {
    await this.#c.peers.reload()
    const keys = this.#c.keys()
    for (const link of [...this.#links.values()]) {
      const identity = keys.identityOf(link.key)
      if (identity !== link.peer) this.rekey(link, identity)
      if (!this.#c.peers.has(link.peer)) link.close('not-connected')
      else if (this.#c.peers.currentKey(link.peer) !== link.key) link.close('peer-rotated')
    }
    for (const peer of this.#c.shares.peers()) {
      if (this.#c.peers.has(peer) && !this.#links.has(peer)) void this.dial(peer)
    }
  }

  async dial(peer: string): Promise<void> {
    if (this.#dialing.has(peer) || this.#links.has(peer) || !this.#started) return
    this.#dialing.add(peer)
    try {
      const key = this.#c.peers.currentKey(peer)
      const signal = AbortSignal.any([
        AbortSignal.timeout(this.#init.dialTimeoutMs ?? 10_000),
        this.#shutdown.signal,
      ])
      const stream = await dialPeerProtocol(
        this.#c.libp2p,
        peerIdFromDid(key),
        this.#c.peers.get(peer)?.multiaddrs ?? [],
        this.#init.protocols,
        { signal },
      )
      if (!this.#started) {
        stream.abort(new Error('room sync stopped'))
        return
      }
      this.#open(peer, key, stream, this.#c.self())
    } catch (err) {
      if (this.#shutdown.signal.aborted) return
      const unsupported = (err as Error)?.name === 'UnsupportedProtocolError'
      const code: MeshErrorCode = unsupported ? 'MESH_PROTOCOL_VERSION' : 'MESH_UNAVAILABLE'
      const message = unsupported
        ? 'the peer speaks no version of the room sync protocol in common'
        : ((err as Error)?.message ?? String(err))
      this.#setError(peer, code, message)
      this.#c.logger.warn(
        { event: unsupported ? 'rooms.sync.protocol_version' : 'rooms.sync.dial_failed', peer, code },
        message,
      )
    } finally {
      this.#dialing.delete(peer)
    }
  }

  // phase-1 HTTP federation (SPEC §12): links over another transport (an HTTP tunnel)
  /**
   * Opens a link on `stream`, from the peer key `key`, opened by `initiator`'s side:
   * the key must be an accepted peer's current key (as for an inbound libp2p stream).
   * True when the link is open on this stream; false when refused, or when a link
   * opened by the mesh whose key sorts first was kept instead (the stream is aborted).
   */
  async attach(key: string, stream: Stream, initiator: string): Promise<boolean> {
    if (!this.#started) return false
    const peers = this.#c.peers
    let peer = this.#c.keys().identityOf(key)
    if ((!peers.has(peer) || peers.currentKey(peer) !== key) && !peers.strangerRecently(key)) {
      await peers.reloadShared()
      peer = this.#c.keys().identityOf(key)
      if (!peers.has(peer)) peers.markStranger(key)
    }
    if (!peers.has(peer) || peers.currentKey(peer) !== key) {
      stream.abort(new Error('no accepted connection with this mesh'))
      return false
    }
    this.#open(peer, key, stream, initiator)
    return this.#links.get(peer)?.stream === stream
  }

  /** Accepted peers that share rooms with this mesh and have no open link, with their current keys. */
  unlinked(): Array<{ peer: string; key: string }> {
    const out: Array<{ peer: string; key: string }> = []
    for (const peer of this.#c.shares.peers()) {
      if (this.#c.peers.has(peer) && !this.#links.has(peer)) {
        out.push({ peer, key: this.#c.peers.currentKey(peer) })
      }
    }
    return out
  }

  /** The peer's identity became known (its chain was learned): its link is filed under it. */
  rekey(link: Link, identity: string): void {
    if (this.#links.get(link.peer) === link) this.#links.delete(link.peer)
    this.#c.logger.info(
      { event: 'rooms.sync.link_rekeyed', from: link.peer, to: identity },
      'peer identity learned',
    )
    link.peer = identity
    const other = this.#links.get(identity)
    if (other !== undefined && other !== link) other.close('replaced')
    this.#links.set(identity, link)
  }

  readonly #onPeerConnect = (event: CustomEvent): void => {
    let key: string
    try {
      key = didFromPeerId(event.detail)
    } catch {
      return
    }
    const keys = this.#c.keys()
    if (this.#links.has(keys.identityOf(key))) return
    // Any host may connect, as often as it likes: a key found a stranger costs no reload.
    if (this.#c.peers.strangerRecently(key)) return
    void this.#c.peers
      .reloadShared()
      .then(async () => {
        const did = this.#c.keys().identityOf(key)
        if (this.#links.has(did) || !this.#c.shares.peers().has(did)) return
        if (this.#c.peers.has(did)) return this.dial(did)
      })
      .catch((err: unknown) =>
        this.#c.logger.error({ event: 'rooms.sync.peer_connect_failed', err }, 'peer:connect'),
      )
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
      this.#c.stats.streamsRefused++
      stream.abort(new Error('not a mesh key'))
      return
    }
    const over = this.#admit(key, stream)
    if (over !== undefined) {
      this.#refuseStream(stream, key, 'MESH_RATE_LIMITED', over, 'too many room streams from this peer')
      return
    }
    const peers = this.#c.peers
    void (async () => {
      let peer = this.#c.keys().identityOf(key)
      if (!peers.has(peer) || peers.currentKey(peer) !== key) {
        if (!peers.strangerRecently(key)) {
          await peers.reloadShared()
          peer = this.#c.keys().identityOf(key)
          if (!peers.has(peer)) peers.markStranger(key)
        }
      }
      if (!peers.has(peer)) {
        this.#refuseStream(
          stream,
          peer,
          'MESH_NOT_CONNECTED',
          'not-connected',
          'no accepted connection with this mesh',
        )
        return
      }
      if (peers.currentKey(peer) !== key) {
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
      this.#c.logger.error({ event: 'rooms.sync.inbound_failed', peer: key, err }, 'inbound link failed')
    })
  }

  /**
   * Counts a new inbound stream against its key's limits; returns the reason when it
   * is over one (the stream is then not counted as open).
   */
  #admit(key: string, stream: Stream): string | undefined {
    const now = this.#c.now()
    const limits = this.#init.limits
    let count = this.#inbound.get(key)
    if (count === undefined) {
      if (this.#inbound.size >= MAX_INBOUND_KEYS) this.#pruneInbound(now)
      count = { open: 0, windowStart: now, opened: 0 }
      this.#inbound.set(key, count)
    }
    if (now - count.windowStart >= limits.windowMs) {
      count.windowStart = now
      count.opened = 0
    }
    count.opened++
    if (count.opened > limits.maxNewStreamsPerPeer) return 'stream-rate'
    if (count.open >= limits.maxStreamsPerPeer) return 'too-many-streams'
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
      if (count.open === 0 && now - count.windowStart >= this.#init.limits.windowMs) this.#inbound.delete(key)
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
    this.#c.stats.streamsRefused++
    stream.abort(new Error(message))
    this.#c.refuse(peer, null, code, reason, message)
  }

  /** A new stream with `peer`: kept unless a link opened by the mesh whose key sorts first exists. */
  #open(peer: string, key: string, stream: Stream, initiator: string): void {
    const self = this.#c.self()
    const existing = this.#links.get(peer)
    if (existing !== undefined) {
      const first = self < key ? self : key
      if (existing.key === key && existing.initiator !== initiator && existing.initiator === first) {
        stream.abort(new Error('duplicate link'))
        return
      }
      existing.close('replaced')
    }
    const link = new Link(
      {
        events: {
          frame: this.#c.frame,
          closed: (l) => {
            if (this.#links.get(l.peer) === l) this.#links.delete(l.peer)
          },
          failed: (l, err) =>
            this.#setError(l.peer, 'MESH_UNAVAILABLE', String((err as Error)?.message ?? err)),
          oversized: (l) =>
            this.#c.refuse(
              l.peer,
              null,
              'MESH_TOO_LARGE',
              'frame-too-large',
              'frame over the size limit; link closed',
            ),
        },
        signal: this.#shutdown.signal,
        stats: this.#c.stats,
        logger: this.#c.logger,
      },
      { peer, key, initiator, stream },
    )
    this.#links.set(peer, link)
    this.#errors.delete(peer)
    this.#c.stats.linksOpened++
    this.#c.logger.info(
      { event: 'rooms.sync.link_opened', peer, initiator: initiator === self },
      'link opened',
    )
    link.start()
    void this.#c.opened(link).catch((err: unknown) => link.fail(err))
  }

  #setError(peer: string, code: string, message: string): void {
    this.#errors.set(peer, {
      code,
      message: message.slice(0, 512),
      at: new Date(this.#c.now()).toISOString(),
    })
  }
}
