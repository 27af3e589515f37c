import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyPluginAsync } from 'fastify'
import type { AgentService } from '../../agents/index.ts'
import { invokeBodySchema } from '../../api/index.ts'
import type { ForeignAccess } from '../../rooms/index.ts'

/**
 * `POST /api/invoke {ucan, credentials?, presentation?}` → `{agent, ability, invoker,
 * invocation, tier, human, result}` — an `agent/invoke` of a capability the manifest
 * lists for one of this mesh's agents (SPEC §3). No session: the caller is usually a
 * foreign principal, and the invocation is its authentication — signed by the invoker
 * (the DID proof), addressed to this mesh, single use, with a chain rooted in this mesh.
 * Refusals carry the failed proof in `details.proof` (and every failed one in `details.failed`).
 */
export const invokeRoutes: FastifyPluginAsync<{ agents: AgentService; rooms?: ForeignAccess }> = async (
  fastify,
  init,
) => {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  // Dispatch by capability: room/read and room/post (agents in foreign rooms), else agent/invoke as before.
  app.post('/api/invoke', { schema: { body: invokeBodySchema } }, async (request) =>
    init.rooms?.handles(request.body.ucan) === true
      ? init.rooms.invoke(request.body)
      : init.agents.invoke(request.body),
  )
}
