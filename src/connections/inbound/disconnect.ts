import { HUMAN_ACTS } from '../../auth/acts/index.ts'
import { ConflictError } from '../../errors.ts'
import type { ConnectDisconnectBody } from '../connect-protocol.ts'
import { heard, transition } from '../connection-book.ts'
import { newPeerRecord } from '../peers.ts'
import {
  acknowledgeAgain,
  type ConnectHandler,
  type ConnectHandlerComponents,
  connectionHandler,
} from './handler.ts'

/**
 * `connect.disconnect`: the peer ends a pending or accepted connection, naming its
 * agreement version. A repeated disconnect is acknowledged again.
 */
export function disconnectHandler(c: ConnectHandlerComponents): ConnectHandler {
  return connectionHandler<ConnectDisconnectBody>(c, async (env, body, record, identity, claimed) => {
    if (record.status === 'disconnected') {
      return acknowledgeAgain(c.envelopes, env, record, c.name)
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
    const at = c.now()
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
  })
}
