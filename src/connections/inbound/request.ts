import { HUMAN_ACTS } from '../../auth/acts/index.ts'
import { ConflictError } from '../../errors.ts'
import type { Ed25519KeyPair } from '../../identity/index.ts'
import type { ConnectRequestBody } from '../connect-protocol.ts'
import { type ConnectionRecord, heard, iso, validMultiaddrs } from '../connection-book.ts'
import { newPeerRecord } from '../peers.ts'
import type { PolicyService } from '../policy.ts'
import {
  acknowledgeAgain,
  bodyHandler,
  type ConnectHandler,
  type ConnectHandlerComponents,
} from './handler.ts'

export interface RequestHandlerComponents extends ConnectHandlerComponents {
  policy: Pick<PolicyService, 'evaluate'>
  key: () => Ed25519KeyPair
  /** Every did this mesh is known by: the peer's `mesh/connect` act may name any. */
  ownDids?: () => string[]
  /** Inbound pending requests kept per peer; default 1. */
  maxPendingInboundPerPeer?: number
}

/**
 * `connect.request`: a new inbound connection, pending (or accepted at once when the
 * policy says autoAccept). A retried copy of an applied request is answered again.
 */
export function requestHandler(c: RequestHandlerComponents): ConnectHandler {
  return bodyHandler<ConnectRequestBody>(async (env, body, identity, claimed) => {
    const existing = await c.book.get(body.connectionId)
    if (existing !== undefined) {
      if (
        existing.peerDid === identity &&
        existing.direction === 'inbound' &&
        existing.requestNonce === body.nonce
      ) {
        // A retry whose first copy was applied (its ack was lost): answer again.
        return acknowledgeAgain(c.envelopes, env, existing, c.name)
      }
      throw new ConflictError('connection id already in use', { reason: 'connection-id-taken' })
    }
    const at = c.now()
    const peer = (await c.peers.get(identity)) ?? newPeerRecord(identity, at)
    const act = await c.peerActs.check(env, peer, body.architectDid, body.decidedAt, {
      act: HUMAN_ACTS.connect,
      subject: c.key().did,
      subjects: c.ownDids?.() ?? [],
    })
    claimed(act)
    const connections = await c.book.connectionsWith(identity)
    const connected = connections.find((r) => r.status === 'accepted')
    if (connected !== undefined) {
      throw new ConflictError('there is already an accepted connection with this mesh', {
        reason: 'already-connected',
        connectionId: connected.id,
      })
    }
    const max = c.maxPendingInboundPerPeer ?? 1
    if (connections.filter((r) => r.direction === 'inbound' && r.status === 'pending').length >= max) {
      throw new ConflictError('too many pending requests from this mesh', { reason: 'pending-limit', max })
    }
    const decision = await c.policy.evaluate(identity)
    const auto = decision.ok && decision.autoAccept
    const agreementVersion = Math.max(body.agreementVersion, peer.agreementVersion + 1)
    peer.name = body.name
    peer.architectDid = body.architectDid
    peer.multiaddrs = validMultiaddrs(body.multiaddrs)
    peer.protocolVersions = body.protocolVersions
    heard(peer, at)
    if (auto) peer.agreementVersion = Math.max(peer.agreementVersion, agreementVersion)
    const record: ConnectionRecord = {
      id: body.connectionId,
      peerDid: identity,
      peerName: body.name,
      peerArchitectDid: body.architectDid,
      direction: 'inbound',
      status: auto ? 'accepted' : 'pending',
      agreementVersion,
      requestNonce: body.nonce,
      note: body.note ?? null,
      createdAt: iso(at),
      updatedAt: iso(at),
      decidedBy: auto ? null : act.issuer,
      lastError: null,
    }
    const applied = await c.peerActs.commit(env, record, peer, act, {
      action: auto ? 'federation.connection.accepted' : 'federation.connection.requested',
      actor: identity,
      subject: record.id,
      details: {
        peer: identity,
        direction: 'inbound',
        agreementVersion,
        requestedBy: act.issuer,
        ...(auto ? { autoAccept: true } : {}),
      },
    })
    c.logger.info(
      {
        event: 'federation.request_received',
        peer: identity,
        connectionId: record.id,
        status: record.status,
      },
      'connection request received',
    )
    return applied
  })
}
