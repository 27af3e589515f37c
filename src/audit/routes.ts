import type { ServerResponse } from 'node:http'
import type { FastifyInstance, onRequestAsyncHookHandler } from 'fastify'
import { BadRequestError } from '../errors.ts'
import { AUDIT_LIST_LIMITS, AUDIT_PROBLEM_KINDS, type AuditLog, type AuditVerifyReport } from './audit-log.ts'
import { AUDIT_LIMITS } from './audit-row.ts'
import { checkpointSchema, parseCheckpoint } from './checkpoint.ts'

export interface AuditRoutesInit {
  audit: AuditLog
  /** Admits a request or throws (e.g. `requireSession(sessions)`); runs before both routes. */
  authenticate: onRequestAsyncHookHandler
}

interface ListQuerystring {
  after?: string
  limit?: string
  action?: string
}

// Query values arrive as strings and the app does not coerce them: numbers are matched
// as digits here, and range-checked by AuditLog.list, which owns the rules.
const listQuerystringSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    after: { type: 'string', pattern: '^[0-9]{1,15}$' },
    limit: { type: 'string', pattern: '^[0-9]{1,3}$' },
    action: { type: 'string', pattern: `^[a-z0-9_.-]{1,${AUDIT_LIMITS.maxActionLength}}$` },
  },
} as const

interface VerifyQuerystring {
  checkpoint?: string
}

// A signed checkpoint is ~400 bytes of JSON; its base64url form fits well within this.
const MAX_CHECKPOINT_PARAM = 2048

const verifyQuerystringSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    checkpoint: { type: 'string', maxLength: MAX_CHECKPOINT_PARAM, pattern: '^[A-Za-z0-9_-]+$' },
  },
} as const

const verifyBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['checkpoint'],
  properties: { checkpoint: checkpointSchema },
} as const

const nullableString = { type: ['string', 'null'] } as const

const rowSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['seq', 'ts', 'action', 'actor', 'subject', 'details', 'prev', 'hash', 'signer', 'signature'],
  properties: {
    seq: { type: 'integer' },
    ts: { type: 'string' },
    action: { type: 'string' },
    actor: nullableString,
    subject: nullableString,
    details: { type: 'object', additionalProperties: true },
    prev: { type: 'string' },
    hash: { type: 'string' },
    signer: { type: 'string' },
    signature: { type: 'string' },
  },
} as const

const headSchema = {
  type: ['object', 'null'],
  additionalProperties: false,
  required: ['seq', 'hash'],
  properties: { seq: { type: 'integer' }, hash: { type: 'string' } },
} as const

const pageSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['entries', 'nextCursor'],
  properties: {
    entries: { type: 'array', items: rowSchema },
    nextCursor: { type: ['integer', 'null'] },
  },
} as const

const reportSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['ok', 'count', 'head', 'problems'],
  properties: {
    ok: { type: 'boolean' },
    count: { type: 'integer' },
    head: headSchema,
    problems: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['seq', 'kind', 'message'],
        properties: {
          seq: { type: 'integer' },
          kind: { type: 'string', enum: AUDIT_PROBLEM_KINDS },
          message: { type: 'string' },
        },
      },
    },
  },
} as const

/**
 * `GET /api/audit?after=&limit=&action=` → `{entries, nextCursor}` (rows as stored,
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
export function registerAuditRoutes(app: FastifyInstance, init: AuditRoutesInit): void {
  app.get<{ Querystring: ListQuerystring }>(
    '/api/audit',
    {
      onRequest: init.authenticate,
      schema: { querystring: listQuerystringSchema, response: { 200: pageSchema } },
    },
    async (request, reply) => {
      const { after, limit, action } = request.query
      return init.audit.list(
        {
          after: after === undefined ? undefined : Number(after),
          limit: limit === undefined ? AUDIT_LIST_LIMITS.defaultLimit : Number(limit),
          action,
        },
        { signal: abortOnHangUp(reply.raw) },
      )
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

  app.get<{ Querystring: VerifyQuerystring }>(
    '/api/audit/verify',
    {
      onRequest: init.authenticate,
      schema: { querystring: verifyQuerystringSchema, response: { 200: reportSchema } },
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

  app.post<{ Body: { checkpoint: unknown } }>(
    '/api/audit/verify',
    {
      onRequest: init.authenticate,
      schema: { body: verifyBodySchema, response: { 200: reportSchema } },
    },
    async (request, reply) => verify(request.body.checkpoint, reply.raw),
  )

  app.get(
    '/api/audit/checkpoint',
    { onRequest: init.authenticate, schema: { response: { 200: checkpointSchema } } },
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
