import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { REJECTED_LIMITS, type RejectedLog } from '../audit/index.ts'
import { ERROR_STATUS, ForbiddenError, UnauthenticatedError } from '../errors.ts'
import { type FederationPolicy, type PolicyChange, type PolicyService, policySchema } from './policy.ts'

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
export function registerPolicyRoutes(app: FastifyInstance, init: PolicyRoutesInit): void {
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
      const change = await init.policy.put(request.body as FederationPolicy, { actor: session.did })
      await init.onChange?.(change)
      return change.policy
    },
  )
}

export interface RejectedRoutesInit {
  rejected: RejectedLog
  authenticate: Authenticate
}

interface RejectedQuerystring {
  after?: string
  limit?: string
  peer?: string
  code?: string
}

// Query values arrive as strings and the app does not coerce them.
const rejectedQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    after: { type: 'string', pattern: '^[0-9]{16}$' },
    limit: { type: 'string', pattern: '^[0-9]{1,3}$' },
    peer: { type: 'string', maxLength: 128, pattern: '^did:[\\x21-\\x7e]+$' },
    code: { type: 'string', enum: Object.keys(ERROR_STATUS) },
  },
} as const

const rejectedPageSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['entries', 'nextCursor'],
  properties: {
    entries: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'at', 'peer', 'kind', 'code', 'reason', 'details'],
        properties: {
          id: { type: 'string' },
          at: { type: 'string' },
          peer: { type: ['string', 'null'] },
          kind: { type: 'string' },
          code: { type: 'string' },
          reason: { type: 'string' },
          details: { type: 'object', additionalProperties: true },
        },
      },
    },
    nextCursor: { type: ['string', 'null'] },
  },
} as const

/**
 * `GET /api/federation/rejected?after=&limit=&peer=&code=` (any session) →
 * `{entries: [{id, at, peer, kind, code, reason, details}], nextCursor}`, newest first.
 */
export function registerRejectedRoutes(app: FastifyInstance, init: RejectedRoutesInit): void {
  app.get(
    '/api/federation/rejected',
    {
      onRequest: init.authenticate,
      schema: { querystring: rejectedQuerySchema, response: { 200: rejectedPageSchema } },
    },
    async (request) => {
      const query = request.query as RejectedQuerystring
      return init.rejected.list({
        after: query.after,
        limit: query.limit === undefined ? REJECTED_LIMITS.defaultPageSize : Number(query.limit),
        peer: query.peer,
        code: query.code,
      })
    },
  )
}
