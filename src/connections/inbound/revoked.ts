import type { RevocationNotice } from '../../auth/authority/index.ts'
import type { RevocationAnnouncement, RevocationService } from '../../auth/index.ts'
import { MeshError, NotFoundError } from '../../errors.ts'
import { ack } from '../connection-book.ts'
import type { Envelope, EnvelopeVerifier } from '../envelope.ts'
import type { PeerBook } from '../peers.ts'
import { type ConnectHandler, type ConnectHandlerComponents, connectionHandler } from './handler.ts'

export interface RevokedBody extends Record<string, unknown> {
  connectionId: string
  notice: RevocationNotice
  delegation: string
  credentials: string[]
}

export interface RevokedHandlerComponents extends Pick<ConnectHandlerComponents, 'book' | 'name'> {
  peers: Pick<PeerBook, 'get'>
  envelopes: Pick<EnvelopeVerifier, 'seenOperations'>
  /** The revocations of this mesh (a getter: wired after the connections). */
  revocations: () => Pick<RevocationService, 'receive'> | undefined
}

/**
 * `ucan.revoked`: a peer revoked a delegation one of its principals issued. Only over an
 * accepted connection with that peer; the revocation service checks the notice and who
 * issued the delegation, and keeps it with the envelope's seen id in one batch.
 */
export function revokedHandler(c: RevokedHandlerComponents): ConnectHandler {
  return connectionHandler<RevokedBody>(c, async (env: Envelope, body, record, identity) => {
    if (record.status !== 'accepted') {
      throw new MeshError('MESH_NOT_CONNECTED', 'a revocation travels over an accepted connection', {
        connectionId: record.id,
        status: record.status,
      })
    }
    const peer = await c.peers.get(identity)
    if (peer === undefined) throw new NotFoundError('no peer mesh with this did', { identity })
    const revocations = c.revocations()
    if (revocations === undefined) {
      throw new MeshError('MESH_UNAVAILABLE', 'this node does not take revocations yet')
    }
    const announcement: RevocationAnnouncement = {
      notice: body.notice,
      delegation: body.delegation,
      credentials: body.credentials,
    }
    await revocations.receive(
      announcement,
      { identity, keys: peer.keys.map((k) => k.did), architectDid: peer.architectDid },
      c.envelopes.seenOperations(env),
    )
    return { reply: ack(env.id, record, c.name) }
  })
}
