import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyPluginAsync } from 'fastify'
import { type LedgerForgiven, routes } from '../../api/index.ts'
import { ForbiddenError } from '../../errors.ts'
import { sessionOf } from './session.ts'

export interface LedgerForgiveRoutesInit {
  forgive: (did: string) => Promise<boolean>
}

/**
 * Coordination fees (SPEC §10), the architect's session only: `POST /api/ledger/forgive`
 * `{did}` — the relay serves that beneficiary again, its cut-off lifted and its debt
 * forgiven (kept across restarts). Any other role: MESH_FORBIDDEN.
 */
export const ledgerForgiveRoutes: FastifyPluginAsync<LedgerForgiveRoutesInit> = async (fastify, init) => {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  app.post(
    routes.ledgerForgive.path,
    {
      onRequest: app.requireSession,
      schema: { body: routes.ledgerForgive.body, response: { 200: routes.ledgerForgive.response } },
    },
    async (request): Promise<LedgerForgiven> => {
      const session = sessionOf(request)
      if (session.role !== 'architect')
        throw new ForbiddenError('only the architect may forgive a beneficiary', { role: session.role })
      const { did } = request.body
      return { did, wasCutOff: await init.forgive(did) }
    },
  )
}
