import { AuditProtocol } from '../connections/index.ts'
import type { NodeWiring } from './parts.ts'
import type { ReputationFeed } from './reputation.ts'

/**
 * `/mesh/audit/1.0.0` (connections/audit-protocol.ts, SPEC §11): connected peers read this
 * mesh's signed tree head, consistency proofs and the rows they are party to with their
 * inclusion proofs; a peer that sends malformed requests or floods loses reputation. The
 * part follows the libp2p host across a key rotation (node/network.ts restartOnKey).
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
  const protocol = new AuditProtocol(
    {
      libp2p: () => parts.get('libp2p'),
      peers: () => parts.get('connections').peers(),
      audit: parts.get('audit'),
      rejected: parts.get('rejected'),
      onPeerRefused: (mesh, reason) => reputation.peer({ mesh, outcome: 'refused', reason }),
      logger,
    },
    init.auditProtocol ?? {},
  )
  return parts.add('auditProtocol', protocol)
}
