import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyPluginAsync } from 'fastify'
import {
  consistencyProofSchema,
  consistencyQuerySchema,
  defectionListSchema,
  defectionParamsSchema,
  defectionSchema,
  inclusionProofSchema,
  inclusionQuerySchema,
  treeHeadSchema,
} from '../../api/index.ts'
import type { AuditLog, HeadBook } from '../../audit/index.ts'
import { NotFoundError } from '../../errors.ts'

export interface AuditMerkleRoutesInit {
  audit: Pick<AuditLog, 'treeHead' | 'inclusionProof' | 'consistencyProof'>
  /** The defections found or shown (none until the audit protocol runs). */
  heads?: () => Pick<HeadBook, 'defections' | 'defection'> | undefined
}

/**
 * The audit log as a Merkle log (SPEC §11), for the mesh's own humans and agents (peers
 * use `/mesh/audit/1.0.0`):
 * - `GET /api/audit/sth` → the signed tree head now, `{mesh, size, root, ts, key, sig}`;
 * - `GET /api/audit/proof/inclusion?seq=&size=` → row `seq` with its audit path in the
 *   log of `size` rows (default: now), and the head now;
 * - `GET /api/audit/proof/consistency?from=&to=` → the proof that the log of `to` rows
 *   (default: now) extends the log of `from` rows, and the head now.
 * Positions that are not digits, seq 0, a seq past `size` or `from` past `to` are
 * MESH_BAD_REQUEST; a position past the log's size MESH_NOT_FOUND.
 * - `GET /api/federation/defections` → `{defections: [{mesh, at, source, proof}]}`: the
 *   meshes caught signing two logs, each with its self-contained proof;
 *   `GET /api/federation/defections/:did` → one (MESH_NOT_FOUND when none), what
 *   `mesh audit proof <did>` saves and `mesh audit check <file>` verifies offline.
 * All need a session.
 */
export const auditMerkleRoutes: FastifyPluginAsync<AuditMerkleRoutesInit> = async (fastify, init) => {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  app.get(
    '/api/audit/sth',
    { onRequest: app.requireSession, schema: { response: { 200: treeHeadSchema } } },
    async () => init.audit.treeHead(),
  )

  app.get(
    '/api/audit/proof/inclusion',
    {
      onRequest: app.requireSession,
      schema: { querystring: inclusionQuerySchema, response: { 200: inclusionProofSchema } },
    },
    async (request) => {
      const { seq, size } = request.query
      return init.audit.inclusionProof(Number(seq), size === undefined ? undefined : Number(size))
    },
  )

  app.get(
    '/api/audit/proof/consistency',
    {
      onRequest: app.requireSession,
      schema: { querystring: consistencyQuerySchema, response: { 200: consistencyProofSchema } },
    },
    async (request) => {
      const { from, to } = request.query
      return init.audit.consistencyProof(Number(from), to === undefined ? undefined : Number(to))
    },
  )

  app.get(
    '/api/federation/defections',
    { onRequest: app.requireSession, schema: { response: { 200: defectionListSchema } } },
    async () => ({ defections: (await init.heads?.()?.defections()) ?? [] }),
  )

  app.get(
    '/api/federation/defections/:did',
    {
      onRequest: app.requireSession,
      schema: { params: defectionParamsSchema, response: { 200: defectionSchema } },
    },
    async (request) => {
      const found = await init.heads?.()?.defection(request.params.did)
      if (found === undefined)
        throw new NotFoundError('no defection of this mesh', { mesh: request.params.did })
      return found
    },
  )
}
