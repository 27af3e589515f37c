import type { GateAct } from '../../auth/acts/index.ts'
import { type MeshError, SignatureMismatchError } from '../../errors.ts'
import type { Logger } from '../../log.ts'
import type { Applied, ConnectionBook } from '../connection-book.ts'
import type { Envelope, EnvelopeVerifier } from '../envelope.ts'
import type { PeerBook } from '../peers.ts'
import type { PeerActs } from './peer-act.ts'

/**
 * One handler per handshake message type (request, accept/decline, disconnect): it
 * applies a verified envelope from the peer `identity` and returns the ack. It runs
 * in the book's queue; `claimed` hears of the peer's act once it is claimed, so that
 * the caller can release it when anything after fails.
 */
export interface ConnectHandler {
  handle(env: Envelope, identity: string, claimed: (act: GateAct) => void): Promise<Applied>
}

/** What the handshake handlers are built from. */
export interface ConnectHandlerComponents {
  book: Pick<ConnectionBook, 'get' | 'connectionsWith'>
  peers: Pick<PeerBook, 'get'>
  envelopes: Pick<EnvelopeVerifier, 'commit'>
  peerActs: Pick<PeerActs, 'check' | 'commit'>
  logger: Logger
}

export interface ConnectHandlerInit {
  /** This mesh's name, in every ack. */
  name: string
  now?: () => number
}

export function keyNotIntroduced(origin: string, connectionId: string): MeshError {
  return new SignatureMismatchError(
    'the connection belongs to a mesh whose key chain does not introduce this key',
    {
      origin,
      connectionId,
      reason: 'key-not-introduced',
    },
  )
}
