import type { AbortOptions, PeerId } from '@libp2p/interface'
import type { AuditEntryInput, AuditLog } from '../audit/index.ts'
import { BadRequestError, MeshError, type MeshErrorCode } from '../errors.ts'
import { didFromPeerId, type Ed25519KeyPair, peerIdFromDid } from '../identity/index.ts'
import type { Logger } from '../log.ts'
import { addDialAddresses, type MeshLibp2p } from '../p2p/index.ts'
import type { MeshStore, StoreOperation } from '../store/index.ts'
import {
  CONNECT_MESSAGE,
  CONNECTION_STATUSES,
  type ConnectAckBody,
  type ConnectErrorBody,
  type ConnectionStatus,
  checkBody,
  classifyDeliveryError,
  DeliveryError,
  exchange,
  MESH_CONNECT_PROTOCOL,
} from './connect-protocol.ts'
import {
  type ConnectionBook,
  type ConnectionRecord,
  iso,
  peerError,
  seen,
  type Timing,
  timing,
  transition,
} from './connection-book.ts'
import { createEnvelope, type Envelope, type EnvelopeVerifier, encodeEnvelope } from './envelope.ts'
// phase-1 HTTP federation (SPEC §12)
import type { HttpRoute } from './http-federation.ts'
import { type MailboxPark, parkAtRelay } from './mailbox-park.ts' // store and forward (SPEC §10)
import { Outbox, type OutboxItem } from './outbox.ts'
import { countTraffic, type PeerBook, type PeerRecord } from './peers.ts'

export interface DeliveryComponents {
  /** The host (a function: a key rotation restarts the service on a new host). */
  libp2p: () => MeshLibp2p
  key: () => Ed25519KeyPair
  store: MeshStore
  peers: Pick<PeerBook, 'get' | 'identityOf' | 'put'>
  book: Pick<ConnectionBook, 'serial' | 'get' | 'putRecord' | 'isPaused'>
  envelopes: Pick<EnvelopeVerifier, 'verify' | 'release'>
  audit: Pick<AuditLog, 'append'>
  logger: Logger
  /** Aborted when the service stops. */
  shutdown: () => AbortSignal
  /** Addresses of a peer beyond what it told us, e.g. its DHT record. */
  resolvePeer?: (did: string, options: AbortOptions) => Promise<{ multiaddrs: string[] } | undefined>
  // phase-1 HTTP federation (SPEC §12): the fallback when libp2p cannot reach a peer
  httpRoute?: Pick<HttpRoute, 'send'>
  // store and forward (SPEC §10): the mailbox at a relay the peer names (a getter: wired later)
  mailbox?: () => MailboxPark | undefined
}

export interface DeliveryInit {
  outbox?: { baseDelayMs?: number; maxDelayMs?: number }
  /** One delivery attempt (dial + exchange) at most this long; default 10 000 ms. */
  sendTimeoutMs?: number
  now?: () => number
}

const TRANSIENT_REMOTE_CODES = new Set<MeshErrorCode>([
  'MESH_RATE_LIMITED',
  'MESH_UNAVAILABLE',
  'MESH_INTERNAL',
  'MESH_CLOCK_SKEW',
])

/**
 * Getting messages to peers: the durable outbox and what each delivery's outcome
 * changes (the peer's reachability, the connection's error, an outbound request
 * accepted or refused), the dial step, and the outbox's kick when a peer connects.
 */
export class Delivery {
  readonly #c: DeliveryComponents
  readonly #outbox: Outbox
  readonly #t: Timing

  constructor(components: DeliveryComponents, init: DeliveryInit = {}) {
    this.#c = components
    this.#t = timing(init)
    this.#outbox = new Outbox({
      store: components.store,
      logger: components.logger,
      now: this.#t.now,
      ...(init.outbox?.baseDelayMs !== undefined ? { baseDelayMs: init.outbox.baseDelayMs } : {}),
      ...(init.outbox?.maxDelayMs !== undefined ? { maxDelayMs: init.outbox.maxDelayMs } : {}),
      held: (peer) => components.book.isPaused(peer),
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

  async start(): Promise<void> {
    this.#c.libp2p().addEventListener('peer:connect', this.#onPeerConnect)
    await this.#outbox.start()
  }

  async stop(): Promise<void> {
    this.#c.libp2p().removeEventListener('peer:connect', this.#onPeerConnect)
    await this.#outbox.stop()
  }

  /** Outbox items waiting, per peer. */
  async queued(): Promise<Map<string, number>> {
    const queued = new Map<string, number>()
    for (const item of await this.#outbox.pending()) queued.set(item.peer, (queued.get(item.peer) ?? 0) + 1)
    return queued
  }

  /** The peer's PeerId, with every address we know of it in libp2p's peer store; MESH no-address otherwise. */
  async dialable(peer: PeerRecord, options: AbortOptions & { refresh?: boolean }): Promise<PeerId> {
    const keyDid = peer.keys.at(-1)?.did ?? peer.did
    const peerId = peerIdFromDid(keyDid)
    if (this.#c.libp2p().getConnections(peerId).length > 0) return peerId
    const addrs = new Set(peer.multiaddrs)
    // Discovery (possibly a DHT query) only when what the peer told us is not enough.
    if (addrs.size === 0 || options.refresh === true) {
      try {
        // A third of the attempt at most: the known addresses still get their dial.
        const signal = AbortSignal.any([
          AbortSignal.timeout(Math.ceil(this.#t.sendTimeoutMs / 3)),
          ...(options.signal ? [options.signal] : []),
        ])
        const resolved = await this.#c.resolvePeer?.(keyDid, { signal })
        for (const a of resolved?.multiaddrs ?? []) addrs.add(a)
      } catch (err) {
        this.#c.logger.debug(
          { event: 'federation.resolve_failed', peer: peer.did, err },
          'resolving peer failed',
        )
      }
    }
    if (!(await addDialAddresses(this.#c.libp2p().peerStore, peerId, addrs))) {
      this.#c.logger.warn(
        { event: 'federation.peer_discovery_failed', peer: peer.did },
        'no address known for the peer, and discovery found none',
      )
      throw new DeliveryError('no-address', 'MESH_UNAVAILABLE', 'no address known for the peer')
    }
    return peerId
  }

  async #deliver(item: OutboxItem, options: AbortOptions): Promise<void> {
    const peer = await this.#c.peers.get(item.peer)
    if (peer === undefined) throw new DeliveryError('no-address', 'MESH_PEER_UNKNOWN', 'peer is unknown')
    const keyDid = peer.keys.at(-1)?.did ?? peer.did
    const signal = AbortSignal.any([
      AbortSignal.timeout(this.#t.sendTimeoutMs),
      ...(options.signal ? [options.signal] : []),
    ])
    const envelope = createEnvelope(this.#c.key(), {
      id: item.envelopeId,
      type: item.type,
      target: keyDid,
      protocol: MESH_CONNECT_PROTOCOL,
      body: item.body,
      auth: { proofs: item.proofs },
      now: this.#t.now(),
    })
    let replyBytes: Uint8Array
    try {
      // After a failed dial, the addresses we hold may be stale: ask discovery too.
      const refresh = item.lastError !== null && item.lastError.kind !== 'remote-refused'
      const viaLibp2p = async () =>
        exchange(this.#c.libp2p(), await this.dialable(peer, { signal, refresh }), encodeEnvelope(envelope), {
          signal,
        })
      // phase-1 HTTP federation (SPEC §12): libp2p → the peer's HTTP endpoint (http-federation.ts)
      const http = this.#c.httpRoute
      replyBytes =
        http === undefined
          ? await viaLibp2p()
          : await http.send(
              {
                peer: peer.did,
                key: keyDid,
                type: item.type,
                bytes: encodeEnvelope(envelope),
                connected: () => this.#c.libp2p().getConnections(peerIdFromDid(keyDid)).length > 0,
                viaLibp2p,
              },
              { ...(options.signal !== undefined ? { signal: options.signal } : {}) },
            )
    } catch (err) {
      if (options.signal?.aborted === true) throw err
      // store and forward (SPEC §10): libp2p → HTTP endpoint → mailbox; parked counts as delivered
      const failure = classifyDeliveryError(err)
      const mailbox = this.#c.mailbox?.()
      if (
        mailbox !== undefined &&
        (await parkAtRelay(
          { mailbox, outbox: this.#outbox, audit: this.#c.audit, logger: this.#c.logger },
          item,
          peer,
          keyDid,
          encodeEnvelope(envelope),
          failure,
          { timeoutMs: this.#t.sendTimeoutMs, ...(options.signal ? { signal: options.signal } : {}) },
        ))
      )
        return
      throw failure
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
    await this.#c.book.serial(() => this.#delivered(item, peer, reply, ackBody))
    this.#c.logger.info(
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

  /** The peer took the item: it is reachable, and an ack may tell that our request was accepted. */
  async #delivered(
    item: OutboxItem,
    peer: PeerRecord,
    reply: Envelope,
    ackBody: Pick<ConnectAckBody, 'status' | 'agreementVersion'> | undefined,
  ): Promise<void> {
    const now = this.#t.now()
    const current = (await this.#c.peers.get(item.peer)) ?? peer
    seen(current, now)
    current.sent = countTraffic(current.sent, now)
    current.lastError = null
    if (reply.type === CONNECT_MESSAGE.ack) current.name = (reply.body as ConnectAckBody).name
    const record = await this.#c.book.get(item.connectionId)
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
          next = transition(next, 'accepted', null, now)
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
      ops.push(this.#c.book.putRecord(next))
    }
    ops.push(...this.#c.peers.put(current))
    if (entry !== undefined) await this.#c.audit.append(entry, { with: ops })
    else await this.#c.store.batch(ops)
  }

  async #failed(item: OutboxItem, err: DeliveryError): Promise<void> {
    this.#logFailure(item, err, { permanent: true, attempts: item.attempts + 1 }, 'refused')
    await this.#c.book.serial(async () => {
      const now = this.#t.now()
      const error = peerError(err, now)
      const ops: StoreOperation[] = [...this.#outbox.removeOperations(item)]
      const peer = await this.#c.peers.get(item.peer)
      if (peer !== undefined) {
        peer.lastError = error
        seen(peer, now)
        ops.push(...this.#c.peers.put(peer))
      }
      const record = await this.#c.book.get(item.connectionId)
      if (record === undefined) {
        await this.#c.store.batch(ops)
        return
      }
      // crossing requests (issue 13): the peer's request stands and will reach us; ours waits for it.
      const crossed = err.code === 'MESH_CONFLICT' && err.details.reason === 'crossed'
      if (
        item.type === CONNECT_MESSAGE.request &&
        record.direction === 'outbound' &&
        record.status === 'pending' &&
        !crossed
      ) {
        // The peer refused the request itself: the request is over, as if declined.
        const next = { ...transition(record, 'declined', null, now), lastError: error }
        await this.#c.audit.append(
          {
            action: 'federation.connection.refused',
            actor: item.peer,
            subject: record.id,
            details: { peer: item.peer, code: err.code, reason: err.message.slice(0, 256) },
          },
          { with: [...ops, this.#c.book.putRecord(next)] },
        )
        return
      }
      await this.#c.store.batch([...ops, this.#c.book.putRecord({ ...record, lastError: error })])
    })
  }

  async #retrying(item: OutboxItem, err: DeliveryError, delayMs: number): Promise<void> {
    this.#logFailure(
      item,
      err,
      { permanent: false, attempts: item.attempts, retryInMs: delayMs },
      'not delivered',
    )
    await this.#c.book.serial(async () => {
      const now = this.#t.now()
      const error = peerError(err, now)
      const peer = await this.#c.peers.get(item.peer)
      const ops: StoreOperation[] = []
      if (peer !== undefined) {
        peer.lastError = error
        if (err.kind !== 'remote-refused' && err.kind !== 'bad-reply') peer.unreachableSince ??= iso(now)
        ops.push(...this.#c.peers.put(peer))
      }
      const record = await this.#c.book.get(item.connectionId)
      if (record !== undefined) ops.push(this.#c.book.putRecord({ ...record, lastError: error }))
      if (ops.length > 0) await this.#c.store.batch(ops)
    })
  }

  #logFailure(
    item: OutboxItem,
    err: DeliveryError,
    outcome: { permanent: boolean; attempts: number; retryInMs?: number },
    what: string,
  ): void {
    this.#c.logger.warn(
      {
        event: 'federation.send.failed',
        peer: item.peer,
        type: item.type,
        connectionId: item.connectionId,
        kind: err.kind,
        code: err.code,
        ...outcome,
      },
      `federation message ${what}: ${err.message}`,
    )
  }

  readonly #onPeerConnect = (event: CustomEvent<PeerId>): void => {
    const did = didFromPeerId(event.detail)
    void (async () => {
      const identity = (await this.#c.peers.identityOf(did)) ?? did
      this.#outbox.kick(identity, { now: true })
      await this.#c.book.serial(async () => {
        const peer = await this.#c.peers.get(identity)
        if (peer === undefined || peer.unreachableSince === null) return
        peer.unreachableSince = null
        await this.#c.store.batch(this.#c.peers.put(peer))
      })
    })().catch((err: unknown) => {
      this.#c.logger.error(
        { event: 'federation.peer_connect_failed', peer: did, err },
        'handling peer:connect failed',
      )
    })
  }
}
