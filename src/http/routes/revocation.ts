import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyPluginAsync } from 'fastify'
import { routes } from '../../api/index.ts'
import type { RevocationService } from '../../auth/index.ts'
import { sessionOf } from './session.ts'

export interface RevocationRoutesInit {
  revocations: Pick<RevocationService, 'list' | 'record' | 'revoke'>
}

/**
 * Revocation people can use (SPEC §9), behind a session:
 *
 * - `GET /api/auth/delegations` → `{delegations, revocations}`: the delegations this
 *   mesh's principals issued (newest first, each with `revoked`: the revocation or null)
 *   and every revocation held here — this mesh's own and those its peers sent (`mesh`).
 * - `POST /api/auth/delegations {delegation}` → `201` the record: a delegation issued by
 *   a principal of this mesh, recorded by its issuer or the architect (the CLI and the
 *   console do it when they issue one).
 * - `POST /api/auth/revoke {cid, ucan, delegation?}` → `{revocation, announcedTo}`: `ucan`
 *   is a `ucan/revoke` act (with = the mesh, `nb.ucan` = the CID) of the architect or of
 *   the delegation's issuer (a human member); a delegation of this mesh's principals is
 *   announced, signed by the mesh key, to every accepted peer. Already revoked: MESH_CONFLICT.
 */
export const revocationRoutes: FastifyPluginAsync<RevocationRoutesInit> = async (fastify, init) => {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  const authenticate = app.requireSession
  const { revocations } = init

  app.get(
    routes.listDelegations.path,
    { onRequest: authenticate, schema: { response: { 200: routes.listDelegations.response } } },
    async () => revocations.list(),
  )

  app.post(
    routes.recordDelegation.path,
    {
      onRequest: authenticate,
      schema: { body: routes.recordDelegation.body, response: { 201: routes.recordDelegation.response } },
    },
    async (request, reply) => {
      const record = await revocations.record(request.body.delegation, sessionOf(request).did)
      return reply.status(201).send(record)
    },
  )

  app.post(
    routes.revoke.path,
    {
      onRequest: authenticate,
      schema: { body: routes.revoke.body, response: { 200: routes.revoke.response } },
    },
    async (request) => {
      sessionOf(request)
      const { cid, ucan, delegation, credentials, presentation } = request.body
      return revocations.revoke({
        cid,
        ucan,
        ...(delegation !== undefined ? { delegation } : {}),
        ...(credentials !== undefined ? { credentials } : {}),
        ...(presentation !== undefined ? { presentation } : {}),
      })
    },
  )
}
