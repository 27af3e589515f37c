import type { AbortOptions } from '@libp2p/interface'
import type { AuditLog } from '../audit/index.ts'
import { BadRequestError, MeshError, SignatureMismatchError } from '../errors.ts'
import { extendKnownKeys, type RotationRecord, verifyRotationChain } from '../identity/index.ts'
import type { Logger } from '../log.ts'
import { fetchManifest } from '../manifest/index.ts'
import type { MeshStore, StoreOperation } from '../store/index.ts'
import { CONNECT_MESSAGE, type KeyRotatedBody } from './connect-protocol.ts'
import {
  type ConnectionBook,
  heard,
  iso,
  randomId,
  type Timing,
  timing,
  validMultiaddrs,
} from './connection-book.ts'
import type { Envelope, EnvelopeVerifier } from './envelope.ts'
import type { Outbox } from './outbox.ts'
import { currentKeyOf, type PeerBook } from './peers.ts'
import type { Refusals } from './refusals.ts'

export interface PeerRotationComponents {
  book: Pick<ConnectionBook, 'serial' | 'latestPerPeer'>
  peers: Pick<PeerBook, 'get' | 'identityOf' | 'put'>
  store: Pick<MeshStore, 'batch'>
  audit: Pick<AuditLog, 'append'>
  envelopes: Pick<EnvelopeVerifier, 'seenOperations'>
  outbox: Pick<Outbox, 'enqueueOperations' | 'kick'>
  refusals: Pick<Refusals, 'record'>
  logger: Logger
  /** Aborted when the service stops. */
  shutdown: () => AbortSignal
  /** A peer key's published rotation chain (its DHT record, or the "moved" record its old key left). */
  fetchRotations?: (
    did: string,
    options: AbortOptions,
  ) => Promise<{ identity: string; rotations: RotationRecord[]; multiaddrs: string[] } | undefined>
}

export interface PeerRotationInit {
  /** A refresh takes at most this long; default 10 000 ms. */
  sendTimeoutMs?: number
  now?: () => number
}

/**
 * Key rotation across the federation: telling peers that this mesh rotated, and
 * taking in a peer's new keys (announced, or refetched from its manifest and DHT
 * records) when its chain continues from the key held as current.
 */
export class PeerRotation {
  readonly #c: PeerRotationComponents
  readonly #t: Timing

  constructor(components: PeerRotationComponents, init: PeerRotationInit = {}) {
    this.#c = components
    this.#t = timing(init)
  }

  /**
   * Tells every peer with an accepted or pending connection that this mesh rotated its
   * key: a `mesh.key-rotated` message carrying `rotations` (the chain from `identity` to
   * the key now signing), queued at the head of each peer's durable outbox so that it
   * reaches the peer before anything else the new key signs, also after an absence.
   * Returns the peers it was queued for.
   */
  async announce(identity: string, rotations: RotationRecord[]): Promise<string[]> {
    const seq = rotations.at(-1)?.seq
    if (seq === undefined) throw new BadRequestError('no rotation to announce')
    return this.#c.book.serial(async () => {
      const latest = await this.#c.book.latestPerPeer(
        (r) => r.status === 'accepted' || r.status === 'pending',
      )
      const ops: StoreOperation[] = []
      for (const [peer, record] of latest) {
        const body: KeyRotatedBody = { connectionId: record.id, identity, rotations }
        const { operations } = this.#c.outbox.enqueueOperations(
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
      for (const peer of latest.keys()) this.#c.outbox.kick(peer, { now: true })
      this.#c.logger.info(
        { event: 'federation.key_rotation.announced', peers: [...latest.keys()], seq },
        'key rotation queued for peers',
      )
      return [...latest.keys()]
    })
  }

  /**
   * Refetches a peer's keys — from its manifest at `manifestUrl` when given, and from the
   * DHT records of its known keys (an old key's "moved" record names the new one) — and
   * applies a valid chain that continues from the key held as current. Returns the
   * peer's identity; MESH_PEER_UNKNOWN for a did no peer has; MESH_SIGNATURE_MISMATCH
   * when a chain was found but does not continue from what is known.
   */
  async refresh(did: string, options: AbortOptions & { manifestUrl?: string } = {}): Promise<string> {
    const identity = (await this.#c.peers.identityOf(did)) ?? did
    const peer = await this.#c.peers.get(identity)
    if (peer === undefined) throw new MeshError('MESH_PEER_UNKNOWN', 'no peer mesh with this did', { did })
    const signal = AbortSignal.any([
      AbortSignal.timeout(this.#t.sendTimeoutMs),
      this.#c.shutdown(),
      ...(options.signal ? [options.signal] : []),
    ])
    const found: Array<{ source: string; rotations: RotationRecord[]; multiaddrs: string[] }> = []
    if (options.manifestUrl !== undefined) {
      const { manifest } = await fetchManifest(options.manifestUrl, { signal })
      const rotations = manifest.keyHistory.flatMap((k) => (k.rotation !== undefined ? [k.rotation] : []))
      found.push({ source: 'manifest', rotations, multiaddrs: manifest.endpoints.libp2p })
    }
    for (const key of [...peer.keys].reverse()) {
      try {
        const published = await this.#c.fetchRotations?.(key.did, { signal })
        if (published !== undefined) found.push({ source: 'dht', ...published })
      } catch (err) {
        this.#c.logger.debug(
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
        applied = await this.#c.book.serial(() =>
          this.applyChain(identity, candidate.rotations, {
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
      await this.#c.refusals.record(refusal, {
        kind: 'key-refresh',
        peer: identity,
        actor: identity,
        subject: did,
      })
      throw refusal
    }
    this.#c.logger.info(
      {
        event: 'federation.key_refresh',
        peer: identity,
        sources: found.map((f) => f.source),
        added: applied,
      },
      'peer keys refreshed',
    )
    if (applied.length > 0) this.#c.outbox.kick(identity, { now: true })
    return identity
  }

  /** An envelope from a key the peer rotated away from is refused: only its current key speaks for it. */
  async refuseRetiredKey(identity: string, origin: string): Promise<void> {
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

  /**
   * Verifies `rotations` and appends the keys it introduces after the peer's current
   * key, with an audit row, in one batch (with `env`'s seen id when given). Returns the
   * keys added (none for a chain that brings nothing new). Runs in the book's queue.
   */
  async applyChain(
    identity: string,
    rotations: RotationRecord[],
    context: { source: string; env?: Envelope; multiaddrs?: string[] },
  ): Promise<string[]> {
    const peer = await this.#c.peers.get(identity)
    if (peer === undefined)
      throw new MeshError('MESH_PEER_UNKNOWN', 'no peer mesh with this did', { identity })
    const chain = verifyRotationChain(rotations, { now: this.#t.now() })
    const known = peer.keys.map((k) => k.did)
    const added = extendKnownKeys(known, chain)
    if (added.length === 0) return []
    for (const did of added) {
      const owner = await this.#c.peers.identityOf(did)
      if (owner !== undefined && owner !== identity) {
        throw new SignatureMismatchError('a key of this rotation chain belongs to another peer', { did })
      }
    }
    const now = this.#t.now()
    const from = currentKeyOf(peer)
    peer.keys = [...peer.keys, ...added.map((did) => ({ did, addedAt: iso(now) }))]
    peer.rotations = chain.records
    if (context.multiaddrs !== undefined && context.multiaddrs.length > 0) {
      peer.multiaddrs = validMultiaddrs(context.multiaddrs)
    }
    if (context.env !== undefined) heard(peer, now)
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
    this.#c.logger.info(
      { event: 'federation.peer_key_rotated', peer: identity, from, to, source: context.source },
      'peer rotated its key',
    )
    return added
  }
}
