import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyPluginAsync } from 'fastify'
import { routes } from '../../api/index.ts'
import { type MemberService, toMeshError } from '../../auth/index.ts'

export interface MemberRoutesInit {
  members: MemberService
}

/**
 * Members (SPEC §8), behind a session:
 *
 * - `GET /api/members` → `{members: [{did, kind, name, localId, role, tier, enrolledAt, enrolledBy}]}`
 *   (the architect first).
 * - `POST /api/members {did, kind, name, role?, ucan}` → `201` member — `ucan` is a
 *   `mesh/enrol` act (with = the mesh, `nb: {did, kind, role}`) of the architect or a
 *   human member at tier ≤ 2.
 * - `GET /api/members/:did/credential` → `{vc}`: its membership credential (VC-JWT by the mesh key).
 * - `POST /api/members/credential/verify {vc}` → what a membership credential of this
 *   mesh says, or `MESH_VC_INVALID` (another mesh's, expired, revoked, forged).
 * - `DELETE /api/members/:did {ucan}` → `204` — a `mesh/remove` act: its sessions end,
 *   its credential is revoked, its old chains are refused, it leaves the book.
 */
export const memberRoutes: FastifyPluginAsync<MemberRoutesInit> = async (fastify, init) => {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  const authenticate = app.requireSession
  const { members } = init

  app.get(
    routes.listMembers.path,
    { onRequest: authenticate, schema: { response: { 200: routes.listMembers.response } } },
    async () => ({ members: await members.list() }),
  )

  app.post(
    routes.enrolMember.path,
    {
      onRequest: authenticate,
      schema: { body: routes.enrolMember.body, response: { 201: routes.enrolMember.response } },
    },
    async (request, reply) => {
      const { did, kind, name, role, ucan } = request.body
      const member = await members.enrol({ did, kind, name, ucan, ...(role !== undefined ? { role } : {}) })
      return reply.status(201).send(member)
    },
  )

  app.get(
    routes.memberCredential.path,
    {
      onRequest: authenticate,
      schema: { params: routes.memberCredential.params, response: { 200: routes.memberCredential.response } },
    },
    async (request) => ({ vc: await members.credential(request.params.did) }),
  )

  app.post(
    routes.verifyMemberCredential.path,
    {
      onRequest: authenticate,
      schema: {
        body: routes.verifyMemberCredential.body,
        response: { 200: routes.verifyMemberCredential.response },
      },
    },
    async (request) => {
      const result = await members.verify(request.body.vc)
      if (result.error !== undefined) throw toMeshError(result.error)
      return result.ok
    },
  )

  app.delete(
    routes.removeMember.path,
    {
      onRequest: authenticate,
      schema: { params: routes.removeMember.params, body: routes.removeMember.body },
    },
    async (request, reply) => {
      await members.remove({ did: request.params.did, ucan: request.body.ucan })
      return reply.status(204).send()
    },
  )
}
