import { RevocationService } from '../auth/index.ts'
import type { NodeWiring } from './parts.ts'

/**
 * Revocation people can use (SPEC §9): the delegations this mesh's principals issued,
 * `ucan/revoke` acts, and the signed notices that travel to every accepted peer through
 * the connections' outbox (`ucan.revoked`) — and those peers send here, which the
 * connection service hands to this service (`revocations` in its components).
 */
export async function startRevocations({ parts, logger }: NodeWiring): Promise<RevocationService> {
  const service = new RevocationService({
    store: parts.get('store'),
    audit: parts.get('audit'),
    // Getters: a key rotation replaces the authority and the key.
    authority: () => parts.get('authority'),
    key: () => parts.get('key'),
    architectDid: () => parts.get('info').architectDid,
    ownDids: () => parts.get('history').keys,
    announce: (announcement) => parts.get('connections').announceRevocation(announcement),
    logger,
  })
  return parts.add('revocations', service)
}
