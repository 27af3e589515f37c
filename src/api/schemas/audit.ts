import {
  BOOLEAN,
  DID_KEY,
  INTEGER,
  NULLABLE_STRING,
  nullableObject,
  optionalObject,
  pageOf,
  pageQuery,
  STRING,
  strictObject,
} from './common.ts'

/** The audit log (SPEC §3 `GET /api/audit`, `/api/audit/verify`, `/api/audit/checkpoint`). */

/** Longest action name (audit/audit-row.ts AUDIT_LIMITS.maxActionLength). */
export const AUDIT_MAX_ACTION_LENGTH = 128

export const AUDIT_PROBLEM_KINDS = [
  'altered',
  'removed',
  'reordered',
  'bad-signature',
  'truncated',
  'unknown-signer',
  'rolled-back',
] as const

// Numbers are matched as digits here and range-checked by AuditLog.list, which owns the rules.
export const auditQuerySchema = pageQuery(
  { type: 'string', pattern: '^[0-9]{1,15}$' },
  {
    action: { type: 'string', pattern: `^[a-z0-9_.-]{1,${AUDIT_MAX_ACTION_LENGTH}}$` },
    // newest first, where a person reads a log (issue 14); `before` is then the cursor
    order: { type: 'string', enum: ['oldest', 'newest'] },
    before: { type: 'string', pattern: '^[0-9]{1,15}$' },
  },
)

export const auditRowSchema = strictObject(
  {
    seq: INTEGER,
    ts: STRING,
    action: STRING,
    actor: NULLABLE_STRING,
    subject: NULLABLE_STRING,
    details: { type: 'object', additionalProperties: true },
    prev: STRING,
    hash: STRING,
    signer: STRING,
    signature: STRING,
  },
  ['seq', 'ts', 'action', 'actor', 'subject', 'details', 'prev', 'hash', 'signer', 'signature'],
)

export const auditPageSchema = strictObject(
  {
    ...pageOf('entries', auditRowSchema, { type: ['integer', 'null'] }).properties,
    /** What a person calls the page's actors and subjects (issue 14), when this mesh knows. */
    names: { type: 'object', additionalProperties: { type: 'string' } },
  },
  ['entries', 'nextCursor'],
)

export const auditReportSchema = strictObject(
  {
    ok: BOOLEAN,
    count: INTEGER,
    head: nullableObject({ seq: INTEGER, hash: STRING }, ['seq', 'hash']),
    problems: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['seq', 'kind', 'message'],
        properties: {
          seq: INTEGER,
          kind: { type: 'string', enum: AUDIT_PROBLEM_KINDS },
          message: STRING,
        },
      },
    },
  },
  ['ok', 'count', 'head', 'problems'],
)

/** A signed checkpoint of an audit log (audit/checkpoint.ts says what each field means). */
export const checkpointSchema = strictObject(
  {
    mesh: DID_KEY,
    size: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    head: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    ts: { type: 'string', maxLength: 32 },
    signer: DID_KEY,
    sig: { type: 'string', pattern: '^[A-Za-z0-9_-]{86}$' },
  },
  ['mesh', 'size', 'head', 'ts', 'signer', 'sig'],
)

// A signed checkpoint is ~400 bytes of JSON; its base64url form fits well within this.
const MAX_CHECKPOINT_PARAM = 2048

export const verifyQuerySchema = optionalObject({
  /** base64url of a checkpoint's JSON. */
  checkpoint: { type: 'string', maxLength: MAX_CHECKPOINT_PARAM, pattern: '^[A-Za-z0-9_-]+$' },
})

export const verifyBodySchema = strictObject({ checkpoint: checkpointSchema }, ['checkpoint'])
