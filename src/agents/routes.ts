import type { FastifyInstance } from 'fastify'
import { TOKEN_LIMITS } from '../auth/authority/index.ts'
import { UCAN_TOKEN_SCHEMA } from '../auth/routes.ts'
import type { AgentService } from './agent-service.ts'

const JWT = {
  type: 'string',
  minLength: 1,
  maxLength: 8192,
  pattern: '^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]*$',
} as const

/**
 * `POST /api/invoke {ucan, credentials?, presentation?}` → `{agent, ability, invoker,
 * invocation, tier, human, result}` — an `agent/invoke` of a capability the manifest
 * lists for one of this mesh's agents (SPEC §3). No session: the caller is usually a
 * foreign principal, and the invocation is its authentication — signed by the invoker
 * (the DID proof), addressed to this mesh, single use, with a chain rooted in this mesh.
 * Refusals carry the failed proof in `details.proof` (and every failed one in `details.failed`).
 */
export function registerInvokeRoutes(app: FastifyInstance, init: { agents: AgentService }): void {
  app.post(
    '/api/invoke',
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['ucan'],
          properties: {
            ucan: UCAN_TOKEN_SCHEMA,
            credentials: { type: 'array', maxItems: 16, items: JWT },
            presentation: { type: 'string', maxLength: TOKEN_LIMITS.maxEncodedLength },
          },
        },
      },
    },
    async (request) => {
      const body = request.body as { ucan: string; credentials?: string[]; presentation?: string }
      return init.agents.invoke(body)
    },
  )
}
