import type { AbortOptions, Connection, Stream } from '@libp2p/interface'
import type { RejectedLog } from '../audit/index.ts'
import { type AuditLog, type CheckpointGossip, RefusalThrottle } from '../audit/index.ts'
import type { ActGate } from '../auth/acts/index.ts'
import type { RevocationAnnouncement, RevocationService } from '../auth/index.ts'
import { MeshError } from '../errors.ts'
import type { Ed25519KeyPair, RotationRecord } from '../identity/index.ts'
import { type Logger, silentLogger } from '../log.ts'
import type { MeshLibp2p } from '../p2p/index.ts'
import type { MeshStore } from '../store/index.ts'
import { exchangeCheckpoints } from './checkpoint-exchange.ts'
import { MESH_CONNECT_PROTOCOL } from './connect-protocol.ts'
import { ConnectionBook, type ConnectionView, type PeerView, type Timing, timing } from './connection-book.ts'
import { Delivery } from './delivery.ts'
import type { EnvelopeVerifier } from './envelope.ts'
// phase-1 HTTP federation (SPEC §12)
import type { HttpRoute } from './http-federation.ts'
import { createInbound, type Inbound } from './inbound/index.ts'
import { type ActInput, type ConnectInput, LocalActs } from './local-acts.ts'
import type { MailboxPark } from './mailbox-park.ts' // store and forward (SPEC §10)
import type { Outbox } from './outbox.ts'
import { PeerProbe } from './peer-probe.ts'
import { announceRevocation } from './peer-revocations.ts'
import { PeerRotation } from './peer-rotation.ts'
import type { PeerBook } from './peers.ts'
import type { PolicyService } from './policy.ts'
import { RateLimiter, type RateLimiterInit } from './rate-limiter.ts'
import { type InteractionEvent, Refusals } from './refusals.ts'

export type {
  ConnectionRecord,
  ConnectionView,
  ConnectionViewStatus,
  PeerView,
} from './connection-book.ts'
export type { ActInput, ConnectInput } from './local-acts.ts'

export interface ConnectionServiceComponents {
  libp2p: MeshLibp2p
  /** The mesh key (a function: key rotation will change it). */
  key: () => Ed25519KeyPair
  store: MeshStore
  audit: AuditLog
  policy: PolicyService
  rejected: RejectedLog
  envelopes: EnvelopeVerifier
  /** Human acts (UCAN chains), local and forwarded. */
  acts: ActGate
  peers: PeerBook
  /**
   * Audit checkpoints swapped with accepted peers (`audit.checkpoint`), so that a log cut
   * back shows; without it the node neither sends nor answers them.
   */
  checkpoints?: Pick<CheckpointGossip, 'outgoing' | 'incoming' | 'answered'>
  /**
   * Reputation hook: every message from a peer whose envelope verified, accepted or
   * refused (`principal` is the human behind its act, when there is one). Never awaited
   * by the wire handler; it must not throw.
   */
  onInteraction?: (event: InteractionEvent) => void
  /**
   * After a connection is paused or resumed (stored): e.g. the room links re-check the
   * accepted peers now, so that a pause holds from the moment it is answered.
   */
  onPauseChange?: (peer: string, paused: boolean) => void | Promise<void>
  logger?: Logger
  /** Addresses (and what else is known) of a peer beyond what it told us, e.g. its DHT record. */
  resolvePeer?: (did: string, options: AbortOptions) => Promise<{ multiaddrs: string[] } | undefined>
  /**
   * A peer key's published rotation chain (e.g. from its DHT record, or the "moved"
   * record its old key left), for `refreshPeer`; undefined when none is found.
   */
  fetchRotations?: (
    did: string,
    options: AbortOptions,
  ) => Promise<{ identity: string; rotations: RotationRecord[]; multiaddrs: string[] } | undefined>
  // revocation that travels (SPEC §9)
  /** This mesh's revocations, which take a peer's `ucan.revoked` (a getter: wired later); without it they are refused as unavailable. */
  revocations?: () => Pick<RevocationService, 'receive'> | undefined
  // phase-1 HTTP federation (SPEC §12): the outbox's fallback when libp2p cannot reach a peer
  httpRoute?: Pick<HttpRoute, 'send' | 'reachable'>
  // store and forward (SPEC §10)
  /** The mailbox at relays a peer names, for a message the peer cannot be reached for now (a getter: wired later). */
  mailbox?: () => MailboxPark | undefined
}

export interface ConnectionServiceInit {
  /** This mesh's name, sent in requests. */
  name: string
  /** This mesh's architect: the only issuer of acts this node carries out. */
  architectDid: string
  /** This node's multiaddrs, sent in requests so the peer can answer. */
  multiaddrs: () => string[]
  /**
   * Every did this mesh is known by (its identity and each key it has held): a peer's
   * `mesh/connect` act may name any of them. Default: the current key only.
   */
  ownDids?: () => string[]
  protocolVersions: () => string[]
  outbox?: {
    /** First retry delay; default 1 000 ms. */
    baseDelayMs?: number
    /** Retry delay cap; default 60 000 ms. */
    maxDelayMs?: number
  }
  /** One delivery attempt (dial + exchange) at most this long; default 10 000 ms. */
  sendTimeoutMs?: number
  /**
   * How often accepted peers with nothing queued are pinged (drives `degraded`), and
   * audit checkpoints swapped with accepted peers (when ours changed); 0 = never; default 30 000 ms.
   */
  probeIntervalMs?: number
  /** The per-peer token bucket in front of the wire handler; default 20 burst, 5/s. */
  rateLimit?: RateLimiterInit
  /** Inbound pending requests kept per peer; default 1. */
  maxPendingInboundPerPeer?: number
  /** Oldest `decidedAt` accepted in a message: how long a message may wait in a peer's outbox; default 7 days. */
  maxDeliveryDelayMs?: number
  /** Allowed clock difference for `decidedAt`; default 60 s. */
  maxSkewMs?: number
  /** At most one rate-limit refusal per peer is recorded per this many ms (the rest are counted); default 1 000. */
  rateLimitLogIntervalMs?: number
  now?: () => number
  // phase-1 HTTP federation (SPEC §12): this mesh's HTTP base, sent in requests
  httpUrl?: () => string | undefined
}

/**
 * The federation handshake: the architect's acts from the HTTP API (local-acts), the
 * wire protocol `/mesh/connect/1.0.0` (inbound/), the persisted state machine
 * (connection-book), the outbox that delivers (delivery), the reachability probe
 * (peer-probe), audit checkpoint swaps (checkpoint-exchange), key rotation across
 * peers (peer-rotation) and the refusal records (refusals). This class only wires
 * them and runs their lifecycle.
 */
export class ConnectionService {
  readonly #c: ConnectionServiceComponents
  readonly #book: ConnectionBook
  readonly #delivery: Delivery
  readonly #local: LocalActs
  readonly #inbound: Inbound
  readonly #rotation: PeerRotation
  readonly #probe: PeerProbe
  readonly #log: Logger
  readonly #probeIntervalMs: number
  readonly #timing: Timing
  #started = false
  #probeTimer: NodeJS.Timeout | undefined
  #shutdown = new AbortController()

  constructor(components: ConnectionServiceComponents, init: ConnectionServiceInit) {
    const c = components
    this.#c = c
    const logger = (c.logger ?? silentLogger()).child({ area: 'federation' })
    this.#log = logger
    this.#probeIntervalMs = init.probeIntervalMs ?? 30_000
    this.#timing = timing(init)
    const shutdown = () => this.#shutdown.signal
    // A getter in the components: a key rotation restarts the service on a new host.
    const libp2p = () => c.libp2p
    const book = new ConnectionBook(c, definedOnly({ now: init.now }))
    const rateLimited = new RefusalThrottle(
      definedOnly({ intervalMs: init.rateLimitLogIntervalMs ?? 1000, now: init.now }),
    )
    const refusals = new Refusals({
      ...c,
      logger,
      rateLimited,
      ...definedOnly({ onInteraction: c.onInteraction }),
    })
    const delivery = new Delivery(
      { ...c, libp2p, book, logger, shutdown },
      { ...this.#timing, ...definedOnly({ outbox: init.outbox }) },
    )
    const outbox = delivery.outbox
    const rotation = new PeerRotation({ ...c, book, outbox, refusals, logger, shutdown }, this.#timing)
    this.#local = new LocalActs({ ...c, book, outbox, refusals }, { ...init })
    this.#inbound = createInbound(
      { ...c, book, refusals, rotation, logger, limiter: new RateLimiter(init.rateLimit ?? {}) },
      { ...init, ...this.#timing },
    )
    this.#book = book
    this.#delivery = delivery
    this.#rotation = rotation
    this.#probe = new PeerProbe(
      {
        ...c,
        libp2p,
        book,
        outbox,
        logger,
        shutdown,
        dialable: (peer, opts) => delivery.dialable(peer, opts),
      },
      this.#timing,
    )
  }

  get outbox(): Outbox {
    return this.#delivery.outbox
  }

  async start(): Promise<void> {
    if (this.#started) return
    this.#shutdown = new AbortController()
    await this.#c.libp2p.handle(
      MESH_CONNECT_PROTOCOL,
      (stream: Stream, connection: Connection) => this.#inbound.onStream(stream, connection),
      // reachability (SPEC §10): the handshake runs over relayed (limited) connections too
      { maxInboundStreams: 32, maxOutboundStreams: 32, runOnLimitedConnection: true },
    )
    this.#started = true
    await this.#delivery.start()
    if (this.#probeIntervalMs > 0) {
      this.#probeTimer = setInterval(() => this.#probeRound(), this.#probeIntervalMs)
      this.#probeTimer.unref()
    }
  }

  async stop(): Promise<void> {
    if (!this.#started) return
    this.#started = false
    clearInterval(this.#probeTimer)
    this.#shutdown.abort(new Error('connection service stopped'))
    await this.#delivery.stop()
    await this.#c.libp2p.unhandle(MESH_CONNECT_PROTOCOL).catch(() => {})
    await this.#book.idle()
  }

  /** The architect asks to connect to `target`. Returns the new connection (outbound pending). */
  request(input: ConnectInput): Promise<ConnectionView> {
    return this.#local.request(input)
  }

  /** The architect accepts an inbound pending request. */
  accept(id: string, input: ActInput): Promise<ConnectionView> {
    return this.#local.accept(id, input)
  }

  /** The architect declines an inbound pending request. */
  decline(id: string, input: ActInput): Promise<ConnectionView> {
    return this.#local.decline(id, input)
  }

  /** The architect ends a connection (accepted, or pending in either direction). */
  disconnect(id: string, input: ActInput): Promise<ConnectionView> {
    return this.#local.disconnect(id, input)
  }

  list(): Promise<ConnectionView[]> {
    return this.#book.list()
  }

  get(id: string): Promise<ConnectionView> {
    return this.#book.getView(id)
  }

  async peers(): Promise<PeerView[]> {
    return this.#book.peerViews(await this.#delivery.queued())
  }

  /** Pings every accepted peer with nothing queued, marking it reachable or not (drives `degraded`). */
  probe(options: AbortOptions = {}): Promise<void> {
    return this.#probe.probe(options)
  }

  /** Swaps audit checkpoints with accepted peers whose copy of ours is behind; returns those that answered. */
  exchangeCheckpoints(options: AbortOptions = {}): Promise<string[]> {
    return exchangeCheckpoints(
      {
        ...this.#c,
        libp2p: () => this.#c.libp2p,
        book: this.#book,
        logger: this.#log,
        shutdown: () => this.#shutdown.signal,
        dialable: (peer, opts) => this.#delivery.dialable(peer, opts),
      },
      this.#timing,
      options,
    )
  }

  /** Queues `mesh.key-rotated` at the head of every accepted or pending peer's outbox; returns those peers. */
  announceKeyRotation(identity: string, rotations: RotationRecord[]): Promise<string[]> {
    return this.#rotation.announce(identity, rotations)
  }

  // revocation that travels (SPEC §9)
  /** Queues `ucan.revoked` for every accepted peer; returns those peers. */
  announceRevocation(announcement: RevocationAnnouncement): Promise<string[]> {
    return announceRevocation(
      { book: this.#book, store: this.#c.store, outbox: this.#delivery.outbox, logger: this.#log },
      announcement,
    )
  }

  /** Refetches a peer's keys (manifest, DHT records) and applies a chain that continues what is known. */
  async refreshPeer(did: string, options: AbortOptions & { manifestUrl?: string } = {}): Promise<PeerView> {
    const identity = await this.#rotation.refresh(did, options)
    const view = (await this.peers()).find((p) => p.did === identity)
    if (view === undefined) throw new MeshError('MESH_PEER_UNKNOWN', 'no peer mesh with this did', { did })
    return view
  }

  // paused links (issue 13)
  /** A human pauses an accepted connection: nothing syncs with the peer, its outbox holds. */
  async pause(id: string, input: ActInput): Promise<ConnectionView> {
    const view = await this.#local.setPaused(id, input, true)
    await this.#notifyPause(view, true)
    return view
  }

  /** A human resumes a paused connection: the outbox delivers what it held, rooms catch up. */
  async resume(id: string, input: ActInput): Promise<ConnectionView> {
    const view = await this.#local.setPaused(id, input, false)
    await this.#notifyPause(view, false)
    return view
  }

  async #notifyPause(view: ConnectionView, paused: boolean): Promise<void> {
    try {
      await this.#c.onPauseChange?.(view.peerDid, paused)
    } catch (err) {
      this.#log.error({ event: 'federation.pause_hook_failed', peer: view.peerDid, err }, 'pause hook failed')
    }
  }

  /** Handles one message from the libp2p peer `remoteDid`; returns the signed reply. */
  receive(
    bytes: Uint8Array,
    remoteDid: string,
    options: { maxAgeMs?: number } = {}, // store and forward (SPEC §10): a message from a relay's mailbox
  ): Promise<Uint8Array> {
    return this.#inbound.receive(bytes, remoteDid, options)
  }

  #probeRound(): void {
    this.probe()
      .catch((err: unknown) => {
        this.#log.error({ event: 'federation.probe_failed', err }, 'probing peers failed')
      })
      .then(() => this.exchangeCheckpoints())
      .catch((err: unknown) => {
        this.#log.error({ event: 'federation.checkpoint.round_failed', err }, 'checkpoint exchange failed')
      })
  }
}

/** The fields of `o` that are set (an `undefined` must not replace a default under exactOptionalPropertyTypes). */
function definedOnly<T extends object>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>
  }
}
