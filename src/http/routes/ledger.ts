import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyPluginAsync } from 'fastify'
import { type LedgerView, routes } from '../../api/index.ts'

export interface LedgerRoutesInit {
  ledger: (options: { receipts?: boolean }) => Promise<LedgerView>
}

/**
 * Coordination fees (SPEC §10), behind a session: `GET /api/ledger[?receipts=true]` — as a
 * relay, each beneficiary (bytes measured, receipts held and what they cover, refusals,
 * whether they verify, a cut-off and its code); as a beneficiary, each relay; with
 * `receipts=true`, every receipt held, the export `mesh ledger --verify --file` checks.
 */
export const ledgerRoutes: FastifyPluginAsync<LedgerRoutesInit> = async (fastify, init) => {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  app.get(
    routes.ledger.path,
    {
      onRequest: app.requireSession,
      schema: { querystring: routes.ledger.query, response: { 200: routes.ledger.response } },
    },
    async (request) => init.ledger({ receipts: request.query.receipts === 'true' }),
  )
}
