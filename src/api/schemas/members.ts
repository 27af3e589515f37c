import { DID, DID_KEY, JWT, listOf, STRING, strictObject, UCAN } from './common.ts'
import { MEMBER_ROLES, roomParamsSchema } from './rooms.ts'

/** Members: the mesh's many principals, humans and agents (SPEC §8). */

export const MEMBER_KINDS = ['human', 'agent'] as const
const KIND = { type: 'string', enum: MEMBER_KINDS } as const

/** A member's display name (`--name`) and its mesh role: short, printable text. */
const MEMBER_NAME = { type: 'string', minLength: 1, maxLength: 64 } as const
const MESH_ROLE = { type: 'string', minLength: 1, maxLength: 64 } as const

/** One member of the mesh, as `GET /api/members` lists it. */
export const meshMemberSchema = strictObject(
  {
    did: STRING,
    kind: KIND,
    name: STRING,
    /** `@local_id` on this mesh. */
    localId: STRING,
    role: STRING,
    tier: { type: 'integer', minimum: 1, maximum: 4 },
    enrolledAt: STRING,
    /** The did of the human whose act enrolled it. */
    enrolledBy: STRING,
  },
  ['did', 'kind', 'name', 'localId', 'role', 'tier', 'enrolledAt', 'enrolledBy'],
)

export const meshMemberListSchema = listOf('members', meshMemberSchema)

/** `POST /api/members`: `ucan` is a human's `mesh/enrol` (with = the mesh did, nb {did, kind, role}). */
export const enrolBodySchema = strictObject(
  { did: DID_KEY, kind: KIND, name: MEMBER_NAME, role: MESH_ROLE, ucan: UCAN },
  ['did', 'kind', 'name', 'ucan'],
)

export const memberParamsSchema = strictObject({ did: DID_KEY }, ['did'])

/** `GET /api/members/:did/credential`: the membership credential (VC-JWT by the mesh key). */
export const memberCredentialSchema = strictObject({ vc: JWT }, ['vc'])

/** `DELETE /api/members/:did`: `ucan` is a human's `mesh/remove` (nb {did}). */
export const removeMemberBodySchema = strictObject({ ucan: UCAN }, ['ucan'])

// room member roles (set by the room's owner or a moderator)
export const roomMemberParamsSchema = strictObject({ id: roomParamsSchema.properties.id, did: DID }, [
  'id',
  'did',
])

export const roomRoleBodySchema = strictObject({ role: { type: 'string', enum: MEMBER_ROLES } }, ['role'])
