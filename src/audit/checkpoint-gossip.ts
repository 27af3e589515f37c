import { type Logger, silentLogger } from '../log.ts'
import type { AuditLog } from './audit-log.ts'
import { type AuditCheckpoint, compareCheckpoints, isSignedCheckpoint } from './checkpoint.ts'

/**
 * What two linked meshes swap on each checkpoint exchange (both ways: the message and
 * its reply carry the same shape):
 *
 * - `checkpoint`: the sender's own log, signed now;
 * - `held`: the latest checkpoint the sender holds of the *receiver's* log, or null.
 *
 * The receiver compares `checkpoint` with what it held of the sender (a later one that
 * is shorter, or the same size with another head, is a rollback it records), and checks
 * that its own log still extends `held` (it has the rows, so it also catches a row
 * `size` that changed under a longer log). So a mesh whose store was cut back learns
 * it from the first peer it talks to, and that peer keeps the proof.
 */
export interface CheckpointExchangeBody extends Record<string, unknown> {
  checkpoint: AuditCheckpoint
  held: AuditCheckpoint | null
}

export interface CheckpointGossipInit {
  audit: AuditLog
  logger?: Logger
  /** The clock, in ms since the epoch; default `Date.now`. */
  now?: () => number
}

/**
 * The audit side of the checkpoint exchange; the connection service carries it over
 * `/mesh/connect/1.0.0` to peers with an accepted connection. Holds one checkpoint per
 * peer (in the audit sublevel); remembers, for this run, the size last sent to each
 * peer so that an unchanged log is not sent again.
 */
export class CheckpointGossip {
  readonly #audit: AuditLog
  readonly #log: Logger
  readonly #now: () => number
  readonly #sent = new Map<string, number>()

  constructor(init: CheckpointGossipInit) {
    this.#audit = init.audit
    this.#log = (init.logger ?? silentLogger()).child({ area: 'audit' })
    this.#now = init.now ?? Date.now
  }

  /** The body to send to `peer`, or undefined when it already has our current size (this run). */
  async outgoing(peer: string): Promise<CheckpointExchangeBody | undefined> {
    const checkpoint = this.#audit.checkpoint()
    if (this.#sent.get(peer) === checkpoint.size) return undefined
    return { checkpoint, held: (await this.#audit.peerCheckpoint(peer))?.checkpoint ?? null }
  }

  /** `peer` (identity did; `keys` every key it has held) sent `body`; returns the reply body. */
  async incoming(
    peer: string,
    keys: readonly string[],
    body: CheckpointExchangeBody,
  ): Promise<CheckpointExchangeBody> {
    await this.#take(peer, keys, body)
    return {
      checkpoint: this.#audit.checkpoint(),
      held: (await this.#audit.peerCheckpoint(peer))?.checkpoint ?? null,
    }
  }

  /** `peer` answered our `sent` with `body`. */
  async answered(
    peer: string,
    keys: readonly string[],
    sent: CheckpointExchangeBody,
    body: CheckpointExchangeBody,
  ): Promise<void> {
    this.#sent.set(peer, sent.checkpoint.size)
    await this.#take(peer, keys, body)
  }

  async #take(peer: string, keys: readonly string[], body: CheckpointExchangeBody): Promise<void> {
    if (body.held !== null) await this.#audit.witness(body.held, `peer:${peer}`)
    const received = body.checkpoint
    if (!isSignedCheckpoint(received) || !keys.includes(received.signer)) {
      this.#log.warn(
        { event: 'audit.peer_checkpoint.refused', peer, signer: received?.signer },
        'a peer checkpoint not signed by a key of that peer',
      )
      return
    }
    const record = await this.#audit.peerCheckpoint(peer)
    if (record === undefined) {
      await this.#audit.keepPeerCheckpoint(peer, { checkpoint: received, conflict: null })
      return
    }
    const relation = compareCheckpoints(record.checkpoint, received)
    if (relation === 'stale' || relation === 'same') return
    if (relation === 'longer') {
      await this.#audit.keepPeerCheckpoint(peer, { checkpoint: received, conflict: null })
      return
    }
    // Shorter or forked: keep what we held (handed back, it tells the peer; kept, it is
    // the proof), and record the contradiction once per held checkpoint.
    if (record.conflict !== null) return
    const at = new Date(this.#now()).toISOString()
    this.#log.error(
      {
        event: 'audit.peer_rollback_detected',
        peer,
        relation,
        held: { size: record.checkpoint.size, head: record.checkpoint.head, ts: record.checkpoint.ts },
        received: { size: received.size, head: received.head, ts: received.ts },
      },
      `peer ${peer} signed an audit checkpoint that does not extend the one held (${relation})`,
    )
    await this.#audit.keepPeerCheckpoint(
      peer,
      { checkpoint: record.checkpoint, conflict: { checkpoint: received, relation, at } },
      {
        action: 'federation.peer.audit_rollback',
        actor: peer,
        subject: peer,
        details: { peer, relation, held: record.checkpoint, received },
      },
    )
  }
}
