import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyPluginAsync } from 'fastify'
import type { Invocations } from '../../agents/index.ts'
import { invokeBodySchema } from '../../api/index.ts'

/**
 * `POST /api/invoke {ucan, credentials?, presentation?}` — an invocation of a capability
 * the manifest lists (SPEC §3, §8): `agent/invoke` → `{agent, ability, invoker,
 * invocation, tier, human, result}`, `room/post` / `room/read` → `{room, ability, …}`.
 * The one dispatcher (agents/invocations.ts) decides, as for `/mesh/invoke/1.0.0`. No
 * session: the caller is usually a foreign principal, and the invocation is its
 * authentication — signed by the invoker (the DID proof), addressed to this mesh, single
 * use, with a chain rooted in this mesh. Refusals carry the failed proof in
 * `details.proof` (and every failed one in `details.failed`).
 */
export const invokeRoutes: FastifyPluginAsync<{ invocations: Pick<Invocations, 'invoke'> }> = async (
  fastify,
  init,
) => {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  app.post('/api/invoke', { schema: { body: invokeBodySchema } }, async (request) => {
    const controller = new AbortController()
    request.raw.once('close', () => {
      if (request.raw.aborted) controller.abort(new Error('the client went away'))
    })
    return init.invocations.invoke(request.body, { signal: controller.signal })
  })
}
