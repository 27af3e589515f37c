import type { CheckpointExchangeBody, CheckpointGossip } from '../../audit/index.ts'
import { BadRequestError, NotConnectedError } from '../../errors.ts'
import { checkBody } from '../connect-protocol.ts'
import type { ConnectionBook } from '../connection-book.ts'
import type { Envelope, EnvelopeVerifier } from '../envelope.ts'
import type { PeerBook } from '../peers.ts'
import type { PolicyService } from '../policy.ts'

export interface CheckpointHandlerComponents {
  book: Pick<ConnectionBook, 'get' | 'serial'>
  peers: Pick<PeerBook, 'get'>
  policy: Pick<PolicyService, 'evaluate'>
  envelopes: Pick<EnvelopeVerifier, 'commit'>
  /** Without it the node does not answer checkpoints (the type is unexpected). */
  checkpoints?: Pick<CheckpointGossip, 'incoming'>
}

/**
 * `audit.checkpoint`: a peer's audit checkpoint, only over an accepted connection;
 * answered with ours (audit/checkpoint-gossip.ts). Not in the book's queue as a
 * whole: only the gossip's own write is.
 */
export function checkpointHandler(c: CheckpointHandlerComponents) {
  return {
    async handle(env: Envelope, identity: string | undefined): Promise<CheckpointExchangeBody> {
      const gossip = c.checkpoints
      if (gossip === undefined)
        throw new BadRequestError(`unexpected message type ${env.type}`, { type: env.type })
      const body = checkBody<CheckpointExchangeBody & { connectionId: string }>(env.type, env.body)
      const peer = identity === undefined ? undefined : await c.peers.get(identity)
      const record = await c.book.get(body.connectionId)
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
      const decision = await c.policy.evaluate(peer.did)
      if (!decision.ok) throw decision.error
      // Remembered, so that a replayed copy (an older, shorter checkpoint) is refused.
      await c.envelopes.commit(env)
      const { connectionId: _, ...theirs } = body
      return c.book.serial(() =>
        gossip.incoming(
          peer.did,
          peer.keys.map((k) => k.did),
          theirs,
        ),
      )
    },
  }
}
