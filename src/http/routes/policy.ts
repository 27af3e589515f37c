import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyPluginAsync } from 'fastify'
import { policyPatchSchema, policyPutSchema, policySchema } from '../../api/index.ts'
import type { PolicyChange, PolicyService } from '../../connections/index.ts'
import { ForbiddenError } from '../../errors.ts'
import { sessionOf } from './session.ts'

export interface PolicyRoutesInit {
  policy: PolicyService
  /**
   * Called after a change is stored, before the reply, e.g. to write the audit log.
   * If it throws, the request fails although the change stays (it is already stored);
   * a caller that needs both or neither passes its entry to `PolicyService.put` instead.
   */
  onChange?: (change: PolicyChange) => void | Promise<void>
}

/**
 * `GET /api/federation/policy` (any session), `PUT /api/federation/policy` (the
 * architect's session; the whole policy object, unknown fields refused) and `PATCH
 * /api/federation/policy` (the same authority; only the fields it names change).
 */
export const policyRoutes: FastifyPluginAsync<PolicyRoutesInit> = async (fastify, init) => {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  app.get(
    '/api/federation/policy',
    { onRequest: app.requireSession, schema: { response: { 200: policySchema } } },
    async () => init.policy.get(),
  )

  app.put(
    '/api/federation/policy',
    { onRequest: app.requireSession, schema: { body: policyPutSchema, response: { 200: policySchema } } },
    async (request) => {
      const session = architect(sessionOf(request))
      const change = await init.policy.put(
        { ...request.body, backfillLimit: request.body.backfillLimit ?? null },
        { actor: session.did },
      )
      await init.onChange?.(change)
      return change.policy
    },
  )

  // PATCH of the policy (issue 13)
  app.patch(
    '/api/federation/policy',
    { onRequest: app.requireSession, schema: { body: policyPatchSchema, response: { 200: policySchema } } },
    async (request) => {
      const session = architect(sessionOf(request))
      const change = await init.policy.patch(request.body, { actor: session.did })
      await init.onChange?.(change)
      return change.policy
    },
  )
}

/** Only the architect changes the federation policy. */
function architect<S extends { role: string }>(session: S): S {
  if (session.role !== 'architect')
    throw new ForbiddenError('only the architect may change the federation policy', { role: session.role })
  return session
}
