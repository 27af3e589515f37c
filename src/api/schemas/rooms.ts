import { DID_KEY, NULLABLE_STRING, PAGE_LIMIT, UCAN } from './common.ts'

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

export const roomParamsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: ROOM_ID },
} as const

export const messageParamsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'mid'],
  properties: { id: ROOM_ID, mid: ENTRY_ID },
} as const

const pageQuery = <const C>(cursor: C) =>
  ({ type: 'object', additionalProperties: false, properties: { after: cursor, limit: PAGE_LIMIT } }) as const

export const messagesQuerySchema = pageQuery(ENTRY_ID)
export const notificationsQuerySchema = pageQuery({ type: 'string', maxLength: 200 } as const)

export const createRoomBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: ROOM_API_LIMITS.maxNameLength },
    topic: { type: 'string', maxLength: ROOM_API_LIMITS.maxTopicLength },
    // Default `public`: every local principal may find and join it; `invite`: members only.
    visibility: { type: 'string', enum: ROOM_VISIBILITIES },
  },
} as const

export const shareBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['mesh', 'ucan'],
  properties: { mesh: DID_KEY, ucan: UCAN },
} as const

export const federatedDmBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['with', 'ucan'],
  properties: { with: DID_KEY, mesh: DID_KEY, ucan: UCAN },
} as const

export const inviteBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['did'],
  properties: { did: DID_KEY },
} as const

export const postMessageBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['body'],
  properties: {
    body: { type: 'string', minLength: 1, maxLength: ROOM_API_LIMITS.maxBodyBytes },
    replyTo: ENTRY_ID,
  },
} as const

export const reactionBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['emoji'],
  properties: { emoji: { type: 'string', minLength: 1, maxLength: ROOM_API_LIMITS.maxEmojiBytes } },
} as const

/** Optional: `{}`, `{reason}` or no body at all (the route checks it itself). */
export const redactBodySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { reason: { type: 'string', maxLength: ROOM_API_LIMITS.maxReasonLength } },
} as const

/** `{id}` of what a write created. */
export const createdSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: { type: 'string' } },
} as const

/** The stored record of a room. */
export const roomRecordSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name', 'topic', 'homeMesh', 'createdBy', 'createdAt'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    topic: { type: 'string' },
    homeMesh: { type: 'string' },
    createdBy: { type: 'string' },
    createdAt: { type: 'string' },
    /** Absent on records stored before visibility existed. */
    visibility: { type: 'string', enum: ROOM_VISIBILITIES },
    dm: { type: 'boolean', const: true },
    /** A room homed elsewhere: the local principal its share named. */
    admits: { type: 'string' },
  },
} as const

const listedRoomSchema = {
  ...roomRecordSchema,
  required: [...roomRecordSchema.required, 'federated'],
  properties: { ...roomRecordSchema.properties, federated: { type: 'boolean' } },
} as const

export const roomListSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['rooms'],
  properties: { rooms: { type: 'array', items: listedRoomSchema } },
} as const

export const shareViewSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['room', 'peer', 'direction', 'createdAt'],
  properties: {
    room: { type: 'string' },
    peer: { type: 'string' },
    direction: { type: 'string', enum: ['out', 'in'] },
    createdAt: { type: 'string' },
    dm: { type: 'string' },
  },
} as const

export const dmViewSchema = {
  ...shareViewSchema,
  required: [...shareViewSchema.required, 'name'],
  properties: { ...shareViewSchema.properties, name: { type: 'string' } },
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
    members: { type: 'integer' },
    messages: { type: 'integer' },
    role: { type: ['string', 'null'], enum: [...MEMBER_ROLES, null] },
    /** This mesh as rooms name it (its identity, stable across key rotations). */
    ownMesh: { type: 'string' },
    federated: { type: 'boolean' },
    shares: { type: 'array', items: shareViewSchema },
    /** The replica's Yjs state vector (base64): equal vectors mean equal replicas. */
    stateVector: { type: 'string' },
  },
} as const

export const memberSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['did', 'name', 'localId', 'mesh', 'meshName', 'role', 'tier', 'local'],
  properties: {
    did: { type: 'string' },
    /** `@local_id` or `@local_id:mesh-name`. */
    name: { type: 'string' },
    localId: { type: 'string' },
    mesh: { type: 'string' },
    meshName: { type: 'string' },
    role: { type: 'string', enum: MEMBER_ROLES },
    tier: { type: 'integer', enum: [1, 2, 3, 4] },
    local: { type: 'boolean' },
  },
} as const

export const memberListSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['members'],
  properties: { members: { type: 'array', items: memberSchema } },
} as const

export const messageSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'author', 'authorDid', 'mesh', 'body', 'mentions', 'ts', 'reactions'],
  properties: {
    id: { type: 'string' },
    /** `@local_id` for a local author, `@local_id:mesh-name` for a foreign one. */
    author: { type: 'string' },
    authorDid: { type: 'string' },
    mesh: { type: 'string' },
    body: { type: 'string' },
    mentions: { type: 'array', items: { type: 'string' } },
    ts: { type: 'number' },
    replyTo: { type: 'string' },
    redacted: { type: 'boolean', const: true },
    /** emoji → number of reactions. */
    reactions: { type: 'object', additionalProperties: { type: 'integer' } },
  },
} as const

export const messagePageSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['messages', 'nextCursor'],
  properties: { messages: { type: 'array', items: messageSchema }, nextCursor: NULLABLE_STRING },
} as const

export const notificationSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'kind', 'room', 'roomName', 'message', 'author', 'authorDid', 'mesh', 'body', 'ts'],
  properties: {
    /** Also the paging cursor. */
    id: { type: 'string' },
    kind: { type: 'string', const: 'mention' },
    room: { type: 'string' },
    roomName: { type: 'string' },
    message: { type: 'string' },
    author: { type: 'string' },
    authorDid: { type: 'string' },
    mesh: { type: 'string' },
    body: { type: 'string' },
    ts: { type: 'number' },
  },
} as const

export const notificationPageSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['notifications', 'nextCursor'],
  properties: { notifications: { type: 'array', items: notificationSchema }, nextCursor: NULLABLE_STRING },
} as const

const transferSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['entries', 'bytes', 'chunks', 'entriesDone', 'bytesDone', 'chunksDone', 'startedAt', 'doneAt'],
  properties: {
    entries: { type: 'integer' },
    bytes: { type: 'integer' },
    chunks: { type: 'integer' },
    entriesDone: { type: 'integer' },
    bytesDone: { type: 'integer' },
    chunksDone: { type: 'integer' },
    startedAt: NULLABLE_STRING,
    doneAt: NULLABLE_STRING,
  },
} as const

/** `GET /api/rooms/:id/sync`: where each peer of a shared room stands. */
export const roomSyncSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['room', 'homeMesh', 'federated', 'stateVector', 'messages', 'caughtUp', 'peers'],
  properties: {
    room: { type: 'string' },
    homeMesh: { type: 'string' },
    federated: { type: 'boolean' },
    stateVector: { type: 'string' },
    messages: { type: 'integer' },
    caughtUp: { type: 'boolean' },
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
          peer: { type: 'string' },
          name: NULLABLE_STRING,
          direction: { type: 'string', enum: ['out', 'in'] },
          link: { type: 'string', enum: ['open', 'closed'] },
          lastError: {
            type: ['object', 'null'],
            additionalProperties: false,
            required: ['code', 'message', 'at'],
            properties: { code: { type: 'string' }, message: { type: 'string' }, at: { type: 'string' } },
          },
          theirStateVector: NULLABLE_STRING,
          behind: {
            type: ['object', 'null'],
            additionalProperties: false,
            required: ['entries', 'bytes'],
            properties: { entries: { type: 'integer' }, bytes: { type: 'integer' } },
          },
          incoming: transferSchema,
          outgoing: transferSchema,
          caughtUp: { type: 'boolean' },
        },
      },
    },
  },
} as const

/** `POST /api/rooms/:id/yjs-ticket`: a single-use ticket for `ws://HOST/yjs/<room>?token=<ticket>`. */
export const yjsTicketSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['ticket', 'expiresAt'],
  properties: { ticket: { type: 'string' }, expiresAt: { type: 'string' } },
} as const
