import { DID_KEY, INTEGER, STRING, strictObject, UCAN } from './common.ts'

/** Members: the mesh's humans and agents, their enrolment and removal (SPEC §8). */

export const MEMBER_KINDS = ['human', 'agent'] as const
const KIND = { type: 'string', enum: MEMBER_KINDS } as const

/** A member's local name: how rooms show it (`@name:mesh`); unique in the mesh. */
export const MEMBER_NAME = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' } as const
/** A member's role: a label of the mesh's (default `user` for a human, `agent` for an agent). */
export const MEMBER_ROLE = { type: 'string', pattern: '^[a-z][a-z0-9-]{0,31}$' } as const

export const meshMemberSchema = strictObject(
  {
    did: STRING,
    kind: KIND,
    name: STRING,
    localId: STRING,
    role: STRING,
    tier: { type: 'integer', minimum: 1, maximum: 4 },
    enrolledAt: STRING,
    enrolledBy: STRING,
  },
  ['did', 'kind', 'name', 'localId', 'role', 'tier', 'enrolledAt', 'enrolledBy'],
)

export const meshMemberListSchema = strictObject({ members: { type: 'array', items: meshMemberSchema } }, [
  'members',
])

export const meshMemberParams = strictObject({ did: DID_KEY }, ['did'])

/** `POST /api/members`: `ucan` is a `mesh/enrol` act with `nb: {did, kind, role}` (role: the default when not given). */
export const enrolBodySchema = strictObject(
  { did: DID_KEY, kind: KIND, name: MEMBER_NAME, role: MEMBER_ROLE, ucan: UCAN },
  ['did', 'kind', 'name', 'ucan'],
)

/** `DELETE /api/members/:did`: `ucan` is a `mesh/remove` act with `nb: {did}`. */
export const removeBodySchema = strictObject({ ucan: UCAN }, ['ucan'])

/** `GET /api/members/:did/credential`: the membership credential, a VC-JWT by the mesh key. */
export const memberCredentialSchema = strictObject({ vc: STRING }, ['vc'])

/** What the membership credential says, checked (`POST /api/members/credential/verify`). */
export const membershipSchema = strictObject(
  {
    id: STRING,
    kind: KIND,
    role: STRING,
    tier: INTEGER,
    mesh: STRING,
    meshName: STRING,
    exp: INTEGER,
    credential: STRING,
  },
  ['id', 'kind', 'role', 'tier', 'mesh', 'meshName', 'exp', 'credential'],
)

export const verifyCredentialBodySchema = strictObject(
  { vc: { type: 'string', minLength: 1, maxLength: 8192 } },
  ['vc'],
)
