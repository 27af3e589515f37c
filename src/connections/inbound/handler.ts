import type { GateAct } from '../../auth/acts/index.ts'
import { type MeshError, NotFoundError, SignatureMismatchError } from '../../errors.ts'
import type { Logger } from '../../log.ts'
import { checkBody } from '../connect-protocol.ts'
import { type Applied, ack, type ConnectionBook, type ConnectionRecord } from '../connection-book.ts'
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
  /** This mesh's name, in every ack. */
  name: string
  now: () => number
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

/** A handler from its apply step, given the message body checked against its type's schema. */
export function bodyHandler<B>(
  apply: (env: Envelope, body: B, identity: string, claimed: (act: GateAct) => void) => Promise<Applied>,
): ConnectHandler {
  return {
    handle: (env, identity, claimed) => apply(env, checkBody<B>(env.type, env.body), identity, claimed),
  }
}

/**
 * A handler for a message about an existing connection (an answer, a disconnect): the
 * connection it names must exist and be with the sending peer.
 */
export function connectionHandler<B extends { connectionId: string }>(
  c: Pick<ConnectHandlerComponents, 'book'>,
  apply: (
    env: Envelope,
    body: B,
    record: ConnectionRecord,
    identity: string,
    claimed: (act: GateAct) => void,
  ) => Promise<Applied>,
): ConnectHandler {
  return bodyHandler<B>(async (env, body, identity, claimed) =>
    apply(env, body, await peerConnection(c.book, env, body.connectionId, identity), identity, claimed),
  )
}

/** The connection a peer's answer or disconnect names: it must exist and be with that peer. */
async function peerConnection(
  book: Pick<ConnectionBook, 'get'>,
  env: Envelope,
  connectionId: string,
  identity: string,
): Promise<ConnectionRecord> {
  const record = await book.get(connectionId)
  if (record === undefined) throw new NotFoundError('no such connection with this mesh', { connectionId })
  if (record.peerDid !== identity) throw keyNotIntroduced(env.origin, record.id)
  return record
}

/**
 * A copy of a message that was applied already (its ack was lost, or the peer sent it
 * again): its id is remembered and the connection's state acknowledged again.
 */
export async function acknowledgeAgain(
  envelopes: Pick<EnvelopeVerifier, 'commit'>,
  env: Envelope,
  record: ConnectionRecord,
  name: string,
): Promise<Applied> {
  await envelopes.commit(env)
  return { reply: ack(env.id, record, name) }
}
