import {
  BOOLEAN,
  DID,
  DID_KEY,
  NULLABLE_STRING,
  optionalObject,
  pageOf,
  pageQuery,
  STRING,
  strictObject,
} from './common.ts'

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
/** History a newly sharing peer gets (SPEC §9): messages; `0` none, `null` all. */
const backfillLimit = { type: ['integer', 'null'], minimum: 0, maximum: POLICY_LIMITS.maxInt } as const

const policyFields = {
  mode: { type: 'string', enum: POLICY_MODES },
  allow: didList,
  deny: didList,
  autoAccept: BOOLEAN,
  maxForeignParticipantsPerRoom: bound,
  maxBackfillEventsPerRequest: bound,
  backfillLimit,
  // room lifecycle (SPEC §9): accept every room shared with this mesh at once (default
  // false: each share waits for a human); optional in a PUT, always in a GET
  autoAcceptRooms: BOOLEAN,
} as const

/** The fields every policy body names (`backfillLimit`, `autoAcceptRooms` came later: see `policyPutSchema`). */
const putRequired = [
  'mode',
  'allow',
  'deny',
  'autoAccept',
  'maxForeignParticipantsPerRoom',
  'maxBackfillEventsPerRequest',
] as const

/** The whole policy object: `GET`, `PUT` and `PATCH` answer it (unknown fields refused). */
export const policySchema = strictObject(policyFields, [...putRequired, 'backfillLimit', 'autoAcceptRooms'])

// history limit and PATCH (issue 13)
/**
 * What `PUT` takes: the whole policy; `backfillLimit` may be left out (then `null`,
 * all history), so that a policy written before it existed is still a valid body.
 */
export const policyPutSchema = strictObject(policyFields, putRequired)

/** What `PATCH` takes: only the fields it changes (a list replaces the whole list). */
export const policyPatchSchema = optionalObject(policyFields)

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
