import { HeadBook } from '../audit/index.ts'
import { AuditProtocol } from '../connections/index.ts'
import type { NodeWiring } from './parts.ts'
import type { ReputationFeed } from './reputation.ts'

/**
 * `/mesh/audit/1.0.0` (connections/audit-protocol.ts, SPEC §11): connected peers read this
 * mesh's signed tree head, consistency proofs and the rows they are party to with their
 * inclusion proofs, and swap the tree heads they hold (audit/head-book.ts) every
 * `gossipIntervalMs`. An equivocation found or shown is written with its
 * `federation.defection` row, costs the offender reputation and is forwarded to every
 * other connected peer; a peer that forwards a proof that does not verify, sends
 * malformed requests or floods loses reputation. The part follows the libp2p host across
 * a key rotation (node/network.ts restartOnKey).
 */
export interface AuditProtocolWiring extends NodeWiring {
  reputation: ReputationFeed
}

export async function startAuditProtocol({
  parts,
  init,
  logger,
  reputation,
}: AuditProtocolWiring): Promise<AuditProtocol> {
  const book = new HeadBook({
    audit: parts.get('audit'),
    logger: logger.child({ area: 'audit' }),
    keysOf: async (mesh) => {
      const peer = await parts.get('peerBook').get(mesh)
      if (peer === undefined) return undefined
      return { keys: [peer.did, ...peer.keys.map((k) => k.did)], rotation: peer.rotations ?? [] }
    },
    ask: (mesh, from) => parts.get('auditProtocol').askConsistency(mesh, from),
    onDefection: (record) => {
      reputation.peer({ mesh: record.mesh, outcome: 'refused', reason: 'federation.defection' })
      parts
        .get('auditProtocol')
        .forward(record)
        .catch((err: unknown) =>
          logger.warn({ event: 'audit.defection_forward_failed', err }, 'forwarding failed'),
        )
    },
  })
  parts.set('headBook', book)
  const protocol = new AuditProtocol(
    {
      libp2p: () => parts.get('libp2p'),
      peers: () => parts.get('connections').peers(),
      audit: parts.get('audit'),
      heads: book,
      rejected: parts.get('rejected'),
      onPeerRefused: (mesh, reason) => reputation.peer({ mesh, outcome: 'refused', reason }),
      logger,
    },
    init.auditProtocol ?? {},
  )
  return parts.add('auditProtocol', protocol)
}
