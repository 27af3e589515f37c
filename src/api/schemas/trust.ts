import {
  BOOLEAN,
  CREDENTIALS,
  DID,
  INTEGER,
  NUMBER,
  optionalObject,
  PRESENTATION,
  STRING,
  strictObject,
  UCAN,
} from './common.ts'

/** Trust, authority, the mesh's keys and cross-mesh invocation (SPEC §3, §4). */

export const TRUST_SCOPES = ['principal', 'mesh'] as const
const SCOPE = { type: 'string', enum: TRUST_SCOPES } as const

/** A trust record as the API shows it (`recentRefusals` as a count). */
export const trustRecordSchema = strictObject(
  {
    did: STRING,
    /** What a person calls it (issue 14: names, not dids), when this mesh knows. */
    name: STRING,
    scope: SCOPE,
    local: BOOLEAN,
    kind: STRING,
    role: STRING,
    mesh: STRING,
    tier: { type: 'integer', minimum: 1, maximum: 4 },
    accepted: INTEGER,
    refused: INTEGER,
    score: NUMBER,
    recentRefusals: { type: 'integer', description: 'refusals within the violation window' },
    lastReason: STRING,
    lastInteractionAt: STRING,
    tierChangedAt: STRING,
    tierReason: STRING,
    tierChangedBy: STRING,
    flagged: {
      type: 'object',
      description:
        'a human of this mesh at tier 1–2 whose refusals crossed the violation threshold (never demoted automatically)',
      additionalProperties: false,
      required: ['at', 'reason', 'count'],
      properties: { at: STRING, reason: STRING, count: INTEGER },
    },
  },
  ['did', 'scope', 'local', 'tier', 'accepted', 'refused', 'score'],
)

export const trustListSchema = strictObject(
  {
    principals: { type: 'array', items: trustRecordSchema },
    meshes: { type: 'array', items: trustRecordSchema },
  },
  ['principals', 'meshes'],
)

export const trustParamsSchema = strictObject({ did: DID }, ['did'])

export const trustQuerySchema = optionalObject({ scope: SCOPE })

/** `PUT /api/trust/:did`: `ucan` is a local human's `trust/promote` with the same subject, tier and reason. */
export const trustBodySchema = strictObject(
  {
    tier: { type: 'integer', minimum: 2, maximum: 4 },
    reason: { type: 'string', minLength: 1, maxLength: 512 },
    ucan: UCAN,
    scope: SCOPE,
    credentials: CREDENTIALS,
    presentation: PRESENTATION,
  },
  ['tier', 'reason', 'ucan'],
)

/** The mesh key's delegation to its architect, the root of every local chain. */
export const rootDelegationSchema = strictObject(
  {
    token: STRING,
    cid: STRING,
    exp: NUMBER,
    architect: STRING,
  },
  ['token', 'cid', 'exp', 'architect'],
)

const rotationRecordSchema = {
  type: 'object',
  additionalProperties: true,
  required: ['identity', 'previous', 'next', 'seq', 'ts'],
  properties: {
    identity: STRING,
    previous: STRING,
    next: STRING,
    seq: INTEGER,
    ts: INTEGER,
  },
} as const

/** `GET /api/keys`. */
export const keysViewSchema = strictObject(
  {
    /** The mesh's identity: its genesis did, which never changes. */
    identity: STRING,
    current: STRING,
    keys: { type: 'array', items: STRING },
    rotations: { type: 'array', items: rotationRecordSchema },
  },
  ['identity', 'current', 'keys', 'rotations'],
)

/** `POST /api/keys/rotate` (architect only): a `mesh/rotate-key` act on the current did. */
export const rotateBodySchema = strictObject({ ucan: UCAN }, ['ucan'])

export const rotationResultSchema = strictObject(
  {
    identity: STRING,
    previous: STRING,
    did: STRING,
    peerId: STRING,
    seq: INTEGER,
    /** Peers the rotation was queued for (delivered through the outbox). */
    announcedTo: { type: 'array', items: STRING },
  },
  ['identity', 'previous', 'did', 'peerId', 'seq', 'announcedTo'],
)

/** `POST /api/invoke`: an `agent/invoke`; the invocation is the caller's authentication. */
export const invokeBodySchema = strictObject(
  { ucan: UCAN, credentials: CREDENTIALS, presentation: PRESENTATION },
  ['ucan'],
)

export const invokeResultSchema = strictObject(
  {
    agent: STRING,
    ability: STRING,
    invoker: STRING,
    /** CID of the (now spent) invocation. */
    invocation: STRING,
    tier: INTEGER,
    human: { type: ['string', 'null'] },
    result: {},
  },
  ['agent', 'ability', 'invoker', 'invocation', 'tier', 'human', 'result'],
)
