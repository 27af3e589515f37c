import type { RevocationAnnouncement } from '../auth/index.ts'
import type { Logger } from '../log.ts'
import type { MeshStore, StoreOperation } from '../store/index.ts'
import { CONNECT_MESSAGE } from './connect-protocol.ts'
import { type ConnectionBook, randomId } from './connection-book.ts'
import type { RevokedBody } from './inbound/revoked.ts'
import type { Outbox } from './outbox.ts'

export interface PeerRevocationsComponents {
  book: Pick<ConnectionBook, 'serial' | 'latestPerPeer'>
  store: Pick<MeshStore, 'batch'>
  outbox: Pick<Outbox, 'enqueueOperations' | 'kick'>
  logger: Logger
}

/**
 * Tells every peer with an accepted connection that this mesh revoked a delegation one of
 * its principals issued (SPEC §9): a `ucan.revoked` message queued in each peer's durable
 * outbox, so that it reaches a peer that is away once it is back. Returns those peers.
 */
export function announceRevocation(
  c: PeerRevocationsComponents,
  announcement: RevocationAnnouncement,
): Promise<string[]> {
  return c.book.serial(async () => {
    const latest = await c.book.latestPerPeer((r) => r.status === 'accepted')
    const ops: StoreOperation[] = []
    for (const [peer, record] of latest) {
      const body: RevokedBody = { connectionId: record.id, ...announcement }
      const { operations } = c.outbox.enqueueOperations({
        peer,
        connectionId: record.id,
        type: CONNECT_MESSAGE.ucanRevoked,
        body,
        proofs: [],
        envelopeId: randomId(),
      })
      ops.push(...operations)
    }
    if (ops.length > 0) await c.store.batch(ops)
    for (const peer of latest.keys()) c.outbox.kick(peer, { now: true })
    c.logger.info(
      { event: 'federation.revocation.announced', peers: [...latest.keys()], cid: announcement.notice.cid },
      'revocation queued for peers',
    )
    return [...latest.keys()]
  })
}
