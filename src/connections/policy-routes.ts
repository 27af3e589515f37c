import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { policySchema, rejectedPageSchema, rejectedQuerySchema } from '../api/index.ts'
import { ERROR_STATUS, ForbiddenError, UnauthenticatedError } from '../errors.ts'
import type { PolicyChange, PolicyService } from './policy.ts'
import { REJECTED_LIMITS, type RejectedLog } from './rejected-log.ts'

/** An onRequest hook that sets `request.session` or throws (e.g. `requireSession(sessions)`). */
export type Authenticate = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

export interface PolicyRoutesInit {
  policy: PolicyService
  authenticate: Authenticate
  /**
   * Called after a change is stored, before the reply, e.g. to write the audit log.
   * If it throws, the request fails although the change stays (it is already stored);
   * a caller that needs both or neither passes its entry to `PolicyService.put` instead.
   */
  onChange?: (change: PolicyChange) => void | Promise<void>
}

/**
 * `GET /api/federation/policy` (any session) and `PUT /api/federation/policy`
 * (the architect's session; the whole policy object, unknown fields refused).
 */
export function registerPolicyRoutes(fastify: FastifyInstance, init: PolicyRoutesInit): void {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  app.get(
    '/api/federation/policy',
    { onRequest: init.authenticate, schema: { response: { 200: policySchema } } },
    async () => init.policy.get(),
  )

  app.put(
    '/api/federation/policy',
    { onRequest: init.authenticate, schema: { body: policySchema, response: { 200: policySchema } } },
    async (request) => {
      const session = request.session
      if (session === undefined) throw new UnauthenticatedError('a session is required')
      if (session.role !== 'architect') {
        throw new ForbiddenError('only the architect may change the federation policy', {
          role: session.role,
        })
      }
      const change = await init.policy.put(request.body, { actor: session.did })
      await init.onChange?.(change)
      return change.policy
    },
  )
}

export interface RejectedRoutesInit {
  rejected: RejectedLog
  authenticate: Authenticate
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
export function registerRejectedRoutes(fastify: FastifyInstance, init: RejectedRoutesInit): void {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  app.get(
    '/api/federation/rejected',
    {
      onRequest: init.authenticate,
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
