import type { AbortOptions, PeerId } from '@libp2p/interface'
import type { Logger } from '../log.ts'
import type { MeshLibp2p } from '../p2p/index.ts'
import type { MeshStore } from '../store/index.ts'
import { classifyDeliveryError, type DeliveryError } from './connect-protocol.ts'
import { type ConnectionBook, isLive, iso, peerError, type Timing, timing } from './connection-book.ts'
// phase-1 HTTP federation (SPEC §12)
import type { HttpRoute } from './http-federation.ts'
import type { Outbox } from './outbox.ts'
import type { PeerBook, PeerRecord } from './peers.ts'

export interface PeerProbeComponents {
  /** The host (a function: a key rotation restarts the service on a new host). */
  libp2p: () => MeshLibp2p
  store: Pick<MeshStore, 'batch'>
  peers: Pick<PeerBook, 'get' | 'put'>
  book: Pick<ConnectionBook, 'serial' | 'records'>
  outbox: Pick<Outbox, 'pending'>
  /** The dial step (Delivery.dialable). */
  dialable: (peer: PeerRecord, options: AbortOptions) => Promise<PeerId>
  logger: Logger
  /** Aborted when the service stops. */
  shutdown: () => AbortSignal
  // phase-1 HTTP federation (SPEC §12): a peer libp2p cannot ping may answer over HTTP
  httpRoute?: Pick<HttpRoute, 'reachable'>
}

export interface PeerProbeInit {
  /** One ping (dial included) at most this long; default 10 000 ms. */
  sendTimeoutMs?: number
  now?: () => number
}

/** Consecutive failed probes before an accepted peer shows as `degraded`. */
const PROBE_MISSES_FOR_DEGRADED = 2

/**
 * The reachability of accepted peers that have nothing queued (a queue's own
 * deliveries tell its peer's state): a ping, and `unreachableSince` set after two
 * misses in a row (shown as `degraded`), cleared on the next answer.
 */
export class PeerProbe {
  readonly #c: PeerProbeComponents
  readonly #t: Timing
  readonly #probeMisses = new Map<string, number>()

  constructor(components: PeerProbeComponents, init: PeerProbeInit = {}) {
    this.#c = components
    this.#t = timing(init)
  }

  /**
   * Pings every peer with an accepted connection and nothing queued (a queue's own
   * deliveries tell its peer's state), marking it reachable or not.
   */
  async probe(options: AbortOptions = {}): Promise<void> {
    const queued = new Set((await this.#c.outbox.pending()).map((i) => i.peer))
    const accepted = new Set<string>()
    for await (const record of this.#c.book.records()) {
      if (isLive(record) && !queued.has(record.peerDid)) accepted.add(record.peerDid)
    }
    await Promise.all([...accepted].map((did) => this.#probeOne(did, options)))
  }

  async #probeOne(did: string, options: AbortOptions): Promise<void> {
    const peer = await this.#c.peers.get(did)
    if (peer === undefined) return
    let error: DeliveryError | undefined
    try {
      const signal = AbortSignal.any([
        AbortSignal.timeout(this.#t.sendTimeoutMs),
        this.#c.shutdown(),
        ...(options.signal ? [options.signal] : []),
      ])
      const peerId = await this.#c.dialable(peer, { signal })
      await this.#c.libp2p().services.ping.ping(peerId, { signal })
    } catch (err) {
      if (this.#c.shutdown().aborted) return
      error = classifyDeliveryError(err)
      // phase-1 HTTP federation (SPEC §12): reachable over HTTP is reachable
      const key = peer.keys.at(-1)?.did ?? peer.did
      if (await this.#c.httpRoute?.reachable(peer.did, key, { signal: this.#c.shutdown() })) error = undefined
    }
    await this.#c.book.serial(async () => {
      const current = await this.#c.peers.get(did)
      if (current === undefined) return
      const now = this.#t.now()
      if (error === undefined) {
        this.#probeMisses.delete(did)
        if (current.unreachableSince === null) return
        current.unreachableSince = null
        current.lastSeen = iso(now)
        this.#c.logger.info({ event: 'federation.peer_reachable', peer: did }, 'peer is reachable again')
      } else {
        if (current.unreachableSince !== null) return
        // One lost ping on a busy host is not an unreachable peer: it takes two in a row.
        const misses = (this.#probeMisses.get(did) ?? 0) + 1
        this.#probeMisses.set(did, misses)
        if (misses < PROBE_MISSES_FOR_DEGRADED) return
        current.unreachableSince = iso(now)
        current.lastError = peerError(error, now)
        this.#c.logger.warn(
          { event: 'federation.peer_unreachable', peer: did, kind: error.kind },
          'peer cannot be reached',
        )
      }
      await this.#c.store.batch(this.#c.peers.put(current))
    })
  }
}
