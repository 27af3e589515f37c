import { randomBytes } from 'node:crypto'
import type { AbortOptions, Connection, PeerId, Stream } from '@libp2p/interface'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import type { AuditEntryInput, AuditLog, CheckpointExchangeBody, CheckpointGossip } from '../audit/index.ts'
import {
  BadRequestError,
  ClockSkewError,
  ConflictError,
  ForbiddenError,
  MeshError,
  type MeshErrorCode,
  NotConnectedError,
  NotFoundError,
  ReplayError,
  SignatureMismatchError,
} from '../errors.ts'
import {
  didFromPeerId,
  type Ed25519KeyPair,
  extendKnownKeys,
  isDidKey,
  peerIdFromDid,
  type RotationRecord,
  verifyRotationChain,
} from '../identity/index.ts'
import { type Logger, silentLogger } from '../log.ts'
import { type MeshManifest, verifyManifest } from '../manifest/index.ts'
import type { MeshLibp2p } from '../p2p/index.ts'
import type { MeshStore, StoreOperation, Sublevel } from '../store/index.ts'
import { type ActGate, claimedSubject, type GateAct } from './act-gate.ts'
import {
  CONNECT_MESSAGE,
  CONNECTION_STATUSES,
  type ConnectAckBody,
  type ConnectAnswerBody,
  type ConnectDisconnectBody,
  type ConnectErrorBody,
  type ConnectionStatus,
  type ConnectRequestBody,
  checkBody,
  classifyDeliveryError,
  DeliveryError,
  exchange,
  type KeyRotatedBody,
  MESH_CONNECT_PROTOCOL,
  serveExchange,
} from './connect-protocol.ts'
import { createEnvelope, type Envelope, type EnvelopeVerifier, encodeEnvelope } from './envelope.ts'
import { HUMAN_ACTS } from './human-act.ts'
import { Outbox, type OutboxItem } from './outbox.ts'
import {
  countTraffic,
  currentKeyOf,
  keyFingerprint,
  newPeerRecord,
  type PeerBook,
  type PeerError,
  type PeerRecord,
  traffic24h,
} from './peers.ts'
import type { PolicyService } from './policy.ts'
import { RateLimiter, type RateLimiterInit } from './rate-limiter.ts'
import { type RejectedLog, rejectionFrom } from './rejected-log.ts'

/**
 * One connection between this mesh and a peer mesh, as stored in the `connections`
 * sublevel under `conn/1/<id>`. The id is chosen by the requester and is the same on
 * both sides. `peerDid` is the peer's identity did (see PeerBook), not necessarily the
 * key it signs with today.
 *
 * Transitions (each written atomically with its audit row):
 *
 * ```
 * outbound: (local request) → pending → accepted   (peer's connect.accept, or an ack saying accepted)
 *                                     → declined   (peer's connect.decline, or a permanent refusal)
 * inbound:  (peer's request) → pending → accepted  (local accept; or at once with policy autoAccept)
 *                                      → declined  (local decline)
 * either:   pending | accepted → disconnected      (local or peer's disconnect)
 * ```
 *
 * `degraded` is never stored: it is shown for an accepted connection while the peer
 * cannot be reached, and goes back to `accepted` once it can.
 */
export interface ConnectionRecord {
  id: string
  peerDid: string
  peerName: string | null
  peerArchitectDid: string | null
  direction: 'inbound' | 'outbound'
  status: ConnectionStatus
  agreementVersion: number
  /** The requester's nonce; every answer must echo it. */
  requestNonce: string
  note: string | null
  createdAt: string
  updatedAt: string
  /** The human whose act made the last transition (null for policy autoAccept). */
  decidedBy: string | null
  lastError: PeerError | null
}

export type ConnectionViewStatus = ConnectionStatus | 'degraded'

/** Consecutive failed probes before an accepted peer shows as `degraded`. */
const PROBE_MISSES_FOR_DEGRADED = 2

/**
 * A connection as `GET /api/connections` shows it (SPEC §3, plus note and times).
 * `peerDid` is the peer's identity (it never changes); `peerKeyDid` and
 * `peerKeyFingerprint` are the key it signs with today (they change when it rotates).
 */
export interface ConnectionView {
  id: string
  peerDid: string
  peerKeyDid: string
  peerKeyFingerprint: string
  peerName: string | null
  direction: 'inbound' | 'outbound'
  status: ConnectionViewStatus
  agreementVersion: number
  lastSeen: string | null
  lastError: PeerError | null
  eventsSent24h: number
  eventsReceived24h: number
  note: string | null
  createdAt: string
  updatedAt: string
}

/** A peer as `GET /api/federation/peers` shows it. */
export interface PeerView {
  did: string
  name: string | null
  architectDid: string | null
  keys: string[]
  keyFingerprint: string
  multiaddrs: string[]
  protocolVersions: string[]
  lastSeen: string | null
  lastError: PeerError | null
  eventsSent24h: number
  eventsReceived24h: number
  /** The state of the latest connection with this peer, or `none`. */
  state: ConnectionViewStatus | 'none'
  connectionId: string | null
  agreementVersion: number
  /** Messages waiting in the outbox for this peer. */
  queued: number
}

export interface ConnectionServiceComponents {
  libp2p: MeshLibp2p
  /** The mesh key (a function: key rotation will change it). */
  key: () => Ed25519KeyPair
  store: MeshStore
  audit: AuditLog
  policy: PolicyService
  rejected: RejectedLog
  envelopes: EnvelopeVerifier
  /** Human acts: UCAN chains (and, while accepted, interim acts) — local and forwarded. */
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
  onInteraction?: (event: {
    mesh: string
    principal?: string
    outcome: 'accepted' | 'refused'
    reason: string
  }) => void
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
}

/** The local human's signed act, as the HTTP API receives it (`ucan`), and who asked. */
export interface ActInput {
  ucan: string
  /** The session's did. */
  actor: string
}

export interface ConnectInput extends ActInput {
  /** A did:key, or a multiaddr ending in /p2p/<peer id>. */
  target: string
  note?: string
}

const CONN_PREFIX = 'conn/1/'
const TRANSIENT_REMOTE_CODES = new Set<MeshErrorCode>([
  'MESH_RATE_LIMITED',
  'MESH_UNAVAILABLE',
  'MESH_INTERNAL',
  'MESH_CLOCK_SKEW',
])

type Applied = { reply: ConnectAckBody }

/**
 * The federation handshake: the architect's acts from the HTTP API, the wire protocol
 * `/mesh/connect/1.0.0`, the persisted state machine, the outbox that delivers, and
 * the admin views. State changes run one at a time (`#serial`): the handshake is rare
 * and exactness (both sides agree) matters more than parallelism.
 */
export class ConnectionService {
  readonly #c: ConnectionServiceComponents
  readonly #init: ConnectionServiceInit
  readonly #sub: Sublevel<ConnectionRecord>
  readonly #outbox: Outbox
  readonly #limiter: RateLimiter
  readonly #log: Logger
  readonly #now: () => number
  readonly #sendTimeoutMs: number
  readonly #probeMisses = new Map<string, number>()
  readonly #maxSkewMs: number
  readonly #rateLog = new Map<string, { at: number; suppressed: number }>()
  #queue: Promise<unknown> = Promise.resolve()
  #started = false
  #probeTimer: NodeJS.Timeout | undefined
  #shutdown = new AbortController()

  constructor(components: ConnectionServiceComponents, init: ConnectionServiceInit) {
    this.#c = components
    this.#init = init
    this.#sub = components.store.sublevel<ConnectionRecord>('connections')
    this.#log = (components.logger ?? silentLogger()).child({ area: 'federation' })
    this.#now = init.now ?? Date.now
    this.#sendTimeoutMs = init.sendTimeoutMs ?? 10_000
    this.#maxSkewMs = init.maxSkewMs ?? 60_000
    this.#limiter = new RateLimiter(init.rateLimit ?? {})
    this.#outbox = new Outbox({
      store: components.store,
      logger: this.#log,
      now: this.#now,
      ...(init.outbox?.baseDelayMs !== undefined ? { baseDelayMs: init.outbox.baseDelayMs } : {}),
      ...(init.outbox?.maxDelayMs !== undefined ? { maxDelayMs: init.outbox.maxDelayMs } : {}),
      handler: {
        deliver: (item, options) => this.#deliver(item, options),
        isPermanent: (err) => err.kind === 'remote-refused' && !TRANSIENT_REMOTE_CODES.has(err.code),
        fail: (item, err) => this.#failed(item, err),
        retrying: (item, err, delay) => this.#retrying(item, err, delay),
      },
    })
  }

  get outbox(): Outbox {
    return this.#outbox
  }

  get #selfDid(): string {
    return this.#c.key().did
  }

  async start(): Promise<void> {
    if (this.#started) return
    this.#shutdown = new AbortController()
    await this.#c.libp2p.handle(
      MESH_CONNECT_PROTOCOL,
      (stream: Stream, connection: Connection) => this.#onStream(stream, connection),
      { maxInboundStreams: 32, maxOutboundStreams: 32 },
    )
    this.#c.libp2p.addEventListener('peer:connect', this.#onPeerConnect)
    this.#started = true
    await this.#outbox.start()
    const every = this.#init.probeIntervalMs ?? 30_000
    if (every > 0) {
      this.#probeTimer = setInterval(() => {
        this.probe()
          .catch((err: unknown) => {
            this.#log.error({ event: 'federation.probe_failed', err }, 'probing peers failed')
          })
          .then(() => this.exchangeCheckpoints())
          .catch((err: unknown) => {
            this.#log.error(
              { event: 'federation.checkpoint.round_failed', err },
              'checkpoint exchange failed',
            )
          })
      }, every)
      this.#probeTimer.unref()
    }
  }

  async stop(): Promise<void> {
    if (!this.#started) return
    this.#started = false
    clearInterval(this.#probeTimer)
    this.#shutdown.abort(new Error('connection service stopped'))
    this.#c.libp2p.removeEventListener('peer:connect', this.#onPeerConnect)
    await this.#outbox.stop()
    await this.#c.libp2p.unhandle(MESH_CONNECT_PROTOCOL).catch(() => {})
    await this.#queue.catch(() => {})
  }

  // ---------------------------------------------------------------- local acts

  /** The architect asks to connect to `target`. Returns the new connection (outbound pending). */
  async request(input: ConnectInput): Promise<ConnectionView> {
    let peerDid: string | undefined
    return this.#httpAct(
      'connect',
      input.actor,
      () => peerDid ?? null,
      async () => {
        const target = parseTarget(input.target)
        peerDid = target.did
        if (peerDid === this.#selfDid)
          throw new BadRequestError('a mesh cannot connect to itself', { target: input.target })
        const decision = await this.#c.policy.evaluate(peerDid)
        if (!decision.ok) throw decision.error
        const act = await this.#c.acts.local(input.ucan, {
          audience: this.#selfDid,
          act: HUMAN_ACTS.connect,
          subject: peerDid,
        })
        const did = peerDid
        return this.#withAct(act, async () =>
          this.#serial(async () => {
            const now = this.#now()
            const identity = (await this.#c.peers.identityOf(did)) ?? did
            const open = (await this.#connectionsWith(identity)).find(
              (c) => c.status === 'accepted' || (c.status === 'pending' && c.direction === 'outbound'),
            )
            if (open !== undefined) {
              throw new ConflictError(`there is already a ${open.status} connection with this mesh`, {
                reason: open.status === 'accepted' ? 'already-connected' : 'request-pending',
                connectionId: open.id,
              })
            }
            const peer = (await this.#c.peers.get(identity)) ?? newPeerRecord(identity, now)
            if (target.multiaddr !== undefined && !peer.multiaddrs.includes(target.multiaddr)) {
              peer.multiaddrs = [target.multiaddr, ...peer.multiaddrs].slice(0, 16)
            }
            const record: ConnectionRecord = {
              id: connectionId(),
              peerDid: identity,
              peerName: peer.name,
              peerArchitectDid: peer.architectDid,
              direction: 'outbound',
              status: 'pending',
              agreementVersion: peer.agreementVersion + 1,
              requestNonce: randomId(),
              note: input.note ?? null,
              createdAt: iso(now),
              updatedAt: iso(now),
              decidedBy: act.issuer,
              lastError: null,
            }
            const body: ConnectRequestBody = {
              connectionId: record.id,
              nonce: record.requestNonce,
              name: this.#init.name,
              architectDid: this.#init.architectDid,
              multiaddrs: this.#init.multiaddrs().slice(0, 32),
              protocolVersions: this.#init.protocolVersions().slice(0, 32),
              agreementVersion: record.agreementVersion,
              decidedAt: now,
              ...(input.note !== undefined ? { note: input.note } : {}),
            }
            const { operations } = this.#outbox.enqueueOperations({
              peer: identity,
              connectionId: record.id,
              type: CONNECT_MESSAGE.request,
              body,
              proofs: act.forward,
              envelopeId: randomId(),
            })
            await this.#c.audit.append(
              {
                action: 'federation.connection.requested',
                actor: act.issuer,
                subject: record.id,
                details: { peer: identity, direction: 'outbound', agreementVersion: record.agreementVersion },
              },
              {
                with: [this.#putRecord(record), ...this.#c.peers.put(peer), ...operations, ...act.operations],
              },
            )
            this.#outbox.kick(identity, { now: true })
            return this.#view(record, peer)
          }),
        )
      },
    )
  }

  /** The architect accepts an inbound pending request. */
  accept(id: string, input: ActInput): Promise<ConnectionView> {
    return this.#answer(id, input, 'accept')
  }

  /** The architect declines an inbound pending request. */
  decline(id: string, input: ActInput): Promise<ConnectionView> {
    return this.#answer(id, input, 'decline')
  }

  /** The architect ends a connection (accepted, or pending in either direction). */
  async disconnect(id: string, input: ActInput): Promise<ConnectionView> {
    return this.#httpAct(
      'disconnect',
      input.actor,
      () => id,
      async () => {
        const act = await this.#c.acts.local(input.ucan, {
          audience: this.#selfDid,
          act: HUMAN_ACTS.disconnect,
          subject: id,
        })
        return this.#withAct(act, () =>
          this.#serial(async () => {
            const record = await this.#required(id)
            if (record.status !== 'pending' && record.status !== 'accepted') {
              throw new ConflictError(`cannot disconnect a ${record.status} connection`, {
                status: record.status,
              })
            }
            const now = this.#now()
            const next = this.#transition(record, 'disconnected', act.issuer, now)
            const body: ConnectDisconnectBody = {
              connectionId: id,
              agreementVersion: record.agreementVersion,
              architectDid: this.#init.architectDid,
              decidedAt: now,
            }
            const { operations } = this.#outbox.enqueueOperations({
              peer: record.peerDid,
              connectionId: id,
              type: CONNECT_MESSAGE.disconnect,
              body,
              proofs: act.forward,
              envelopeId: randomId(),
            })
            await this.#c.audit.append(
              {
                action: 'federation.connection.disconnected',
                actor: act.issuer,
                subject: id,
                details: { peer: record.peerDid, by: 'local', agreementVersion: record.agreementVersion },
              },
              { with: [this.#putRecord(next), ...operations, ...act.operations] },
            )
            this.#outbox.kick(record.peerDid, { now: true })
            return this.#view(next, await this.#c.peers.get(record.peerDid))
          }),
        )
      },
    )
  }

  async #answer(id: string, input: ActInput, what: 'accept' | 'decline'): Promise<ConnectionView> {
    return this.#httpAct(
      what,
      input.actor,
      () => id,
      async () => {
        const act = await this.#c.acts.local(input.ucan, {
          audience: this.#selfDid,
          act: what === 'accept' ? HUMAN_ACTS.accept : HUMAN_ACTS.decline,
          subject: id,
        })
        return this.#withAct(act, () =>
          this.#serial(async () => {
            const record = await this.#required(id)
            if (record.direction !== 'inbound' || record.status !== 'pending') {
              throw new ConflictError(`only an inbound pending request can be ${what}ed`, {
                direction: record.direction,
                status: record.status,
              })
            }
            const now = this.#now()
            const status = what === 'accept' ? 'accepted' : 'declined'
            const next = this.#transition(record, status, act.issuer, now)
            const peer = (await this.#c.peers.get(record.peerDid)) ?? newPeerRecord(record.peerDid, now)
            if (status === 'accepted')
              peer.agreementVersion = Math.max(peer.agreementVersion, next.agreementVersion)
            const body: ConnectAnswerBody = {
              connectionId: id,
              requestNonce: record.requestNonce,
              agreementVersion: next.agreementVersion,
              architectDid: this.#init.architectDid,
              decidedAt: now,
            }
            const { operations } = this.#outbox.enqueueOperations({
              peer: record.peerDid,
              connectionId: id,
              type: what === 'accept' ? CONNECT_MESSAGE.accept : CONNECT_MESSAGE.decline,
              body,
              proofs: act.forward,
              envelopeId: randomId(),
            })
            await this.#c.audit.append(
              {
                action: `federation.connection.${status}`,
                actor: act.issuer,
                subject: id,
                details: {
                  peer: record.peerDid,
                  direction: 'inbound',
                  agreementVersion: next.agreementVersion,
                },
              },
              {
                with: [this.#putRecord(next), ...this.#c.peers.put(peer), ...operations, ...act.operations],
              },
            )
            this.#outbox.kick(record.peerDid, { now: true })
            return this.#view(next, peer)
          }),
        )
      },
    )
  }

  // ---------------------------------------------------------------- views

  async list(): Promise<ConnectionView[]> {
    const peers = new Map((await this.#c.peers.list()).map((p) => [p.did, p]))
    const out: ConnectionView[] = []
    for await (const record of this.#sub.values({ gte: CONN_PREFIX, lt: `${CONN_PREFIX}~` })) {
      out.push(this.#view(record, peers.get(record.peerDid)))
    }
    return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || a.id.localeCompare(b.id))
  }

  async get(id: string): Promise<ConnectionView> {
    const record = await this.#required(id)
    return this.#view(record, await this.#c.peers.get(record.peerDid))
  }

  async peers(): Promise<PeerView[]> {
    const now = this.#now()
    const latest = new Map<string, ConnectionRecord>()
    for await (const record of this.#sub.values({ gte: CONN_PREFIX, lt: `${CONN_PREFIX}~` })) {
      const seen = latest.get(record.peerDid)
      if (seen === undefined || record.createdAt > seen.createdAt) latest.set(record.peerDid, record)
    }
    const queued = new Map<string, number>()
    for (const item of await this.#outbox.pending()) queued.set(item.peer, (queued.get(item.peer) ?? 0) + 1)
    return (await this.#c.peers.list()).map((peer) => {
      const connection = latest.get(peer.did)
      const current = peer.keys.at(-1)?.did ?? peer.did
      return {
        did: peer.did,
        name: peer.name,
        architectDid: peer.architectDid,
        keys: peer.keys.map((k) => k.did),
        keyFingerprint: keyFingerprint(current),
        multiaddrs: peer.multiaddrs,
        protocolVersions: peer.protocolVersions,
        lastSeen: peer.lastSeen,
        lastError: peer.lastError,
        eventsSent24h: traffic24h(peer.sent, now),
        eventsReceived24h: traffic24h(peer.received, now),
        state: connection === undefined ? 'none' : viewStatus(connection, peer),
        connectionId: connection?.id ?? null,
        agreementVersion: peer.agreementVersion,
        queued: queued.get(peer.did) ?? 0,
      }
    })
  }

  /**
   * Pings every peer with an accepted connection and nothing queued (a queue's own
   * deliveries tell its peer's state), marking it reachable or not.
   */
  async probe(options: AbortOptions = {}): Promise<void> {
    const queued = new Set((await this.#outbox.pending()).map((i) => i.peer))
    const accepted = new Set<string>()
    for await (const record of this.#sub.values({ gte: CONN_PREFIX, lt: `${CONN_PREFIX}~` })) {
      if (record.status === 'accepted' && !queued.has(record.peerDid)) accepted.add(record.peerDid)
    }
    await Promise.all(
      [...accepted].map(async (did) => {
        const peer = await this.#c.peers.get(did)
        if (peer === undefined) return
        let error: DeliveryError | undefined
        try {
          const signal = AbortSignal.any([
            AbortSignal.timeout(this.#sendTimeoutMs),
            this.#shutdown.signal,
            ...(options.signal ? [options.signal] : []),
          ])
          const peerId = await this.#dialable(peer, { signal })
          await this.#c.libp2p.services.ping.ping(peerId, { signal })
        } catch (err) {
          if (this.#shutdown.signal.aborted) return
          error = classifyDeliveryError(err)
        }
        await this.#serial(async () => {
          const current = await this.#c.peers.get(did)
          if (current === undefined) return
          const now = this.#now()
          if (error === undefined) {
            this.#probeMisses.delete(did)
            if (current.unreachableSince === null) return
            current.unreachableSince = null
            current.lastSeen = iso(now)
            this.#log.info({ event: 'federation.peer_reachable', peer: did }, 'peer is reachable again')
          } else {
            if (current.unreachableSince !== null) return
            // One lost ping on a busy host is not an unreachable peer: it takes two in a row.
            const misses = (this.#probeMisses.get(did) ?? 0) + 1
            this.#probeMisses.set(did, misses)
            if (misses < PROBE_MISSES_FOR_DEGRADED) return
            current.unreachableSince = iso(now)
            current.lastError = peerError(error, now)
            this.#log.warn(
              { event: 'federation.peer_unreachable', peer: did, kind: error.kind },
              'peer cannot be reached',
            )
          }
          await this.#c.store.batch(this.#c.peers.put(current))
        })
      }),
    )
  }

  /**
   * Swaps audit checkpoints with every peer that has an accepted connection, when this
   * log changed since the last exchange with it (this run): ours and the one we hold
   * of theirs go out, theirs and the one they hold of ours come back (see
   * audit/checkpoint-gossip.ts). A failed exchange is logged and tried next round.
   * Returns the peers that answered.
   */
  async exchangeCheckpoints(options: AbortOptions = {}): Promise<string[]> {
    const gossip = this.#c.checkpoints
    if (gossip === undefined) return []
    const accepted = new Map<string, ConnectionRecord>()
    for await (const record of this.#sub.values({ gte: CONN_PREFIX, lt: `${CONN_PREFIX}~` })) {
      if (record.status === 'accepted') accepted.set(record.peerDid, record)
    }
    const answered: string[] = []
    await Promise.all(
      [...accepted].map(async ([did, record]) => {
        try {
          const body = await gossip.outgoing(did)
          if (body === undefined) return
          const peer = await this.#c.peers.get(did)
          if (peer === undefined) return
          const signal = AbortSignal.any([
            AbortSignal.timeout(this.#sendTimeoutMs),
            this.#shutdown.signal,
            ...(options.signal ? [options.signal] : []),
          ])
          const keyDid = currentKeyOf(peer)
          const envelope = createEnvelope(this.#c.key(), {
            type: CONNECT_MESSAGE.checkpoint,
            target: keyDid,
            protocol: MESH_CONNECT_PROTOCOL,
            body: { connectionId: record.id, ...body },
            now: this.#now(),
          })
          const peerId = await this.#dialable(peer, { signal })
          const bytes = await exchange(this.#c.libp2p, peerId, encodeEnvelope(envelope), { signal })
          const reply = await this.#c.envelopes.verify(bytes, { remoteDid: keyDid })
          await this.#c.envelopes.release(reply)
          if (reply.type === CONNECT_MESSAGE.error) {
            const error = reply.body as ConnectErrorBody
            throw new MeshError(
              (error.code ?? 'MESH_INTERNAL') as MeshErrorCode,
              String(error.message ?? 'refused'),
            )
          }
          const answer = checkBody<CheckpointExchangeBody & { inReplyTo: string }>(reply.type, reply.body)
          if (reply.type !== CONNECT_MESSAGE.checkpointAck || answer.inReplyTo !== envelope.id) {
            throw new BadRequestError('the reply does not answer this checkpoint', { type: reply.type })
          }
          const { inReplyTo: _, ...theirs } = answer
          await this.#serial(() =>
            gossip.answered(
              did,
              peer.keys.map((k) => k.did),
              body,
              theirs,
            ),
          )
          answered.push(did)
        } catch (err) {
          if (this.#shutdown.signal.aborted) return
          this.#log.warn(
            { event: 'federation.checkpoint.failed', peer: did, err },
            `audit checkpoint exchange failed: ${(err as Error).message}`,
          )
        }
      }),
    )
    return answered
  }

  /** A peer's `audit.checkpoint`: only over an accepted connection; answered with our checkpoint. */
  async #applyCheckpoint(env: Envelope, identity: string | undefined): Promise<CheckpointExchangeBody> {
    const gossip = this.#c.checkpoints
    if (gossip === undefined)
      throw new BadRequestError(`unexpected message type ${env.type}`, { type: env.type })
    const body = checkBody<CheckpointExchangeBody & { connectionId: string }>(env.type, env.body)
    const peer = identity === undefined ? undefined : await this.#c.peers.get(identity)
    const record = await this.#sub.get(CONN_PREFIX + body.connectionId)
    if (
      peer === undefined ||
      record === undefined ||
      record.peerDid !== peer.did ||
      record.status !== 'accepted'
    ) {
      throw new NotConnectedError('audit checkpoints are swapped only over an accepted connection', {
        connectionId: body.connectionId,
      })
    }
    const decision = await this.#c.policy.evaluate(peer.did)
    if (!decision.ok) throw decision.error
    // Remembered, so that a replayed copy (an older, shorter checkpoint) is refused.
    await this.#c.envelopes.commit(env)
    const { connectionId: _, ...theirs } = body
    return this.#serial(() =>
      gossip.incoming(
        peer.did,
        peer.keys.map((k) => k.did),
        theirs,
      ),
    )
  }

  // ---------------------------------------------------------------- key rotation

  /**
   * Tells every peer with an accepted or pending connection that this mesh rotated its
   * key: a `mesh.key-rotated` message carrying `rotations` (the chain from `identity` to
   * the key now signing), queued at the head of each peer's durable outbox so that it
   * reaches the peer before anything else the new key signs, also after an absence.
   * Returns the peers it was queued for.
   */
  async announceKeyRotation(identity: string, rotations: RotationRecord[]): Promise<string[]> {
    const seq = rotations.at(-1)?.seq
    if (seq === undefined) throw new BadRequestError('no rotation to announce')
    return this.#serial(async () => {
      const latest = new Map<string, ConnectionRecord>()
      for await (const record of this.#sub.values({ gte: CONN_PREFIX, lt: `${CONN_PREFIX}~` })) {
        if (record.status !== 'accepted' && record.status !== 'pending') continue
        const seen = latest.get(record.peerDid)
        if (seen === undefined || record.createdAt > seen.createdAt) latest.set(record.peerDid, record)
      }
      const ops: StoreOperation[] = []
      for (const [peer, record] of latest) {
        const body: KeyRotatedBody = { connectionId: record.id, identity, rotations }
        const { operations } = this.#outbox.enqueueOperations(
          {
            peer,
            connectionId: record.id,
            type: CONNECT_MESSAGE.keyRotated,
            body,
            proofs: [],
            envelopeId: randomId(),
          },
          { head: seq },
        )
        ops.push(...operations)
      }
      if (ops.length > 0) await this.#c.store.batch(ops)
      for (const peer of latest.keys()) this.#outbox.kick(peer, { now: true })
      this.#log.info(
        { event: 'federation.key_rotation.announced', peers: [...latest.keys()], seq },
        'key rotation queued for peers',
      )
      return [...latest.keys()]
    })
  }

  /**
   * Refetches a peer's keys — from its manifest at `manifestUrl` when given, and from the
   * DHT records of its known keys (an old key's "moved" record names the new one) — and
   * applies a valid chain that continues from the key held as current. Returns the peer
   * as it now stands; MESH_PEER_UNKNOWN for a did no peer has; MESH_SIGNATURE_MISMATCH
   * when a chain was found but does not continue from what is known.
   */
  async refreshPeer(did: string, options: AbortOptions & { manifestUrl?: string } = {}): Promise<PeerView> {
    const identity = (await this.#c.peers.identityOf(did)) ?? did
    const peer = await this.#c.peers.get(identity)
    if (peer === undefined) throw new MeshError('MESH_PEER_UNKNOWN', 'no peer mesh with this did', { did })
    const signal = AbortSignal.any([
      AbortSignal.timeout(this.#sendTimeoutMs),
      this.#shutdown.signal,
      ...(options.signal ? [options.signal] : []),
    ])
    const found: Array<{ source: string; rotations: RotationRecord[]; multiaddrs: string[] }> = []
    if (options.manifestUrl !== undefined) {
      const manifest = await fetchManifest(options.manifestUrl, signal)
      const rotations = manifest.keyHistory.flatMap((k) => (k.rotation !== undefined ? [k.rotation] : []))
      found.push({ source: 'manifest', rotations, multiaddrs: manifest.endpoints.libp2p })
    }
    for (const key of [...peer.keys].reverse()) {
      try {
        const published = await this.#c.fetchRotations?.(key.did, { signal })
        if (published !== undefined) found.push({ source: 'dht', ...published })
      } catch (err) {
        this.#log.debug(
          { event: 'federation.key_refresh.lookup_failed', did: key.did, err },
          'key lookup failed',
        )
      }
    }
    let applied: string[] = []
    let refusal: MeshError | undefined
    for (const candidate of found) {
      if (candidate.rotations.length === 0) continue
      try {
        applied = await this.#serial(() =>
          this.#applyChain(identity, candidate.rotations, {
            source: candidate.source,
            multiaddrs: candidate.multiaddrs,
          }),
        )
        if (applied.length > 0) break
      } catch (err) {
        if (!(err instanceof MeshError)) throw err
        refusal = err
      }
    }
    if (applied.length === 0 && refusal !== undefined) {
      await this.#recordRefusal(refusal, {
        kind: 'key-refresh',
        peer: identity,
        actor: identity,
        subject: did,
      })
      throw refusal
    }
    this.#log.info(
      {
        event: 'federation.key_refresh',
        peer: identity,
        sources: found.map((f) => f.source),
        added: applied,
      },
      'peer keys refreshed',
    )
    if (applied.length > 0) this.#outbox.kick(identity, { now: true })
    const view = (await this.peers()).find((p) => p.did === identity)
    if (view === undefined) throw new MeshError('MESH_PEER_UNKNOWN', 'no peer mesh with this did', { did })
    return view
  }

  /** An envelope from a key the peer rotated away from is refused: only its current key speaks for it. */
  async #refuseRetiredKey(identity: string, origin: string): Promise<void> {
    const peer = await this.#c.peers.get(identity)
    if (peer === undefined) return
    const current = currentKeyOf(peer)
    if (current !== origin) {
      throw new SignatureMismatchError('the envelope is signed by a key this peer has rotated away from', {
        reason: 'retired-key',
        origin,
        current,
      })
    }
  }

  /** A peer's `mesh.key-rotated`; runs inside `#serial`. */
  async #applyKeyRotation(env: Envelope): Promise<Applied> {
    const body = checkBody<KeyRotatedBody>(env.type, env.body)
    const chain = verifyRotationChain(body.rotations, { identity: body.identity, now: this.#now() })
    if (chain.keys.at(-1) !== env.origin) {
      throw new SignatureMismatchError('the rotation chain does not end at the key that sent it', {
        origin: env.origin,
        last: chain.keys.at(-1),
      })
    }
    let identity: string | undefined
    for (const key of [...chain.keys].reverse()) {
      identity = await this.#c.peers.identityOf(key)
      if (identity !== undefined) break
    }
    if (identity === undefined) {
      throw new MeshError('MESH_PEER_UNKNOWN', 'no key of this rotation chain belongs to a known peer', {
        identity: body.identity,
      })
    }
    const record = await this.#sub.get(CONN_PREFIX + body.connectionId)
    if (record === undefined || record.peerDid !== identity) {
      throw new NotFoundError('no such connection with this mesh', { connectionId: body.connectionId })
    }
    const added = await this.#applyChain(identity, body.rotations, { source: 'announcement', env })
    if (added.length === 0) await this.#c.envelopes.commit(env)
    return { reply: ack(env.id, record, this.#init.name) }
  }

  /**
   * Verifies `rotations` and appends the keys it introduces after the peer's current
   * key, with an audit row, in one batch (with `env`'s seen id when given). Returns the
   * keys added (none for a chain that brings nothing new). Runs inside `#serial`.
   */
  async #applyChain(
    identity: string,
    rotations: RotationRecord[],
    context: { source: string; env?: Envelope; multiaddrs?: string[] },
  ): Promise<string[]> {
    const peer = await this.#c.peers.get(identity)
    if (peer === undefined)
      throw new MeshError('MESH_PEER_UNKNOWN', 'no peer mesh with this did', { identity })
    const chain = verifyRotationChain(rotations, { now: this.#now() })
    const known = peer.keys.map((k) => k.did)
    const added = extendKnownKeys(known, chain)
    if (added.length === 0) return []
    for (const did of added) {
      const owner = await this.#c.peers.identityOf(did)
      if (owner !== undefined && owner !== identity) {
        throw new SignatureMismatchError('a key of this rotation chain belongs to another peer', { did })
      }
    }
    const now = this.#now()
    const from = currentKeyOf(peer)
    peer.keys = [...peer.keys, ...added.map((did) => ({ did, addedAt: iso(now) }))]
    peer.rotations = chain.records
    if (context.multiaddrs !== undefined && context.multiaddrs.length > 0) {
      peer.multiaddrs = validMultiaddrs(context.multiaddrs)
    }
    if (context.env !== undefined) this.#heard(peer, now)
    const to = currentKeyOf(peer)
    await this.#c.audit.append(
      {
        action: 'federation.peer.key_rotated',
        actor: identity,
        subject: to,
        details: { peer: identity, from, to, seq: chain.records.length, source: context.source },
      },
      {
        with: [
          ...this.#c.peers.put(peer),
          ...(context.env !== undefined ? this.#c.envelopes.seenOperations(context.env) : []),
        ],
      },
    )
    this.#log.info(
      { event: 'federation.peer_key_rotated', peer: identity, from, to, source: context.source },
      'peer rotated its key',
    )
    return added
  }

  // ---------------------------------------------------------------- wire: receiving

  #onStream(stream: Stream, connection: Connection): void {
    const remoteDid = didFromPeerId(connection.remotePeer)
    void serveExchange(stream, connection, (bytes) => this.receive(bytes, remoteDid), {
      signal: AbortSignal.timeout(this.#sendTimeoutMs),
      onError: (err) => {
        this.#log.debug({ event: 'federation.stream_failed', peer: remoteDid, err }, 'inbound stream failed')
      },
    })
  }

  /**
   * Handles one message from the libp2p peer `remoteDid` and returns the signed reply
   * (an ack, or an error with the refusal's code). Every refusal is recorded in the
   * rejected log and the audit log; a refused message stores nothing else.
   */
  async receive(bytes: Uint8Array, remoteDid: string): Promise<Uint8Array> {
    let envelope: Envelope | undefined
    let act: GateAct | undefined
    try {
      this.#limiter.consume(remoteDid)
      envelope = await this.#c.envelopes.verify(bytes, { remoteDid })
      const env = envelope
      const known = await this.#c.peers.identityOf(env.origin)
      if (known !== undefined) await this.#refuseRetiredKey(known, env.origin)
      if (env.type === CONNECT_MESSAGE.checkpoint) {
        const reply = await this.#applyCheckpoint(env, known)
        return this.#reply(remoteDid, env.id, CONNECT_MESSAGE.checkpointAck, reply)
      }
      if (env.type === CONNECT_MESSAGE.keyRotated) {
        const result = await this.#serial(() => this.#applyKeyRotation(env))
        return this.#reply(remoteDid, env.id, CONNECT_MESSAGE.ack, result.reply)
      }
      const identity = known ?? env.origin
      if (env.type !== CONNECT_MESSAGE.disconnect) {
        const decision = await this.#c.policy.evaluate(identity)
        if (!decision.ok) throw decision.error
      }
      const result = await this.#serial(async () => {
        const applied = await this.#apply(env, identity, (a) => {
          act = a
        })
        return applied
      })
      this.#interaction(identity, act?.human ?? act?.issuer, 'accepted', env.type)
      return this.#reply(remoteDid, env.id, CONNECT_MESSAGE.ack, result.reply)
    } catch (err) {
      if (envelope !== undefined) await this.#c.envelopes.release(envelope).catch(() => {})
      if (act !== undefined) await this.#c.acts.release(act).catch(() => {})
      const error = err instanceof MeshError ? err : new MeshError('MESH_INTERNAL', 'internal error')
      if (!(err instanceof MeshError)) {
        this.#log.error(
          { event: 'federation.receive_failed', peer: remoteDid, err },
          'handling a message failed',
        )
      }
      const peeked = envelope ?? peekEnvelope(bytes)
      if (error.code === 'MESH_REPLAY' && error.details.reason === 'duplicate') {
        await this.#addState(error, remoteDid, peeked).catch(() => {})
      }
      await this.#recordWireRefusal(error, remoteDid, peeked)
      // Only a message whose signature verified speaks for its mesh; a retried
      // duplicate and a rate limit are not misbehaviour.
      if (
        envelope !== undefined &&
        !(error.code === 'MESH_REPLAY' && error.details.reason === 'duplicate') &&
        error.code !== 'MESH_RATE_LIMITED'
      ) {
        const mesh =
          (await this.#c.peers.identityOf(envelope.origin).catch(() => undefined)) ?? envelope.origin
        this.#interaction(mesh, undefined, 'refused', error.code)
      }
      const inReplyTo = envelope?.id ?? peekEnvelope(bytes)?.id ?? ''
      const body: ConnectErrorBody = {
        inReplyTo: typeof inReplyTo === 'string' ? inReplyTo.slice(0, 64) : '',
        code: error.code,
        message: error.message.slice(0, 1024),
        details: boundDetails(error.details),
      }
      return this.#reply(remoteDid, body.inReplyTo, CONNECT_MESSAGE.error, body)
    }
  }

  /**
   * A duplicate passed the signature check before it was refused, so it is the
   * peer's own message: the refusal tells it the connection's current state, so that
   * a sender whose first copy's ack was lost still learns the outcome.
   */
  async #addState(
    error: MeshError,
    remoteDid: string,
    envelope: { body?: unknown } | undefined,
  ): Promise<void> {
    const connectionId = (envelope?.body as { connectionId?: unknown } | undefined)?.connectionId
    if (typeof connectionId !== 'string' || !/^[A-Za-z0-9_-]{16,64}$/.test(connectionId)) return
    const record = await this.#sub.get(CONN_PREFIX + connectionId)
    const identity = (await this.#c.peers.identityOf(remoteDid)) ?? remoteDid
    if (record === undefined || record.peerDid !== identity) return
    error.details.connectionId = record.id
    error.details.status = record.status
    error.details.agreementVersion = record.agreementVersion
  }

  /** Applies a verified envelope; runs inside `#serial`. */
  async #apply(env: Envelope, identity: string, claimed: (act: GateAct) => void): Promise<Applied> {
    switch (env.type) {
      case CONNECT_MESSAGE.request:
        return this.#applyRequest(env, identity, checkBody<ConnectRequestBody>(env.type, env.body), claimed)
      case CONNECT_MESSAGE.accept:
      case CONNECT_MESSAGE.decline:
        return this.#applyAnswer(env, identity, checkBody<ConnectAnswerBody>(env.type, env.body), claimed)
      case CONNECT_MESSAGE.disconnect:
        return this.#applyDisconnect(
          env,
          identity,
          checkBody<ConnectDisconnectBody>(env.type, env.body),
          claimed,
        )
      default:
        throw new BadRequestError(`unexpected message type ${env.type}`, { type: env.type })
    }
  }

  async #applyRequest(
    env: Envelope,
    identity: string,
    body: ConnectRequestBody,
    claimed: (act: GateAct) => void,
  ): Promise<Applied> {
    const existing = await this.#sub.get(CONN_PREFIX + body.connectionId)
    if (existing !== undefined) {
      if (
        existing.peerDid === identity &&
        existing.direction === 'inbound' &&
        existing.requestNonce === body.nonce
      ) {
        // A retry whose first copy was applied (its ack was lost): answer again.
        await this.#c.envelopes.commit(env)
        return { reply: ack(env.id, existing, this.#init.name) }
      }
      throw new ConflictError('connection id already in use', { reason: 'connection-id-taken' })
    }
    const now = this.#now()
    const peer = (await this.#c.peers.get(identity)) ?? newPeerRecord(identity, now)
    const act = await this.#checkPeerAct(env, peer, body.architectDid, body.decidedAt, {
      act: HUMAN_ACTS.connect,
      subject: this.#selfDid,
      subjects: this.#init.ownDids?.() ?? [],
    })
    claimed(act)
    const connections = await this.#connectionsWith(identity)
    const connected = connections.find((c) => c.status === 'accepted')
    if (connected !== undefined) {
      throw new ConflictError('there is already an accepted connection with this mesh', {
        reason: 'already-connected',
        connectionId: connected.id,
      })
    }
    const max = this.#init.maxPendingInboundPerPeer ?? 1
    if (connections.filter((c) => c.direction === 'inbound' && c.status === 'pending').length >= max) {
      throw new ConflictError('too many pending requests from this mesh', { reason: 'pending-limit', max })
    }
    const decision = await this.#c.policy.evaluate(identity)
    const auto = decision.ok && decision.autoAccept
    const agreementVersion = Math.max(body.agreementVersion, peer.agreementVersion + 1)
    peer.name = body.name
    peer.architectDid = body.architectDid
    peer.multiaddrs = validMultiaddrs(body.multiaddrs)
    peer.protocolVersions = body.protocolVersions
    this.#heard(peer, now)
    if (auto) peer.agreementVersion = Math.max(peer.agreementVersion, agreementVersion)
    const record: ConnectionRecord = {
      id: body.connectionId,
      peerDid: identity,
      peerName: body.name,
      peerArchitectDid: body.architectDid,
      direction: 'inbound',
      status: auto ? 'accepted' : 'pending',
      agreementVersion,
      requestNonce: body.nonce,
      note: body.note ?? null,
      createdAt: iso(now),
      updatedAt: iso(now),
      decidedBy: auto ? null : act.issuer,
      lastError: null,
    }
    const applied = await this.#commitPeerAct(env, record, peer, act, {
      action: auto ? 'federation.connection.accepted' : 'federation.connection.requested',
      actor: identity,
      subject: record.id,
      details: {
        peer: identity,
        direction: 'inbound',
        agreementVersion,
        requestedBy: act.issuer,
        ...(auto ? { autoAccept: true } : {}),
      },
    })
    this.#log.info(
      {
        event: 'federation.request_received',
        peer: identity,
        connectionId: record.id,
        status: record.status,
      },
      'connection request received',
    )
    return applied
  }

  async #applyAnswer(
    env: Envelope,
    identity: string,
    body: ConnectAnswerBody,
    claimed: (act: GateAct) => void,
  ): Promise<Applied> {
    const accept = env.type === CONNECT_MESSAGE.accept
    const record = await this.#sub.get(CONN_PREFIX + body.connectionId)
    if (record === undefined) {
      throw new NotFoundError('no such connection with this mesh', { connectionId: body.connectionId })
    }
    if (record.peerDid !== identity) throw keyNotIntroduced(env.origin, record.id)
    if (record.direction !== 'outbound') {
      throw new ConflictError('an answer is only valid for a request this mesh sent', {
        reason: 'not-outbound',
        connectionId: record.id,
      })
    }
    if (body.requestNonce !== record.requestNonce) {
      throw new ReplayError('the answer does not echo the request nonce', {
        reason: 'request-nonce',
        connectionId: record.id,
      })
    }
    const target: ConnectionStatus = accept ? 'accepted' : 'declined'
    if (record.status === target && (!accept || record.agreementVersion === body.agreementVersion)) {
      await this.#c.envelopes.commit(env)
      return { reply: ack(env.id, record, this.#init.name) }
    }
    if (record.status !== 'pending') {
      throw new ConflictError(`the connection is ${record.status}`, { status: record.status })
    }
    if (body.agreementVersion < record.agreementVersion) {
      throw new BadRequestError('agreement version below the one proposed', {
        proposed: record.agreementVersion,
        got: body.agreementVersion,
      })
    }
    const now = this.#now()
    const peer = (await this.#c.peers.get(identity)) ?? newPeerRecord(identity, now)
    const act = await this.#checkPeerAct(env, peer, body.architectDid, body.decidedAt, {
      act: accept ? HUMAN_ACTS.accept : HUMAN_ACTS.decline,
      subject: record.id,
    })
    claimed(act)
    peer.architectDid = body.architectDid
    this.#heard(peer, now)
    const next = this.#transition(record, target, act.issuer, now)
    next.agreementVersion = body.agreementVersion
    next.peerArchitectDid = body.architectDid
    if (accept) peer.agreementVersion = Math.max(peer.agreementVersion, body.agreementVersion)
    return this.#commitPeerAct(env, next, peer, act, {
      action: `federation.connection.${target}`,
      actor: act.issuer,
      subject: record.id,
      details: {
        peer: identity,
        direction: 'outbound',
        by: 'peer',
        agreementVersion: next.agreementVersion,
      },
    })
  }

  async #applyDisconnect(
    env: Envelope,
    identity: string,
    body: ConnectDisconnectBody,
    claimed: (act: GateAct) => void,
  ): Promise<Applied> {
    const record = await this.#sub.get(CONN_PREFIX + body.connectionId)
    if (record === undefined) {
      throw new NotFoundError('no such connection with this mesh', { connectionId: body.connectionId })
    }
    if (record.peerDid !== identity) throw keyNotIntroduced(env.origin, record.id)
    if (record.status === 'disconnected') {
      await this.#c.envelopes.commit(env)
      return { reply: ack(env.id, record, this.#init.name) }
    }
    if (record.status !== 'pending' && record.status !== 'accepted') {
      throw new ConflictError(`cannot disconnect a ${record.status} connection`, { status: record.status })
    }
    if (body.agreementVersion !== record.agreementVersion) {
      throw new ConflictError('the disconnect names another agreement version', {
        reason: 'agreement-version',
        ours: record.agreementVersion,
        theirs: body.agreementVersion,
      })
    }
    const now = this.#now()
    const peer = (await this.#c.peers.get(identity)) ?? newPeerRecord(identity, now)
    const act = await this.#checkPeerAct(env, peer, body.architectDid, body.decidedAt, {
      act: HUMAN_ACTS.disconnect,
      subject: record.id,
    })
    claimed(act)
    this.#heard(peer, now)
    const next = this.#transition(record, 'disconnected', act.issuer, now)
    return this.#commitPeerAct(env, next, peer, act, {
      action: 'federation.connection.disconnected',
      actor: act.issuer,
      subject: record.id,
      details: { peer: identity, by: 'peer', agreementVersion: record.agreementVersion },
    })
  }

  /**
   * Records a peer's act in one batch with its audit entry: the connection record,
   * the peer, the envelope as seen and the act's own writes; then acknowledges it.
   */
  async #commitPeerAct(
    env: Envelope,
    record: ConnectionRecord,
    peer: PeerRecord,
    act: GateAct,
    entry: AuditEntryInput,
  ): Promise<Applied> {
    await this.#c.audit.append(entry, {
      with: [
        this.#putRecord(record),
        ...this.#c.peers.put(peer),
        ...this.#c.envelopes.seenOperations(env),
        ...act.operations,
      ],
    })
    return { reply: ack(env.id, record, this.#init.name) }
  }

  /**
   * Checks the human act a peer forwarded (`auth.proofs`: the token, then credentials):
   * a UCAN chain rooted in the peer's key with a human the peer vouches for, passing
   * through the architect the peer declared (pinned at first sight); or, while accepted,
   * an interim act signed by that architect. Never signed by a mesh key, addressed to
   * the peer mesh, about `subject`, and valid when the peer carried it out (`decidedAt`).
   */
  async #checkPeerAct(
    env: Envelope,
    peer: PeerRecord,
    architectDid: string,
    decidedAt: number,
    expect: { act: string; subject: string; subjects?: string[] },
  ): Promise<GateAct> {
    const proofs = env.auth?.proofs ?? []
    const token = proofs[0]
    if (token === undefined) {
      throw new MeshError('MESH_NOT_HUMAN_SIGNED', 'the message carries no human act', { type: env.type })
    }
    const peeked = this.#c.acts.peek(token)
    const isMeshKey = async (did: string) =>
      did === env.origin ||
      did === this.#selfDid ||
      peer.keys.some((k) => k.did === did) ||
      (await this.#c.peers.identityOf(did)) !== undefined
    if (await isMeshKey(peeked.issuer)) {
      throw new MeshError('MESH_NOT_HUMAN_SIGNED', 'the act is signed by a mesh key, not by a human', {
        iss: peeked.issuer,
      })
    }
    if (architectDid === env.origin) {
      throw new MeshError('MESH_NOT_HUMAN_SIGNED', 'the declared architect is the mesh key itself', {
        architectDid,
      })
    }
    if (peer.architectDid !== null && peer.architectDid !== architectDid) {
      throw new ForbiddenError('the peer declares another architect than the one it declared before', {
        known: peer.architectDid,
        declared: architectDid,
      })
    }
    const now = this.#now()
    if (decidedAt > now + this.#maxSkewMs) {
      throw new ClockSkewError('decidedAt is in the future', { decidedAt, now })
    }
    if (decidedAt < now - (this.#init.maxDeliveryDelayMs ?? 7 * 24 * 3600_000)) {
      throw new MeshError('MESH_UCAN_INVALID', 'the act was carried out too long ago', { decidedAt, now })
    }
    // Across a key rotation: an act addressed to one of the peer's earlier keys (it
    // waited in the peer's outbox), or naming one of this mesh's keys, still counts.
    const audience = peer.keys.some((k) => k.did === peeked.audience) ? peeked.audience : env.origin
    const claimed = claimedSubject(peeked, expect.act)
    const subject =
      typeof claimed === 'string' && expect.subjects?.includes(claimed) === true ? claimed : expect.subject
    const act = await this.#c.acts.peer(proofs, {
      audience,
      act: expect.act,
      subject,
      architectDid,
      now: decidedAt,
    })
    if (act.format === 'ucan') {
      try {
        if (act.human === undefined || (await isMeshKey(act.human))) {
          throw new MeshError('MESH_NOT_HUMAN_SIGNED', 'the human in the chain is a mesh key', {
            human: act.human ?? null,
          })
        }
        if (!act.issuers.includes(architectDid)) {
          throw new ForbiddenError('the chain does not pass through the architect the peer declared', {
            architectDid,
            issuers: act.issuers,
          })
        }
      } catch (err) {
        await this.#c.acts.release(act)
        throw err
      }
    }
    return act
  }

  // ---------------------------------------------------------------- wire: sending

  async #deliver(item: OutboxItem, options: AbortOptions): Promise<void> {
    const peer = await this.#c.peers.get(item.peer)
    if (peer === undefined) throw new DeliveryError('no-address', 'MESH_PEER_UNKNOWN', 'peer is unknown')
    const keyDid = peer.keys.at(-1)?.did ?? peer.did
    const signal = AbortSignal.any([
      AbortSignal.timeout(this.#sendTimeoutMs),
      ...(options.signal ? [options.signal] : []),
    ])
    const envelope = createEnvelope(this.#c.key(), {
      id: item.envelopeId,
      type: item.type,
      target: keyDid,
      protocol: MESH_CONNECT_PROTOCOL,
      body: item.body,
      auth: { proofs: item.proofs },
      now: this.#now(),
    })
    let replyBytes: Uint8Array
    try {
      // After a failed dial, the addresses we hold may be stale: ask discovery too.
      const refresh = item.lastError !== null && item.lastError.kind !== 'remote-refused'
      const peerId = await this.#dialable(peer, { signal, refresh })
      replyBytes = await exchange(this.#c.libp2p, peerId, encodeEnvelope(envelope), { signal })
    } catch (err) {
      if (options.signal?.aborted === true) throw err
      throw classifyDeliveryError(err)
    }
    let reply: Envelope
    try {
      reply = await this.#c.envelopes.verify(replyBytes, { remoteDid: keyDid })
      await this.#c.envelopes.release(reply)
      const body = checkBody<{ inReplyTo: string }>(reply.type, reply.body)
      if (body.inReplyTo !== item.envelopeId) {
        throw new BadRequestError('the reply answers another message', { inReplyTo: body.inReplyTo })
      }
    } catch (err) {
      const e = err instanceof MeshError ? err : new MeshError('MESH_BAD_REQUEST', String(err))
      throw new DeliveryError('bad-reply', e.code, e.message, e.details)
    }
    let ackBody: Pick<ConnectAckBody, 'status' | 'agreementVersion'> | undefined
    let duplicate = false
    if (reply.type === CONNECT_MESSAGE.error) {
      const body = reply.body as ConnectErrorBody
      // Already applied by the peer (a copy whose ack was lost): delivered. The peer
      // adds the connection's state to such a refusal, so the outcome is not lost.
      if (!(body.code === 'MESH_REPLAY' && body.details.reason === 'duplicate')) {
        throw new DeliveryError('remote-refused', body.code, body.message, body.details)
      }
      duplicate = true
      const { status, agreementVersion } = body.details
      if (
        typeof status === 'string' &&
        (CONNECTION_STATUSES as readonly string[]).includes(status) &&
        typeof agreementVersion === 'number'
      ) {
        ackBody = { status: status as ConnectionStatus, agreementVersion }
      }
    } else {
      ackBody = reply.body as ConnectAckBody
    }
    await this.#serial(async () => {
      const now = this.#now()
      const current = (await this.#c.peers.get(item.peer)) ?? peer
      this.#seen(current, now)
      current.sent = countTraffic(current.sent, now)
      current.lastError = null
      if (reply.type === CONNECT_MESSAGE.ack) current.name = (reply.body as ConnectAckBody).name
      const record = await this.#sub.get(CONN_PREFIX + item.connectionId)
      const ops: StoreOperation[] = [...this.#outbox.removeOperations(item)]
      let entry: AuditEntryInput | undefined
      if (record !== undefined) {
        let next: ConnectionRecord = { ...record, lastError: null, peerName: current.name ?? record.peerName }
        if (
          ackBody !== undefined &&
          item.type === CONNECT_MESSAGE.request &&
          record.direction === 'outbound' &&
          record.status === 'pending'
        ) {
          next.agreementVersion = Math.max(record.agreementVersion, ackBody.agreementVersion)
          if (ackBody.status === 'accepted') {
            next = this.#transition(next, 'accepted', null, now)
            current.agreementVersion = Math.max(current.agreementVersion, next.agreementVersion)
            entry = {
              action: 'federation.connection.accepted',
              actor: item.peer,
              subject: record.id,
              details: {
                peer: item.peer,
                direction: 'outbound',
                by: 'peer',
                autoAccept: true,
                agreementVersion: next.agreementVersion,
              },
            }
          }
        }
        ops.push(this.#putRecord(next))
      }
      ops.push(...this.#c.peers.put(current))
      if (entry !== undefined) await this.#c.audit.append(entry, { with: ops })
      else await this.#c.store.batch(ops)
    })
    this.#log.info(
      {
        event: 'federation.send.success',
        peer: item.peer,
        type: item.type,
        connectionId: item.connectionId,
        attempts: item.attempts + 1,
        duplicate,
        ...(ackBody ? { status: ackBody.status } : {}),
      },
      'federation message delivered',
    )
  }

  async #failed(item: OutboxItem, err: DeliveryError): Promise<void> {
    this.#log.warn(
      {
        event: 'federation.send.failed',
        peer: item.peer,
        type: item.type,
        connectionId: item.connectionId,
        kind: err.kind,
        code: err.code,
        permanent: true,
        attempts: item.attempts + 1,
      },
      `federation message refused: ${err.message}`,
    )
    await this.#serial(async () => {
      const now = this.#now()
      const error = peerError(err, now)
      const ops: StoreOperation[] = [...this.#outbox.removeOperations(item)]
      const peer = await this.#c.peers.get(item.peer)
      if (peer !== undefined) {
        peer.lastError = error
        this.#seen(peer, now)
        ops.push(...this.#c.peers.put(peer))
      }
      const record = await this.#sub.get(CONN_PREFIX + item.connectionId)
      if (record === undefined) {
        await this.#c.store.batch(ops)
        return
      }
      if (
        item.type === CONNECT_MESSAGE.request &&
        record.direction === 'outbound' &&
        record.status === 'pending'
      ) {
        // The peer refused the request itself: the request is over, as if declined.
        const next = { ...this.#transition(record, 'declined', null, now), lastError: error }
        await this.#c.audit.append(
          {
            action: 'federation.connection.refused',
            actor: item.peer,
            subject: record.id,
            details: { peer: item.peer, code: err.code, reason: err.message.slice(0, 256) },
          },
          { with: [...ops, this.#putRecord(next)] },
        )
        return
      }
      await this.#c.store.batch([...ops, this.#putRecord({ ...record, lastError: error })])
    })
  }

  async #retrying(item: OutboxItem, err: DeliveryError, delayMs: number): Promise<void> {
    this.#log.warn(
      {
        event: 'federation.send.failed',
        peer: item.peer,
        type: item.type,
        connectionId: item.connectionId,
        kind: err.kind,
        code: err.code,
        permanent: false,
        attempts: item.attempts,
        retryInMs: delayMs,
      },
      `federation message not delivered: ${err.message}`,
    )
    await this.#serial(async () => {
      const now = this.#now()
      const error = peerError(err, now)
      const peer = await this.#c.peers.get(item.peer)
      const ops: StoreOperation[] = []
      if (peer !== undefined) {
        peer.lastError = error
        if (err.kind !== 'remote-refused' && err.kind !== 'bad-reply') peer.unreachableSince ??= iso(now)
        ops.push(...this.#c.peers.put(peer))
      }
      const record = await this.#sub.get(CONN_PREFIX + item.connectionId)
      if (record !== undefined) ops.push(this.#putRecord({ ...record, lastError: error }))
      if (ops.length > 0) await this.#c.store.batch(ops)
    })
  }

  /** The peer's PeerId, with every address we know of it in libp2p's peer store; MESH no-address otherwise. */
  async #dialable(peer: PeerRecord, options: AbortOptions & { refresh?: boolean }): Promise<PeerId> {
    const keyDid = peer.keys.at(-1)?.did ?? peer.did
    const peerId = peerIdFromDid(keyDid)
    if (this.#c.libp2p.getConnections(peerId).length > 0) return peerId
    const addrs = new Set(peer.multiaddrs)
    // Discovery (possibly a DHT query) only when what the peer told us is not enough.
    if (addrs.size === 0 || options.refresh === true) {
      try {
        // A third of the attempt at most: the known addresses still get their dial.
        const signal = AbortSignal.any([
          AbortSignal.timeout(Math.ceil(this.#sendTimeoutMs / 3)),
          ...(options.signal ? [options.signal] : []),
        ])
        const resolved = await this.#c.resolvePeer?.(keyDid, { signal })
        for (const a of resolved?.multiaddrs ?? []) addrs.add(a)
      } catch (err) {
        this.#log.debug({ event: 'federation.resolve_failed', peer: peer.did, err }, 'resolving peer failed')
      }
    }
    const multiaddrs: Multiaddr[] = []
    for (const a of addrs) {
      try {
        const ma = multiaddr(a)
        // the peer store files addresses without the /p2p/ part
        multiaddrs.push(ma.getComponents().some((c) => c.name === 'p2p') ? ma.decapsulateCode(421) : ma)
      } catch {
        // an address the peer sent that does not parse is skipped
      }
    }
    if (multiaddrs.length === 0) {
      let known = 0
      try {
        known = (await this.#c.libp2p.peerStore.get(peerId)).addresses.length
      } catch {
        known = 0
      }
      if (known === 0) {
        this.#log.warn(
          { event: 'federation.peer_discovery_failed', peer: peer.did },
          'no address known for the peer, and discovery found none',
        )
        throw new DeliveryError('no-address', 'MESH_UNAVAILABLE', 'no address known for the peer')
      }
      return peerId
    }
    await this.#c.libp2p.peerStore.merge(peerId, { multiaddrs })
    return peerId
  }

  readonly #onPeerConnect = (event: CustomEvent<PeerId>): void => {
    const did = didFromPeerId(event.detail)
    void (async () => {
      const identity = (await this.#c.peers.identityOf(did)) ?? did
      this.#outbox.kick(identity, { now: true })
      await this.#serial(async () => {
        const peer = await this.#c.peers.get(identity)
        if (peer === undefined || peer.unreachableSince === null) return
        peer.unreachableSince = null
        await this.#c.store.batch(this.#c.peers.put(peer))
      })
    })().catch((err: unknown) => {
      this.#log.error(
        { event: 'federation.peer_connect_failed', peer: did, err },
        'handling peer:connect failed',
      )
    })
  }

  // ---------------------------------------------------------------- refusals

  async #httpAct<T>(
    kind: string,
    actor: string,
    subject: () => string | null,
    run: () => Promise<T>,
  ): Promise<T> {
    try {
      return await run()
    } catch (err) {
      if (err instanceof MeshError) {
        const peer = kind === 'connect' ? subject() : null
        await this.#recordRefusal(err, {
          kind: `http.${kind}`,
          ...(peer !== null ? { peer } : {}),
          actor,
          subject: subject(),
        }).catch((e: unknown) => {
          this.#log.error({ event: 'federation.refusal_record_failed', err: e }, 'recording a refusal failed')
        })
      }
      throw err
    }
  }

  async #withAct<T>(act: GateAct, run: () => Promise<T>): Promise<T> {
    try {
      return await run()
    } catch (err) {
      await this.#c.acts.release(act)
      throw err
    }
  }

  #interaction(
    mesh: string,
    principal: string | undefined,
    outcome: 'accepted' | 'refused',
    reason: string,
  ): void {
    try {
      this.#c.onInteraction?.({ mesh, ...(principal !== undefined ? { principal } : {}), outcome, reason })
    } catch (err) {
      this.#log.error({ event: 'federation.interaction_hook_failed', err }, 'the interaction hook threw')
    }
  }

  async #recordWireRefusal(
    err: MeshError,
    remoteDid: string,
    envelope: { id?: unknown; type?: unknown; body?: unknown } | undefined,
  ): Promise<void> {
    if (err.code === 'MESH_RATE_LIMITED') {
      const now = this.#now()
      const last = this.#rateLog.get(remoteDid)
      if (last !== undefined && now - last.at < (this.#init.rateLimitLogIntervalMs ?? 1000)) {
        last.suppressed++
        return
      }
      if (this.#rateLog.size > 10_000) this.#rateLog.clear()
      this.#rateLog.set(remoteDid, { at: now, suppressed: 0 })
      if (last !== undefined && last.suppressed > 0) err.details.suppressedSinceLast = last.suppressed
    }
    const type = typeof envelope?.type === 'string' ? envelope.type : 'envelope'
    const body = envelope?.body as { connectionId?: unknown } | undefined
    const connectionId = typeof body?.connectionId === 'string' ? body.connectionId : null
    await this.#recordRefusal(err, {
      kind: type,
      peer: remoteDid,
      actor: remoteDid,
      subject: connectionId ?? (typeof envelope?.id === 'string' ? envelope.id : null),
    }).catch((e: unknown) => {
      this.#log.error({ event: 'federation.refusal_record_failed', err: e }, 'recording a refusal failed')
    })
  }

  async #recordRefusal(
    err: MeshError,
    context: { kind: string; peer?: string; actor: string; subject: string | null },
  ): Promise<void> {
    await this.#c.rejected.record(
      rejectionFrom(err, {
        kind: context.kind,
        ...(context.peer !== undefined ? { peer: context.peer } : {}),
      }),
    )
    await this.#c.audit.append({
      action: 'federation.refused',
      actor: context.actor,
      ...(context.subject !== null ? { subject: context.subject.slice(0, 512) } : {}),
      details: {
        kind: context.kind,
        code: err.code,
        reason: err.message.slice(0, 512),
        ...(context.peer !== undefined ? { peer: context.peer } : {}),
        details: boundDetails(err.details),
      },
    })
  }

  // ---------------------------------------------------------------- helpers

  #reply(target: string, inReplyTo: string, type: string, body: Record<string, unknown>): Uint8Array {
    return encodeEnvelope(
      createEnvelope(this.#c.key(), {
        type,
        target,
        protocol: MESH_CONNECT_PROTOCOL,
        body: { ...body, inReplyTo },
      }),
    )
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn)
    this.#queue = run.catch(() => {})
    return run
  }

  async #required(id: string): Promise<ConnectionRecord> {
    if (!/^[A-Za-z0-9_-]{16,64}$/.test(id)) throw new NotFoundError('no such connection', { id })
    const record = await this.#sub.get(CONN_PREFIX + id)
    if (record === undefined) throw new NotFoundError('no such connection', { id })
    return record
  }

  async #connectionsWith(peerDid: string): Promise<ConnectionRecord[]> {
    const out: ConnectionRecord[] = []
    for await (const record of this.#sub.values({ gte: CONN_PREFIX, lt: `${CONN_PREFIX}~` })) {
      if (record.peerDid === peerDid) out.push(record)
    }
    return out
  }

  #transition(
    record: ConnectionRecord,
    status: ConnectionStatus,
    decidedBy: string | null,
    now: number,
  ): ConnectionRecord {
    return { ...record, status, decidedBy, updatedAt: iso(now), lastError: null }
  }

  /** The peer answered or wrote: it is reachable. */
  #seen(peer: PeerRecord, now: number): void {
    peer.lastSeen = iso(now)
    peer.unreachableSince = null
  }

  /** A message from the peer was applied. */
  #heard(peer: PeerRecord, now: number): void {
    this.#seen(peer, now)
    peer.received = countTraffic(peer.received, now)
  }

  #putRecord(record: ConnectionRecord): StoreOperation {
    return { type: 'put', sublevel: this.#sub, key: CONN_PREFIX + record.id, value: record } as StoreOperation
  }

  #view(record: ConnectionRecord, peer: PeerRecord | undefined): ConnectionView {
    const now = this.#now()
    const keyDid = peer === undefined ? record.peerDid : currentKeyOf(peer)
    return {
      id: record.id,
      peerDid: record.peerDid,
      peerKeyDid: keyDid,
      peerKeyFingerprint: keyFingerprint(keyDid),
      peerName: record.peerName ?? peer?.name ?? null,
      direction: record.direction,
      status: viewStatus(record, peer),
      agreementVersion: record.agreementVersion,
      lastSeen: peer?.lastSeen ?? null,
      lastError: record.lastError ?? peer?.lastError ?? null,
      eventsSent24h: peer === undefined ? 0 : traffic24h(peer.sent, now),
      eventsReceived24h: peer === undefined ? 0 : traffic24h(peer.received, now),
      note: record.note,
      createdAt: record.createdAt,
      updatedAt: record.updatedAt,
    }
  }
}

function viewStatus(record: ConnectionRecord, peer: PeerRecord | undefined): ConnectionViewStatus {
  return record.status === 'accepted' && peer?.unreachableSince != null ? 'degraded' : record.status
}

function ack(inReplyTo: string, record: ConnectionRecord, name: string): ConnectAckBody {
  return {
    inReplyTo,
    name,
    connectionId: record.id,
    status: record.status,
    agreementVersion: record.agreementVersion,
  }
}

async function fetchManifest(url: string, signal: AbortSignal): Promise<MeshManifest> {
  let target: URL
  try {
    target = new URL(url)
  } catch {
    throw new BadRequestError('manifestUrl is not a URL', { manifestUrl: url })
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw new BadRequestError('manifestUrl is http or https', { manifestUrl: url })
  }
  if (!target.pathname.endsWith('.json')) target = new URL('/.well-known/mesh-manifest.json', target)
  let manifest: MeshManifest
  try {
    const res = await fetch(target, { signal })
    if (!res.ok) throw new Error(`HTTP ${res.status}`)
    manifest = (await res.json()) as MeshManifest
  } catch (err) {
    throw new MeshError('MESH_UNAVAILABLE', `cannot fetch the peer's manifest: ${(err as Error).message}`, {
      url: target.toString(),
    })
  }
  if (
    typeof manifest !== 'object' ||
    manifest === null ||
    !Array.isArray(manifest.keyHistory) ||
    !verifyManifest(manifest)
  ) {
    throw new SignatureMismatchError('the manifest is not signed by the key it names', {
      url: target.toString(),
    })
  }
  return manifest
}

function keyNotIntroduced(origin: string, connectionId: string): MeshError {
  return new SignatureMismatchError(
    'the connection belongs to a mesh whose key chain does not introduce this key',
    {
      origin,
      connectionId,
      reason: 'key-not-introduced',
    },
  )
}

function peerError(err: DeliveryError, now: number): PeerError {
  return { kind: err.kind, code: err.code, message: err.message.slice(0, 512), at: iso(now) }
}

function iso(ms: number): string {
  return new Date(ms).toISOString()
}

function randomId(): string {
  return randomBytes(16).toString('base64url')
}

// Hex, so that an id never starts with '-' and reads as an option on a command line.
function connectionId(): string {
  return randomBytes(16).toString('hex')
}

/** A did:key target, or a multiaddr ending in /p2p/<peer id> (its did is the PeerId's). */
export function parseTarget(target: string): { did: string; multiaddr?: string } {
  if (target.startsWith('did:')) {
    if (!isDidKey(target)) throw new BadRequestError('target is not an Ed25519 did:key', { target })
    return { did: target }
  }
  let ma: Multiaddr
  try {
    ma = multiaddr(target)
  } catch {
    throw new BadRequestError('target is neither a did:key nor a multiaddr', { target })
  }
  const p2p = ma.getComponents().findLast((c) => c.name === 'p2p')
  if (p2p?.value === undefined) {
    throw new BadRequestError('a multiaddr target must end in /p2p/<peer id>', { target })
  }
  let did: string
  try {
    did = didFromPeerId(p2p.value)
  } catch {
    throw new BadRequestError('the /p2p/ part of the target is not an Ed25519 peer id', { target })
  }
  return { did, multiaddr: target }
}

function validMultiaddrs(list: string[]): string[] {
  const out: string[] = []
  for (const a of list.slice(0, 16)) {
    try {
      multiaddr(a)
      out.push(a)
    } catch {
      // skipped: a peer's bad address must not break its record
    }
  }
  return out
}

/** Reads `id`, `type` and `body` from bytes that did not verify, for the refusal record. */
function peekEnvelope(bytes: Uint8Array): { id?: unknown; type?: unknown; body?: unknown } | undefined {
  if (bytes.byteLength > 64 * 1024) return undefined
  try {
    const value = JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

function boundDetails(details: Record<string, unknown>): Record<string, unknown> {
  try {
    const text = JSON.stringify(details)
    if (text === undefined) return {}
    if (text.length <= 2048) return JSON.parse(text) as Record<string, unknown>
    return { truncated: true }
  } catch {
    return { truncated: true }
  }
}
