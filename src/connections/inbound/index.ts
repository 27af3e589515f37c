import type { CheckpointGossip } from '../../audit/index.ts'
import type { Ed25519KeyPair } from '../../identity/index.ts'
import type { Logger } from '../../log.ts'
import { CONNECT_MESSAGE } from '../connect-protocol.ts'
import type { ConnectionBook } from '../connection-book.ts'
import type { EnvelopeVerifier } from '../envelope.ts'
import type { PeerRotation } from '../peer-rotation.ts'
import type { PeerBook } from '../peers.ts'
import type { PolicyService } from '../policy.ts'
import { answerHandler } from './answer.ts'
import { checkpointHandler } from './checkpoint.ts'
import { disconnectHandler } from './disconnect.ts'
import { keyRotatedHandler } from './key-rotated.ts'
import { createPeerActs, type PeerActsComponents, type PeerActsInit } from './peer-act.ts'
import { Inbound, type InboundComponents } from './receive.ts'
import { requestHandler } from './request.ts'
// revocation that travels (SPEC §9)
import { type RevokedHandlerComponents, revokedHandler } from './revoked.ts'

export { answerHandler } from './answer.ts'
export { checkpointHandler } from './checkpoint.ts'
export { disconnectHandler } from './disconnect.ts'
export type { ConnectHandler, ConnectHandlerComponents } from './handler.ts'
export { keyRotatedHandler } from './key-rotated.ts'
export {
  createPeerActs,
  type PeerActExpect,
  type PeerActs,
  type PeerActsComponents,
  type PeerActsInit,
} from './peer-act.ts'
export { Inbound, type InboundComponents } from './receive.ts'
export { requestHandler } from './request.ts'
// revocation that travels (SPEC §9)
export { type RevokedBody, revokedHandler } from './revoked.ts'

/** What the receiving side is built from (each handler takes its part). */
export interface CreateInboundComponents {
  limiter: InboundComponents['limiter']
  envelopes: Pick<EnvelopeVerifier, 'verify' | 'release' | 'commit' | 'seenOperations'>
  peers: Pick<PeerBook, 'get' | 'identityOf' | 'put'>
  policy: Pick<PolicyService, 'evaluate'>
  acts: PeerActsComponents['acts'] & InboundComponents['acts']
  book: ConnectionBook
  audit: PeerActsComponents['audit']
  refusals: InboundComponents['refusals']
  rotation: Pick<PeerRotation, 'refuseRetiredKey' | 'applyChain'>
  key: () => Ed25519KeyPair
  logger: Logger
  checkpoints?: Pick<CheckpointGossip, 'incoming'>
  // revocation that travels (SPEC §9)
  revocations?: RevokedHandlerComponents['revocations']
}

export interface CreateInboundInit extends PeerActsInit {
  ownDids?: () => string[]
  maxPendingInboundPerPeer?: number
  sendTimeoutMs?: number
}

/** The receiving side with a handler per message type, each built from what it needs. */
export function createInbound(c: CreateInboundComponents, init: CreateInboundInit): Inbound {
  const peerActs = createPeerActs(c, init)
  const now = init.now ?? Date.now
  const base = {
    book: c.book,
    peers: c.peers,
    envelopes: c.envelopes,
    peerActs,
    logger: c.logger,
    name: init.name,
    now,
  }
  const answer = answerHandler(base)
  return new Inbound(
    {
      ...c,
      handlers: {
        [CONNECT_MESSAGE.request]: requestHandler({
          ...base,
          policy: c.policy,
          key: c.key,
          ...(init.ownDids !== undefined ? { ownDids: init.ownDids } : {}),
          ...(init.maxPendingInboundPerPeer !== undefined
            ? { maxPendingInboundPerPeer: init.maxPendingInboundPerPeer }
            : {}),
        }),
        [CONNECT_MESSAGE.accept]: answer,
        [CONNECT_MESSAGE.decline]: answer,
        [CONNECT_MESSAGE.disconnect]: disconnectHandler(base),
        // revocation that travels (SPEC §9)
        [CONNECT_MESSAGE.ucanRevoked]: revokedHandler({
          ...base,
          revocations: c.revocations ?? (() => undefined),
        }),
      },
      keyRotated: keyRotatedHandler(c, { name: init.name, now }),
      checkpoint: checkpointHandler(c),
    },
    init.sendTimeoutMs !== undefined ? { sendTimeoutMs: init.sendTimeoutMs } : {},
  )
}
