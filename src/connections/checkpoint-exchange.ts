import type { AbortOptions, PeerId } from '@libp2p/interface'
import type { CheckpointExchangeBody, CheckpointGossip } from '../audit/index.ts'
import { BadRequestError, MeshError, type MeshErrorCode } from '../errors.ts'
import type { Ed25519KeyPair } from '../identity/index.ts'
import type { Logger } from '../log.ts'
import type { MeshLibp2p } from '../p2p/index.ts'
import {
  CONNECT_MESSAGE,
  type ConnectErrorBody,
  checkBody,
  exchange,
  MESH_CONNECT_PROTOCOL,
} from './connect-protocol.ts'
import { type ConnectionBook, type ConnectionRecord, isLive, type Timing } from './connection-book.ts'
import { createEnvelope, type EnvelopeVerifier, encodeEnvelope } from './envelope.ts'
import { currentKeyOf, type PeerBook, type PeerRecord } from './peers.ts'

export interface CheckpointExchangeComponents {
  /** The host (a function: a key rotation restarts the service on a new host). */
  libp2p: () => MeshLibp2p
  key: () => Ed25519KeyPair
  book: Pick<ConnectionBook, 'serial' | 'records'>
  peers: Pick<PeerBook, 'get'>
  envelopes: Pick<EnvelopeVerifier, 'verify' | 'release'>
  /** The dial step (Delivery.dialable). */
  dialable: (peer: PeerRecord, options: AbortOptions) => Promise<PeerId>
  logger: Logger
  /** Aborted when the service stops. */
  shutdown: () => AbortSignal
  /** Without it the node neither sends nor answers checkpoints. */
  checkpoints?: Pick<CheckpointGossip, 'outgoing' | 'answered'>
}

/**
 * Swaps audit checkpoints with every peer that has an accepted connection, when this
 * log changed since the last exchange with it (this run): ours and the one we hold
 * of theirs go out, theirs and the one they hold of ours come back (see
 * audit/checkpoint-gossip.ts). A failed exchange is logged and tried next round.
 * Returns the peers that answered.
 */
export async function exchangeCheckpoints(
  c: CheckpointExchangeComponents,
  init: Timing,
  options: AbortOptions = {},
): Promise<string[]> {
  const gossip = c.checkpoints
  if (gossip === undefined) return []
  const accepted = new Map<string, ConnectionRecord>()
  for await (const record of c.book.records()) {
    if (isLive(record)) accepted.set(record.peerDid, record)
  }
  const answered: string[] = []
  await Promise.all(
    [...accepted].map(async ([did, record]) => {
      try {
        const body = await gossip.outgoing(did)
        if (body === undefined) return
        const peer = await c.peers.get(did)
        if (peer === undefined) return
        const signal = AbortSignal.any([
          AbortSignal.timeout(init.sendTimeoutMs),
          c.shutdown(),
          ...(options.signal ? [options.signal] : []),
        ])
        const keyDid = currentKeyOf(peer)
        const envelope = createEnvelope(c.key(), {
          type: CONNECT_MESSAGE.checkpoint,
          target: keyDid,
          protocol: MESH_CONNECT_PROTOCOL,
          body: { connectionId: record.id, ...body },
          now: init.now(),
        })
        const peerId = await c.dialable(peer, { signal })
        const bytes = await exchange(c.libp2p(), peerId, encodeEnvelope(envelope), { signal })
        const reply = await c.envelopes.verify(bytes, { remoteDid: keyDid })
        await c.envelopes.release(reply)
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
        await c.book.serial(() =>
          gossip.answered(
            did,
            peer.keys.map((k) => k.did),
            body,
            theirs,
          ),
        )
        answered.push(did)
      } catch (err) {
        if (c.shutdown().aborted) return
        c.logger.warn(
          { event: 'federation.checkpoint.failed', peer: did, err },
          `audit checkpoint exchange failed: ${(err as Error).message}`,
        )
      }
    }),
  )
  return answered
}
