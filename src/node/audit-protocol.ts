import { type DefectionRecord, HeadBook } from '../audit/index.ts'
import { AuditProtocol } from '../connections/index.ts'
import { POLICY_LIMITS } from '../connections/policy.ts'
import { federationSettings } from './connections.ts'
import type { NodeLifecycle, NodeWiring } from './parts.ts'
import type { ReputationFeed } from './reputation.ts'

/**
 * `/mesh/audit/1.0.0` (connections/audit-protocol.ts, SPEC §11): connected peers read this
 * mesh's signed tree head, consistency proofs and the rows they are party to with their
 * inclusion proofs, and swap the tree heads they hold (audit/head-book.ts) every
 * `gossipIntervalMs`. An equivocation found or shown is written with its
 * `federation.defection` row, drops the offender (mesh scope) to tier 4, costs it
 * reputation, puts it on the federation
 * policy's deny list (every message and act of it refused, MESH_POLICY_REJECTED, until a
 * human takes it off with `PUT /api/federation/policy`) and is forwarded to every other
 * connected peer; a peer that forwards a proof that does not verify, sends
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
      deny(parts, record).catch((err: unknown) =>
        logger.error({ event: 'audit.defection_deny_failed', mesh: record.mesh, err }, 'denying failed'),
      )
      parts
        .get('authority')
        .trust.demote(record.mesh, 'mesh', 'federation.defection')
        .catch((err: unknown) =>
          logger.error({ event: 'audit.defection_demote_failed', mesh: record.mesh, err }, 'demoting failed'),
        )
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

/** Puts the offender on the deny list (the policy change recorded like a human's, with its reason). */
async function deny(parts: NodeLifecycle, record: DefectionRecord): Promise<void> {
  const policy = parts.get('policy')
  const current = await policy.get()
  if (current.deny.includes(record.mesh)) return
  if (current.deny.length >= POLICY_LIMITS.maxListLength) throw new Error('the deny list is full')
  const actor = parts.get('history').identity
  const change = await policy.put({ ...current, deny: [...current.deny, record.mesh] }, { actor })
  parts.set('federation', federationSettings(change.policy))
  // Its room links close now, not at the next check.
  await parts.find('roomSync')?.recheckPeers()
  await parts.get('audit').append({
    action: 'federation.policy.changed',
    actor,
    subject: record.mesh,
    details: { reason: 'federation.defection', denied: record.mesh },
  })
}
