import { HUMAN_ACTS } from '../../auth/acts/index.ts'
import { ConflictError } from '../../errors.ts'
import type { Ed25519KeyPair } from '../../identity/index.ts'
import type { ConnectRequestBody } from '../connect-protocol.ts'
import { type ConnectionRecord, heard, iso, transition, validMultiaddrs } from '../connection-book.ts'
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
 *
 * Crossing requests (this mesh asked the peer while the peer asked this mesh) end as
 * one connection on both sides: the request with the smaller id stands. Each side
 * decides alike, so both keep the same one: when the peer's request is the smaller,
 * it is accepted at once (this mesh's human asked to connect: both consented) and
 * this mesh's own request is retired (`disconnected`, lastError `crossed`); when ours
 * is, the peer's is refused `MESH_CONFLICT` (reason `crossed`, `connectionId` ours),
 * and its sender keeps its own request pending until ours reaches it (delivery.ts).
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
    // crossing requests (issue 13)
    const crossing = connections.find((r) => r.direction === 'outbound' && r.status === 'pending')
    if (crossing !== undefined && crossing.id < body.connectionId) {
      throw new ConflictError('the requests crossed: this mesh’s own request stands', {
        reason: 'crossed',
        connectionId: crossing.id,
      })
    }
    const max = c.maxPendingInboundPerPeer ?? 1
    if (connections.filter((r) => r.direction === 'inbound' && r.status === 'pending').length >= max) {
      throw new ConflictError('too many pending requests from this mesh', { reason: 'pending-limit', max })
    }
    const decision = await c.policy.evaluate(identity)
    const auto = crossing !== undefined || (decision.ok && decision.autoAccept)
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
      // Crossed: decided by this mesh's human who asked to connect.
      decidedBy: crossing !== undefined ? crossing.decidedBy : auto ? null : act.issuer,
      lastError: null,
    }
    const retired: ConnectionRecord[] =
      crossing === undefined
        ? []
        : [
            {
              ...transition(crossing, 'disconnected', crossing.decidedBy, at),
              lastError: {
                kind: 'crossed',
                code: 'MESH_CONFLICT',
                message: `the requests crossed: connection ${record.id} stands`,
                at: iso(at),
              },
            },
          ]
    const applied = await c.peerActs.commit(
      env,
      record,
      peer,
      act,
      {
        action: auto ? 'federation.connection.accepted' : 'federation.connection.requested',
        actor: identity,
        subject: record.id,
        details: {
          peer: identity,
          direction: 'inbound',
          agreementVersion,
          requestedBy: act.issuer,
          ...(crossing !== undefined ? { crossed: crossing.id } : auto ? { autoAccept: true } : {}),
        },
      },
      retired,
    )
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
