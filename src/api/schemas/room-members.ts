import { DID_KEY, strictObject, UCAN } from './common.ts'
import { MEMBER_ROLES, ROOM_ID } from './rooms.ts'

/**
 * Room roles (SPEC §9): the room's owner or a moderator sets a member's role,
 * `PUT /api/rooms/:id/members/:did {role, ucan}` → the member (rooms.ts `memberSchema`);
 * `ucan`: the actor's chain invoking `room/role` on the room with `nb: {did, role}`.
 */
export const roomMemberParamsSchema = strictObject({ id: ROOM_ID, did: DID_KEY }, ['id', 'did'])

export const setRoomRoleBodySchema = strictObject(
  { role: { type: 'string', enum: MEMBER_ROLES }, ucan: UCAN },
  ['role', 'ucan'],
)
