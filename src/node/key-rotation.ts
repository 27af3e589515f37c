import type { AuditLog } from '../audit/index.ts'
import { type ActGate, HUMAN_ACTS } from '../auth/index.ts'
import {
  type Ed25519KeyPair,
  type MeshKeyHistory,
  type RotationRecord,
  rotateMeshKey,
} from '../identity/index.ts'
import type { KeyRotationResult } from '../keys/index.ts'
import type { Logger } from '../log.ts'

export interface KeyRotationComponents {
  /** Where the mesh key, the retired keys and the rotation chain are written. */
  dataDir: string
  logger: Logger
  acts: () => Pick<ActGate, 'local' | 'release'>
  audit: () => Pick<AuditLog, 'rotateKey'>
  /** The key history now (its `current` is the key in use). */
  history: () => MeshKeyHistory
  /** The node takes the new key and history; what is bound to the key (the authority) follows. */
  adopt: (history: MeshKeyHistory) => Promise<void>
  /** Restarts what runs on the key; `whileStopped` runs while nothing sends. */
  restart: (key: Ed25519KeyPair, whileStopped: () => Promise<void>) => Promise<void>
  /** Queues the chain for every connected peer; the dids it was queued for. */
  announce: (identity: string, records: RotationRecord[]) => Promise<string[]>
  peerId: () => string
}

/**
 * Rotates the mesh key on the architect's act `mesh/rotate-key` (with = the current
 * did): a new key and its rotation record are written to the data dir (old keys kept),
 * the audit log records the hand-over (signed by the old key) and signs on with the
 * new one; then the libp2p host restarts on the new PeerId with discovery (which
 * republishes under the new did and leaves a "moved" record under the old ones), the
 * connection service and the registry heartbeat (which carries the chain) following;
 * finally every connected peer is sent the chain through the durable outbox. The
 * store and the HTTP API stay up throughout. One rotation at a time.
 */
export class KeyRotation {
  readonly #components: KeyRotationComponents
  #queue: Promise<unknown> = Promise.resolve()

  constructor(components: KeyRotationComponents) {
    this.#components = components
  }

  rotate(input: { ucan: string; actor: string }): Promise<KeyRotationResult> {
    const run = this.#queue.then(() => this.#rotate(input))
    this.#queue = run.catch(() => {})
    return run
  }

  async #rotate(input: { ucan: string; actor: string }): Promise<KeyRotationResult> {
    const c = this.#components
    const gate = c.acts()
    const before = c.history()
    const previous = before.current
    const act = await gate.local(input.ucan, { audience: previous.did, act: HUMAN_ACTS.rotateKey })
    let rotated: Awaited<ReturnType<typeof rotateMeshKey>>
    try {
      rotated = await rotateMeshKey(c.dataDir, before)
    } catch (err) {
      await gate.release(act)
      throw err
    }
    const { history, record } = rotated
    await c.audit().rotateKey(history.current, {
      details: { identity: history.identity, seq: record.seq, by: act.issuer },
      with: act.operations,
    })
    await c.adopt(history)
    c.logger.info(
      {
        event: 'node.key_rotated',
        identity: history.identity,
        from: previous.did,
        to: history.current.did,
        seq: record.seq,
      },
      'mesh key rotated',
    )
    let announcedTo: string[] = []
    await c.restart(history.current, async () => {
      // Queued while the outbox is stopped, so that nothing signed by the new key
      // reaches a peer before the chain that introduces it.
      announcedTo = await c.announce(history.identity, history.records)
    })
    return {
      identity: history.identity,
      previous: previous.did,
      did: history.current.did,
      peerId: c.peerId(),
      seq: record.seq,
      announcedTo,
    }
  }
}
