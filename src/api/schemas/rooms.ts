import {
  BOOLEAN,
  DID_KEY,
  INTEGER,
  idParams,
  listOf,
  NULLABLE_STRING,
  NUMBER,
  nullableObject,
  optionalObject,
  pageOf,
  pageQuery,
  STRING,
  strictObject,
  UCAN,
} from './common.ts'
import { attachmentsSchema } from './files.ts' // files in rooms (issue 18)

/**
 * Rooms (SPEC §3): create, list, read, post, react, redact, members, notifications,
 * sharing, federated DMs, the catch-up view and y-websocket tickets. These routes are
 * served without response schemas; the response schemas describe what they send.
 */

/** Bounds on what a client may write (rooms/room-entries.ts ROOM_LIMITS; a test keeps them equal). */
export const ROOM_API_LIMITS = {
  maxBodyBytes: 8 * 1024,
  maxEmojiBytes: 32,
  maxNameLength: 128,
  maxTopicLength: 1024,
  maxReasonLength: 512,
} as const

export const ROOM_VISIBILITIES = ['public', 'invite'] as const
export const MEMBER_ROLES = ['owner', 'moderator', 'member', 'read-only'] as const

/** A room id as routes take it (also the y-websocket's path). */
export const ROOM_ID = { type: 'string', pattern: '^[A-Za-z0-9_-]{8,64}$' } as const
/** A message (or other entry) id: base64url of a SHA-256. */
export const ENTRY_ID = { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' } as const

export const roomParamsSchema = idParams(ROOM_ID)

export const messageParamsSchema = strictObject({ id: ROOM_ID, mid: ENTRY_ID }, ['id', 'mid'])

export const messagesQuerySchema = pageQuery(ENTRY_ID)
export const notificationsQuerySchema = pageQuery({ type: 'string', maxLength: 200 } as const)

export const createRoomBodySchema = strictObject(
  {
    name: { type: 'string', minLength: 1, maxLength: ROOM_API_LIMITS.maxNameLength },
    topic: { type: 'string', maxLength: ROOM_API_LIMITS.maxTopicLength },
    // Default `public`: every local principal may find and join it; `invite`: members only.
    visibility: { type: 'string', enum: ROOM_VISIBILITIES },
  },
  ['name'],
)

export const shareBodySchema = strictObject({ mesh: DID_KEY, ucan: UCAN }, ['mesh', 'ucan'])

export const federatedDmBodySchema = strictObject({ with: DID_KEY, mesh: DID_KEY, ucan: UCAN }, [
  'with',
  'ucan',
])

// `{did}`: a local principal; `{did, mesh?, ucan}`: a foreign participant under `room/invite` (issue 12)
export const inviteBodySchema = strictObject({ did: DID_KEY, mesh: DID_KEY, ucan: UCAN }, ['did'])

export const postMessageBodySchema = strictObject(
  {
    body: { type: 'string', minLength: 1, maxLength: ROOM_API_LIMITS.maxBodyBytes },
    replyTo: ENTRY_ID,
    attachments: attachmentsSchema, // files in rooms (issue 18)
  },
  ['body'],
)

export const reactionBodySchema = strictObject(
  { emoji: { type: 'string', minLength: 1, maxLength: ROOM_API_LIMITS.maxEmojiBytes } },
  ['emoji'],
)

/** Optional: `{}`, `{reason}` or no body at all (the route checks it itself). */
export const redactBodySchema = optionalObject({
  reason: { type: 'string', maxLength: ROOM_API_LIMITS.maxReasonLength },
})

/** `{id}` of what a write created. */
export const createdSchema = strictObject({ id: STRING }, ['id'])

/** The stored record of a room. */
export const roomRecordSchema = strictObject(
  {
    id: STRING,
    name: STRING,
    topic: STRING,
    homeMesh: STRING,
    createdBy: STRING,
    createdAt: STRING,
    /** Absent on records stored before visibility existed. */
    visibility: { type: 'string', enum: ROOM_VISIBILITIES },
    dm: { type: 'boolean', const: true },
    /** A room homed elsewhere: the local principal its share named. */
    admits: STRING,
  },
  ['id', 'name', 'topic', 'homeMesh', 'createdBy', 'createdAt'],
)

/** A DM's other members, by name (issue 14: its stored name is `dm <did tail>@<mesh>`). */
const dmWithSchema = {
  type: 'array',
  items: strictObject({ did: STRING, name: STRING }, ['did', 'name']),
} as const

const listedRoomSchema = {
  ...roomRecordSchema,
  required: [...roomRecordSchema.required, 'federated'],
  properties: { ...roomRecordSchema.properties, federated: BOOLEAN, with: dmWithSchema },
} as const

export const roomListSchema = listOf('rooms', listedRoomSchema)

export const shareViewSchema = strictObject(
  {
    room: STRING,
    peer: STRING,
    direction: { type: 'string', enum: ['out', 'in'] },
    createdAt: STRING,
    dm: STRING,
    // room lifecycle (SPEC §9): the invitation's answer, whether the room crosses the link, its end
    status: { type: 'string', enum: ['pending', 'accepted', 'declined'] },
    shared: BOOLEAN,
    endedAt: STRING,
    endedBy: { type: 'string', enum: ['unshare', 'leave'] },
  },
  ['room', 'peer', 'direction', 'createdAt'],
)

export const dmViewSchema = {
  ...shareViewSchema,
  required: [...shareViewSchema.required, 'name'],
  properties: { ...shareViewSchema.properties, name: STRING },
} as const

export const roomDetailSchema = {
  ...roomRecordSchema,
  required: [
    ...roomRecordSchema.required,
    'members',
    'messages',
    'role',
    'ownMesh',
    'federated',
    'shares',
    'stateVector',
  ],
  properties: {
    ...roomRecordSchema.properties,
    members: INTEGER,
    messages: INTEGER,
    role: { type: ['string', 'null'], enum: [...MEMBER_ROLES, null] },
    /** This mesh as rooms name it (its identity, stable across key rotations). */
    ownMesh: STRING,
    federated: BOOLEAN,
    shares: { type: 'array', items: shareViewSchema },
    /** The replica's Yjs state vector (base64): equal vectors mean equal replicas. */
    stateVector: STRING,
  },
} as const

export const memberSchema = strictObject(
  {
    did: STRING,
    /** `@local_id` or `@local_id:mesh-name`. */
    name: STRING,
    localId: STRING,
    mesh: STRING,
    meshName: STRING,
    role: { type: 'string', enum: MEMBER_ROLES },
    tier: { type: 'integer', enum: [1, 2, 3, 4] },
    local: BOOLEAN,
    /** Kinds across meshes: human or agent, from the member's credential by its mesh; absent when unknown. */
    kind: { type: 'string', enum: ['human', 'agent'] },
  },
  ['did', 'name', 'localId', 'mesh', 'meshName', 'role', 'tier', 'local'],
)

export const memberListSchema = listOf('members', memberSchema)

export const messageSchema = strictObject(
  {
    id: STRING,
    /** `@local_id` for a local author, `@local_id:mesh-name` for a foreign one. */
    author: STRING,
    authorDid: STRING,
    mesh: STRING,
    body: STRING,
    mentions: { type: 'array', items: STRING },
    ts: NUMBER,
    replyTo: STRING,
    redacted: { type: 'boolean', const: true },
    /** emoji → number of reactions. */
    reactions: { type: 'object', additionalProperties: INTEGER },
    attachments: attachmentsSchema, // files in rooms (issue 18)
  },
  ['id', 'author', 'authorDid', 'mesh', 'body', 'mentions', 'ts', 'reactions'],
)

export const messagePageSchema = pageOf('messages', messageSchema, NULLABLE_STRING)

export const notificationSchema = strictObject(
  {
    /** Also the paging cursor. */
    id: STRING,
    kind: { type: 'string', const: 'mention' },
    room: STRING,
    roomName: STRING,
    message: STRING,
    author: STRING,
    authorDid: STRING,
    mesh: STRING,
    body: STRING,
    ts: NUMBER,
  },
  ['id', 'kind', 'room', 'roomName', 'message', 'author', 'authorDid', 'mesh', 'body', 'ts'],
)

export const notificationPageSchema = pageOf('notifications', notificationSchema, NULLABLE_STRING)

const transferSchema = strictObject(
  {
    entries: INTEGER,
    bytes: INTEGER,
    chunks: INTEGER,
    entriesDone: INTEGER,
    bytesDone: INTEGER,
    chunksDone: INTEGER,
    startedAt: NULLABLE_STRING,
    doneAt: NULLABLE_STRING,
  },
  ['entries', 'bytes', 'chunks', 'entriesDone', 'bytesDone', 'chunksDone', 'startedAt', 'doneAt'],
)

/** `GET /api/rooms/:id/sync`: where each peer of a shared room stands. */
export const roomSyncSchema = strictObject(
  {
    room: STRING,
    homeMesh: STRING,
    federated: BOOLEAN,
    stateVector: STRING,
    messages: INTEGER,
    caughtUp: BOOLEAN,
    peers: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: [
          'peer',
          'name',
          'direction',
          'link',
          'lastError',
          'theirStateVector',
          'behind',
          'incoming',
          'outgoing',
          'caughtUp',
        ],
        properties: {
          peer: STRING,
          name: NULLABLE_STRING,
          direction: { type: 'string', enum: ['out', 'in'] },
          link: { type: 'string', enum: ['open', 'closed'] },
          lastError: nullableObject({ code: STRING, message: STRING, at: STRING }, ['code', 'message', 'at']),
          theirStateVector: NULLABLE_STRING,
          behind: nullableObject({ entries: INTEGER, bytes: INTEGER }, ['entries', 'bytes']),
          incoming: transferSchema,
          outgoing: transferSchema,
          caughtUp: BOOLEAN,
        },
      },
    },
  },
  ['room', 'homeMesh', 'federated', 'stateVector', 'messages', 'caughtUp', 'peers'],
)

/** `POST /api/rooms/:id/yjs-ticket`: a single-use ticket for `ws://HOST/yjs/<room>?token=<ticket>`. */
export const yjsTicketSchema = strictObject({ ticket: STRING, expiresAt: STRING }, ['ticket', 'expiresAt'])
