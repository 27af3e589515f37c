import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyPluginAsync } from 'fastify'
import { outboundInvokeBodySchema, outboundInvokeResultSchema } from '../../api/index.ts'
import { sessionOf } from './session.ts'

export interface OutboundRoutesInit {
  /** Carries `ucan` to the connected peer mesh `mesh` (/mesh/invoke/1.0.0); throws its refusal. */
  send: (mesh: string, ucan: string, options: { signal: AbortSignal; sender: string }) => Promise<unknown>
}

/**
 * `POST /api/outbound/invoke {mesh, ucan}` → `{mesh, answer}` — a member of this mesh (any
 * enrolled principal, by its session) has this node carry an invocation to a connected
 * peer mesh over libp2p (SPEC §8); `answer` is what the peer's `POST /api/invoke` answers.
 * A refusal by the peer comes back with the peer's code and details (plus `refusedBy`);
 * MESH_NOT_CONNECTED without an accepted connection, MESH_UNAVAILABLE when the peer
 * cannot be reached, MESH_FORBIDDEN when the invocation is not the session's own.
 */
export const outboundRoutes: FastifyPluginAsync<OutboundRoutesInit> = async (fastify, init) => {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  app.post(
    '/api/outbound/invoke',
    {
      onRequest: app.requireSession,
      schema: { body: outboundInvokeBodySchema, response: { 200: outboundInvokeResultSchema } },
    },
    async (request) => {
      const session = sessionOf(request)
      const controller = new AbortController()
      request.raw.once('close', () => {
        if (request.raw.aborted) controller.abort(new Error('the client went away'))
      })
      const answer = await init.send(request.body.mesh, request.body.ucan, {
        signal: controller.signal,
        sender: session.did,
      })
      return { mesh: request.body.mesh, answer: answer as Record<string, unknown> }
    },
  )
}
