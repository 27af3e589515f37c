import { HUMAN_ACTS } from '../../auth/acts/index.ts'
import { BadRequestError, ConflictError, NotFoundError, ReplayError } from '../../errors.ts'
import {
  CONNECT_MESSAGE,
  type ConnectAnswerBody,
  type ConnectionStatus,
  checkBody,
} from '../connect-protocol.ts'
import { ack, heard, transition } from '../connection-book.ts'
import { newPeerRecord } from '../peers.ts'
import {
  type ConnectHandler,
  type ConnectHandlerComponents,
  type ConnectHandlerInit,
  keyNotIntroduced,
} from './handler.ts'

/**
 * `connect.accept` and `connect.decline`: the peer's answer to a request this mesh
 * sent; it must echo the request's nonce. A repeated answer is acknowledged again.
 */
export function answerHandler(c: ConnectHandlerComponents, init: ConnectHandlerInit): ConnectHandler {
  const now = init.now ?? Date.now
  return {
    async handle(env, identity, claimed) {
      const body = checkBody<ConnectAnswerBody>(env.type, env.body)
      const accept = env.type === CONNECT_MESSAGE.accept
      const record = await c.book.get(body.connectionId)
      if (record === undefined) {
        throw new NotFoundError('no such connection with this mesh', { connectionId: body.connectionId })
      }
      if (record.peerDid !== identity) throw keyNotIntroduced(env.origin, record.id)
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
        await c.envelopes.commit(env)
        return { reply: ack(env.id, record, init.name) }
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
      const at = now()
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
    },
  }
}
