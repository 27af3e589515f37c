import { DID_KEY, listOf, NULLABLE_STRING, STRING, strictObject, UCAN } from './common.ts'
import { ROOM_ID, shareViewSchema } from './rooms.ts'

/**
 * Room lifecycle and consent (SPEC §9): invitations (a share that arrived, waiting for
 * a human of this mesh), unshare (the home mesh) and leave (the receiving mesh).
 */

export const INVITATION_STATUSES = ['pending', 'accepted', 'declined'] as const
/** An invitation id: 22 base64url characters (derived from the room and the sharing mesh). */
export const INVITATION_ID = { type: 'string', pattern: '^[0-9a-f]{32}$' } as const

export const invitationParamsSchema = strictObject({ id: INVITATION_ID }, ['id'])

/** `POST /api/rooms/invitations/:id/accept|decline {ucan}`, `POST /api/rooms/:id/leave {ucan}`. */
export const lifecycleActBodySchema = strictObject({ ucan: UCAN }, ['ucan'])

/** `POST /api/rooms/:id/unshare {mesh, ucan}`. */
export const unshareBodySchema = strictObject({ mesh: DID_KEY, ucan: UCAN }, ['mesh', 'ucan'])

export const invitationSchema = strictObject(
  {
    id: STRING,
    room: ROOM_ID,
    name: STRING,
    topic: STRING,
    homeMesh: STRING,
    /** The mesh that shared the room. */
    peer: STRING,
    peerName: NULLABLE_STRING,
    status: { type: 'string', enum: INVITATION_STATUSES },
    receivedAt: STRING,
    answeredAt: STRING,
    /** The local principal who answered, `policy` (autoAcceptRooms), or a DM's principal. */
    answeredBy: STRING,
    dm: STRING,
    endedAt: STRING,
    endedBy: { type: 'string', enum: ['unshare', 'leave'] },
  },
  ['id', 'room', 'name', 'topic', 'homeMesh', 'peer', 'peerName', 'status', 'receivedAt'],
)

export const invitationListSchema = listOf('invitations', invitationSchema)

/** What `leave` ended: every incoming share of the room. */
export const leftSchema = listOf('shares', shareViewSchema)
