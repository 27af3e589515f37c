import { HUMAN_ACTS } from '../../auth/acts/index.ts'
import { BadRequestError, ConflictError, ReplayError } from '../../errors.ts'
import { CONNECT_MESSAGE, type ConnectAnswerBody, type ConnectionStatus } from '../connect-protocol.ts'
import { heard, transition } from '../connection-book.ts'
import { newPeerRecord } from '../peers.ts'
import {
  acknowledgeAgain,
  type ConnectHandler,
  type ConnectHandlerComponents,
  connectionHandler,
} from './handler.ts'

/**
 * `connect.accept` and `connect.decline`: the peer's answer to a request this mesh
 * sent; it must echo the request's nonce. A repeated answer is acknowledged again.
 */
export function answerHandler(c: ConnectHandlerComponents): ConnectHandler {
  return connectionHandler<ConnectAnswerBody>(c, async (env, body, record, identity, claimed) => {
    const accept = env.type === CONNECT_MESSAGE.accept
    if (record.direction !== 'outbound') {
      throw new ConflictError('an answer is only valid for a request this mesh sent', {
        reason: 'not-outbound',
        connectionId: record.id,
      })
    }
    if (body.requestNonce !== record.requestNonce) {
      throw new ReplayError('the answer does not echo the request nonce', {
        reason: 'request-nonce',
        connectionId: record.id,
      })
    }
    const target: ConnectionStatus = accept ? 'accepted' : 'declined'
    if (record.status === target && (!accept || record.agreementVersion === body.agreementVersion)) {
      return acknowledgeAgain(c.envelopes, env, record, c.name)
    }
    if (record.status !== 'pending') {
      throw new ConflictError(`the connection is ${record.status}`, { status: record.status })
    }
    if (body.agreementVersion < record.agreementVersion) {
      throw new BadRequestError('agreement version below the one proposed', {
        proposed: record.agreementVersion,
        got: body.agreementVersion,
      })
    }
    const at = c.now()
    const peer = (await c.peers.get(identity)) ?? newPeerRecord(identity, at)
    const act = await c.peerActs.check(env, peer, body.architectDid, body.decidedAt, {
      act: accept ? HUMAN_ACTS.accept : HUMAN_ACTS.decline,
      subject: record.id,
    })
    claimed(act)
    peer.architectDid = body.architectDid
    heard(peer, at)
    const next = transition(record, target, act.issuer, at)
    next.agreementVersion = body.agreementVersion
    next.peerArchitectDid = body.architectDid
    if (accept) peer.agreementVersion = Math.max(peer.agreementVersion, body.agreementVersion)
    return c.peerActs.commit(env, next, peer, act, {
      action: `federation.connection.${target}`,
      actor: act.issuer,
      subject: record.id,
      details: {
        peer: identity,
        direction: 'outbound',
        by: 'peer',
        agreementVersion: next.agreementVersion,
      },
    })
  })
}
