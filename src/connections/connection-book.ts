import { randomBytes } from 'node:crypto'
import { multiaddr } from '@multiformats/multiaddr'
import { NotFoundError } from '../errors.ts'
import type { MeshStore, StoreOperation, Sublevel } from '../store/index.ts'
import type { ConnectAckBody, ConnectionStatus, DeliveryError } from './connect-protocol.ts'
import {
  countTraffic,
  currentKeyOf,
  keyFingerprint,
  type PeerBook,
  type PeerError,
  type PeerRecord,
  traffic24h,
} from './peers.ts'

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
 * local:    accepted ⇄ accepted + paused               (local pause / resume; the peer is not told)
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
  /**
   * Set while an accepted connection is paused (a local human's act): nothing syncs
   * with the peer and its outbox holds. Records from before pausing existed lack it.
   */
  paused?: { by: string; at: string } | null
}

export type ConnectionViewStatus = ConnectionStatus | 'degraded' | 'paused'

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

/** What applying a peer's message yields: the ack to sign and send back. */
export type Applied = { reply: ConnectAckBody }

export interface ConnectionBookComponents {
  store: MeshStore
  peers: Pick<PeerBook, 'get' | 'list'>
}

export interface ConnectionBookInit {
  now?: () => number
}

const CONN_PREFIX = 'conn/1/'
const ID_PATTERN = /^[A-Za-z0-9_-]{16,64}$/

/**
 * The connection records (the `connections` sublevel), their views, and the one queue
 * every state change runs in (`serial`): the handshake is rare and exactness (both
 * sides agree) matters more than parallelism. Writes are store operations for the
 * caller's batch, so that a transition and its audit row land together.
 */
export class ConnectionBook {
  readonly #c: ConnectionBookComponents
  readonly #sub: Sublevel<ConnectionRecord>
  readonly #now: () => number
  #queue: Promise<unknown> = Promise.resolve()

  constructor(components: ConnectionBookComponents, init: ConnectionBookInit = {}) {
    this.#c = components
    this.#sub = components.store.sublevel<ConnectionRecord>('connections')
    this.#now = init.now ?? Date.now
  }

  /** Runs `fn` after every state change queued before it. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn)
    this.#queue = run.catch(() => {})
    return run
  }

  /** Resolves once the queued state changes are done (for stop). */
  async idle(): Promise<void> {
    await this.#queue.catch(() => {})
  }

  async get(id: string): Promise<ConnectionRecord | undefined> {
    return this.#sub.get(CONN_PREFIX + id)
  }

  /** The record; MESH_NOT_FOUND for an id that is malformed or unknown. */
  async required(id: string): Promise<ConnectionRecord> {
    if (!ID_PATTERN.test(id)) throw new NotFoundError('no such connection', { id })
    const record = await this.get(id)
    if (record === undefined) throw new NotFoundError('no such connection', { id })
    return record
  }

  async *records(): AsyncGenerator<ConnectionRecord> {
    yield* this.#sub.values({ gte: CONN_PREFIX, lt: `${CONN_PREFIX}~` })
  }

  async connectionsWith(peerDid: string): Promise<ConnectionRecord[]> {
    const out: ConnectionRecord[] = []
    for await (const record of this.records()) if (record.peerDid === peerDid) out.push(record)
    return out
  }

  /** Whether the peer's accepted connection is paused: nothing syncs, its outbox holds. */
  async isPaused(peerDid: string): Promise<boolean> {
    for (const record of await this.connectionsWith(peerDid)) if (isPaused(record)) return true
    return false
  }

  /** The newest record per peer among those `keep` says yes to. */
  async latestPerPeer(keep: (record: ConnectionRecord) => boolean = () => true) {
    const latest = new Map<string, ConnectionRecord>()
    for await (const record of this.records()) {
      if (!keep(record)) continue
      const seen = latest.get(record.peerDid)
      if (seen === undefined || record.createdAt > seen.createdAt) latest.set(record.peerDid, record)
    }
    return latest
  }

  putRecord(record: ConnectionRecord): StoreOperation {
    return { type: 'put', sublevel: this.#sub, key: CONN_PREFIX + record.id, value: record } as StoreOperation
  }

  async list(): Promise<ConnectionView[]> {
    const peers = new Map((await this.#c.peers.list()).map((p) => [p.did, p]))
    const out: ConnectionView[] = []
    for await (const record of this.records()) out.push(this.view(record, peers.get(record.peerDid)))
    return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || a.id.localeCompare(b.id))
  }

  async getView(id: string): Promise<ConnectionView> {
    const record = await this.required(id)
    return this.view(record, await this.#c.peers.get(record.peerDid))
  }

  /** Every peer with the state of its latest connection; `queued` counts its outbox items. */
  async peerViews(queued: Map<string, number>): Promise<PeerView[]> {
    const now = this.#now()
    const latest = await this.latestPerPeer()
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

  view(record: ConnectionRecord, peer: PeerRecord | undefined): ConnectionView {
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

/** The clock and the time one exchange with a peer may take, shared by the pieces that talk to peers. */
export interface Timing {
  now: () => number
  /** One attempt (dial + exchange) at most this long; default 10 000 ms. */
  sendTimeoutMs: number
}

export function timing(init: { now?: () => number; sendTimeoutMs?: number }): Timing {
  return { now: init.now ?? Date.now, sendTimeoutMs: init.sendTimeoutMs ?? 10_000 }
}

/** `record` moved to `status` by `decidedBy` at `now` (its last error cleared). */
export function transition(
  record: ConnectionRecord,
  status: ConnectionStatus,
  decidedBy: string | null,
  now: number,
): ConnectionRecord {
  // A pause outlives nothing but the accepted state.
  const paused = status === 'accepted' ? (record.paused ?? null) : null
  return { ...record, status, decidedBy, updatedAt: iso(now), lastError: null, paused }
}

export function viewStatus(record: ConnectionRecord, peer: PeerRecord | undefined): ConnectionViewStatus {
  if (isPaused(record)) return 'paused'
  return record.status === 'accepted' && peer?.unreachableSince != null ? 'degraded' : record.status
}

/** An accepted connection a local human paused. */
export function isPaused(record: ConnectionRecord): boolean {
  return record.status === 'accepted' && record.paused != null
}

/** An accepted connection that is not paused: the peer syncs, is probed, swaps checkpoints. */
export function isLive(record: ConnectionRecord): boolean {
  return record.status === 'accepted' && record.paused == null
}

export function ack(inReplyTo: string, record: ConnectionRecord, name: string): ConnectAckBody {
  return {
    inReplyTo,
    name,
    connectionId: record.id,
    status: record.status,
    agreementVersion: record.agreementVersion,
  }
}

/** The peer answered or wrote: it is reachable. */
export function seen(peer: PeerRecord, now: number): void {
  peer.lastSeen = iso(now)
  peer.unreachableSince = null
}

/** A message from the peer was applied. */
export function heard(peer: PeerRecord, now: number): void {
  seen(peer, now)
  peer.received = countTraffic(peer.received, now)
}

export function peerError(err: DeliveryError, now: number): PeerError {
  return { kind: err.kind, code: err.code, message: err.message.slice(0, 512), at: iso(now) }
}

export function iso(ms: number): string {
  return new Date(ms).toISOString()
}

export function randomId(): string {
  return randomBytes(16).toString('base64url')
}

// Hex, so that an id never starts with '-' and reads as an option on a command line.
export function newConnectionId(): string {
  return randomBytes(16).toString('hex')
}

export function isConnectionId(id: unknown): id is string {
  return typeof id === 'string' && ID_PATTERN.test(id)
}

export function validMultiaddrs(list: string[]): string[] {
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

/** An error's details as they may go on the wire or in a row: JSON, at most 2 KiB. */
export function boundDetails(details: Record<string, unknown>): Record<string, unknown> {
  try {
    const text = JSON.stringify(details)
    if (text === undefined) return {}
    if (text.length <= 2048) return JSON.parse(text) as Record<string, unknown>
    return { truncated: true }
  } catch {
    return { truncated: true }
  }
}
