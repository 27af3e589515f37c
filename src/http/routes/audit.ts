import type { ServerResponse } from 'node:http'
import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import type { FastifyPluginAsync } from 'fastify'
import {
  auditPageSchema,
  auditQuerySchema,
  auditReportSchema,
  checkpointSchema,
  verifyBodySchema,
  verifyQuerySchema,
} from '../../api/index.ts'
import {
  AUDIT_LIST_LIMITS,
  type AuditLog,
  type AuditVerifyReport,
  parseCheckpoint,
} from '../../audit/index.ts'
import { BadRequestError } from '../../errors.ts'

export interface AuditRoutesInit {
  audit: AuditLog
  /** What a person calls each did (node/names.ts): a page names its actors and subjects. */
  names?: { namesOf(dids: Iterable<string>): Promise<Map<string, string>> }
}

/**
 * `GET /api/audit?after=&limit=&action=&order=&before=` → `{entries, nextCursor, names}` (rows as stored,
 * hash and signature included, so a client can check them itself);
 * `GET /api/audit/verify` → `{ok, count, head, problems}`; a log with problems is
 * still a 200: the report is the answer. With a checkpoint saved earlier —
 * `GET /api/audit/verify?checkpoint=<base64url of its JSON>` or
 * `POST /api/audit/verify {checkpoint}` — the log must also extend it (a truncation
 * whose head was rolled back too shows only this way); a checkpoint that is malformed
 * is MESH_BAD_REQUEST, one not signed by this mesh's keys MESH_SIGNATURE_MISMATCH.
 * `GET /api/audit/checkpoint` → the log's current signed checkpoint, to keep outside
 * the node. All need a session.
 */
export const auditRoutes: FastifyPluginAsync<AuditRoutesInit> = async (fastify, init) => {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>()
  app.get(
    '/api/audit',
    {
      onRequest: app.requireSession,
      schema: { querystring: auditQuerySchema, response: { 200: auditPageSchema } },
    },
    async (request, reply) => {
      const { after, limit, action, order, before } = request.query
      const page = await init.audit.list(
        {
          after: after === undefined ? undefined : Number(after),
          limit: limit === undefined ? AUDIT_LIST_LIMITS.defaultLimit : Number(limit),
          action,
          ...(order !== undefined ? { order } : {}),
          ...(before !== undefined ? { before: Number(before) } : {}),
        },
        { signal: abortOnHangUp(reply.raw) },
      )
      if (init.names === undefined) return page
      const dids = new Set<string>()
      for (const row of page.entries) for (const did of [row.actor, row.subject]) if (did) dids.add(did)
      return { ...page, names: Object.fromEntries(await init.names.namesOf(dids)) }
    },
  )

  const verify = async (checkpoint: unknown, raw: ServerResponse): Promise<AuditVerifyReport> => {
    if (checkpoint === undefined) return init.audit.verify({ signal: abortOnHangUp(raw) })
    const saved = parseCheckpoint(checkpoint, init.audit.knownKeys())
    if (saved.mesh !== init.audit.mesh) {
      throw new BadRequestError('the checkpoint is of another mesh', { mesh: saved.mesh })
    }
    return init.audit.verify({
      checkpoint: { seq: saved.size, hash: saved.head },
      signal: abortOnHangUp(raw),
    })
  }

  app.get(
    '/api/audit/verify',
    {
      onRequest: app.requireSession,
      schema: { querystring: verifyQuerySchema, response: { 200: auditReportSchema } },
    },
    async (request, reply) => {
      const param = request.query.checkpoint
      let checkpoint: unknown
      if (param !== undefined) {
        try {
          checkpoint = JSON.parse(Buffer.from(param, 'base64url').toString('utf8')) as unknown
        } catch {
          throw new BadRequestError('checkpoint must be the base64url of a checkpoint’s JSON')
        }
      }
      return verify(checkpoint, reply.raw)
    },
  )

  app.post(
    '/api/audit/verify',
    {
      onRequest: app.requireSession,
      schema: { body: verifyBodySchema, response: { 200: auditReportSchema } },
    },
    async (request, reply) => verify(request.body.checkpoint, reply.raw),
  )

  app.get(
    '/api/audit/checkpoint',
    { onRequest: app.requireSession, schema: { response: { 200: checkpointSchema } } },
    async () => init.audit.checkpoint(),
  )
}

// A full verify reads the whole log; a client that hung up should not keep it going.
// The response's 'close' (not the request's, which fires once the body is read) with
// nothing written yet means the client left.
function abortOnHangUp(raw: ServerResponse): AbortSignal {
  const controller = new AbortController()
  raw.once('close', () => {
    if (!raw.writableEnded) controller.abort()
  })
  return controller.signal
}
