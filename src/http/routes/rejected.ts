import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyPluginAsync } from 'fastify'
import { rejectedPageSchema, rejectedQuerySchema } from '../../api/index.ts'
import { REJECTED_LIMITS, type RejectedLog } from '../../audit/index.ts'
import { ERROR_STATUS } from '../../errors.ts'

export interface RejectedRoutesInit {
  rejected: RejectedLog
}
// The contract matches a code by its form; here it must be one of the error table's.
const rejectedQuery = {
  ...rejectedQuerySchema,
  properties: {
    ...rejectedQuerySchema.properties,
    code: { type: 'string', enum: Object.keys(ERROR_STATUS) },
  },
} as const

/**
 * `GET /api/federation/rejected?after=&limit=&peer=&code=` (any session) →
 * `{entries: [{id, at, peer, kind, code, reason, details}], nextCursor}`, newest first.
 */
export const rejectedRoutes: FastifyPluginAsync<RejectedRoutesInit> = async (fastify, init) => {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  app.get(
    '/api/federation/rejected',
    {
      onRequest: app.requireSession,
      schema: { querystring: rejectedQuery, response: { 200: rejectedPageSchema } },
    },
    async (request) => {
      const query = request.query
      return init.rejected.list({
        after: query.after,
        limit: query.limit === undefined ? REJECTED_LIMITS.defaultPageSize : Number(query.limit),
        peer: query.peer,
        code: query.code,
      })
    },
  )
}
