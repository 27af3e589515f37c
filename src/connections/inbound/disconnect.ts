import { HUMAN_ACTS } from '../../auth/acts/index.ts'
import { ConflictError, NotFoundError } from '../../errors.ts'
import { type ConnectDisconnectBody, checkBody } from '../connect-protocol.ts'
import { ack, heard, transition } from '../connection-book.ts'
import { newPeerRecord } from '../peers.ts'
import {
  type ConnectHandler,
  type ConnectHandlerComponents,
  type ConnectHandlerInit,
  keyNotIntroduced,
} from './handler.ts'

/**
 * `connect.disconnect`: the peer ends a pending or accepted connection, naming its
 * agreement version. A repeated disconnect is acknowledged again.
 */
export function disconnectHandler(c: ConnectHandlerComponents, init: ConnectHandlerInit): ConnectHandler {
  const now = init.now ?? Date.now
  return {
    async handle(env, identity, claimed) {
      const body = checkBody<ConnectDisconnectBody>(env.type, env.body)
      const record = await c.book.get(body.connectionId)
      if (record === undefined) {
        throw new NotFoundError('no such connection with this mesh', { connectionId: body.connectionId })
      }
      if (record.peerDid !== identity) throw keyNotIntroduced(env.origin, record.id)
      if (record.status === 'disconnected') {
        await c.envelopes.commit(env)
        return { reply: ack(env.id, record, init.name) }
      }
      if (record.status !== 'pending' && record.status !== 'accepted') {
        throw new ConflictError(`cannot disconnect a ${record.status} connection`, { status: record.status })
      }
      if (body.agreementVersion !== record.agreementVersion) {
        throw new ConflictError('the disconnect names another agreement version', {
          reason: 'agreement-version',
          ours: record.agreementVersion,
          theirs: body.agreementVersion,
        })
      }
      const at = now()
      const peer = (await c.peers.get(identity)) ?? newPeerRecord(identity, at)
      const act = await c.peerActs.check(env, peer, body.architectDid, body.decidedAt, {
        act: HUMAN_ACTS.disconnect,
        subject: record.id,
      })
      claimed(act)
      heard(peer, at)
      const next = transition(record, 'disconnected', act.issuer, at)
      return c.peerActs.commit(env, next, peer, act, {
        action: 'federation.connection.disconnected',
        actor: act.issuer,
        subject: record.id,
        details: { peer: identity, by: 'peer', agreementVersion: record.agreementVersion },
      })
    },
  }
}
