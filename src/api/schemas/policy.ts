import { BOOLEAN, DID, DID_KEY, NULLABLE_STRING, pageOf, pageQuery, STRING, strictObject } from './common.ts'

/** Federation policy and the log of refusals (SPEC §3). */

export const POLICY_MODES = ['open', 'allowlist', 'closed'] as const
export const POLICY_LIMITS = { maxListLength: 1000, maxInt: 100_000 } as const

const didList = {
  type: 'array',
  maxItems: POLICY_LIMITS.maxListLength,
  uniqueItems: true,
  items: DID_KEY,
} as const
const bound = { type: 'integer', minimum: 0, maximum: POLICY_LIMITS.maxInt } as const

/** The whole policy object: `GET` answers it, `PUT` takes it (unknown fields refused). */
export const policySchema = strictObject(
  {
    mode: { type: 'string', enum: POLICY_MODES },
    allow: didList,
    deny: didList,
    autoAccept: BOOLEAN,
    maxForeignParticipantsPerRoom: bound,
    maxBackfillEventsPerRequest: bound,
    // room lifecycle (SPEC §9): accept every room shared with this mesh at once (default
    // false: each share waits for a human); optional in a PUT, always in a GET
    autoAcceptRooms: BOOLEAN,
  },
  ['mode', 'allow', 'deny', 'autoAccept', 'maxForeignParticipantsPerRoom', 'maxBackfillEventsPerRequest'],
)

/**
 * `GET /api/federation/rejected?after=&limit=&peer=&code=`. `code` is one of the error
 * table's codes; the route narrows it to exactly those (src/errors.ts), the contract
 * does not import the table.
 */
export const rejectedQuerySchema = pageQuery(
  { type: 'string', pattern: '^[0-9]{16}$' },
  {
    peer: { ...DID, maxLength: 128 },
    code: { type: 'string', pattern: '^MESH_[A-Z_]+$' },
  },
)

export const rejectedEntrySchema = strictObject(
  {
    id: STRING,
    at: STRING,
    peer: NULLABLE_STRING,
    kind: STRING,
    code: STRING,
    reason: STRING,
    details: { type: 'object', additionalProperties: true },
  },
  ['id', 'at', 'peer', 'kind', 'code', 'reason', 'details'],
)

export const rejectedPageSchema = pageOf('entries', rejectedEntrySchema, NULLABLE_STRING)
