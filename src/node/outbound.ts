import { toMeshError } from '../auth/authority/index.ts'
import { InvokeProtocol } from '../connections/index.ts'
import { ForbiddenError, MeshError } from '../errors.ts'
import type { NodeWiring } from './parts.ts'
import type { ReputationFeed } from './reputation.ts'

/** What `POST /api/outbound/invoke` calls: carries a member's invocation to a connected peer mesh. */
export type OutboundSend = (
  mesh: string,
  ucan: string,
  options: { signal: AbortSignal; sender: string },
) => Promise<unknown>

/**
 * `/mesh/invoke/1.0.0` (connections/invoke-protocol.ts): peers' invocations run through the
 * one dispatcher (node/invocations.ts) exactly as `POST /api/invoke` runs them; a member's go out through `send`, which
 * takes only the session's own invocation (its issuer is the sender) addressed to the
 * peer, and records each one sent in the audit log (`agent.invoke.sent`).
 */
export interface OutboundWiring extends NodeWiring {
  reputation: ReputationFeed
}

export async function startOutbound({
  parts,
  init,
  logger,
  reputation,
}: OutboundWiring): Promise<OutboundSend> {
  const protocol = new InvokeProtocol(
    {
      libp2p: () => parts.get('libp2p'),
      peers: () => parts.get('connections').peers(),
      invoke: (request, options) => parts.get('invocations').invoke(request, options),
      rejected: parts.get('rejected'),
      // accountability across meshes (SPEC §11): a denied mesh (e.g. caught equivocating) invokes nothing
      policy: parts.get('policy'),
      onPeerRefused: (mesh, reason) => reputation.peer({ mesh, outcome: 'refused', reason }),
      logger,
    },
    init.outbound ?? {},
  )
  await parts.add('outbound', protocol)
  return async (mesh, ucan, options) => {
    const decoded = parts.get('authority').chains.decode(ucan)
    if (decoded.error !== undefined) throw toMeshError(decoded.error)
    const { issuer, audience, cid } = decoded.ok.invocation
    if (issuer !== options.sender) {
      throw new ForbiddenError('a member sends only its own invocations', { issuer, sender: options.sender })
    }
    let outcome = 'ok'
    try {
      return await parts
        .get('outbound')
        .send(mesh, ucan, { audience, sender: issuer, signal: options.signal })
    } catch (err) {
      outcome = err instanceof MeshError ? err.code : 'MESH_INTERNAL'
      throw err
    } finally {
      await parts.get('audit').append({
        action: 'agent.invoke.sent',
        actor: issuer,
        subject: mesh,
        details: { invocation: cid, outcome },
      })
    }
  }
}
