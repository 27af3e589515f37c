import { DID_KEY, idParams, NULLABLE_STRING, UCAN } from './common.ts'

/** Connections and peers (SPEC §3): mesh to mesh, every route behind a session. */

export const connectionIdParams = idParams({ type: 'string', maxLength: 64 } as const)

const linkErrorSchema = {
  type: ['object', 'null'],
  additionalProperties: false,
  required: ['kind', 'code', 'message', 'at'],
  properties: {
    kind: { type: 'string' },
    code: { type: 'string' },
    message: { type: 'string' },
    at: { type: 'string' },
  },
} as const

export const CONNECTION_STATUSES = ['pending', 'accepted', 'declined', 'disconnected', 'degraded'] as const

export const connectionViewSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'id',
    'peerDid',
    'peerKeyDid',
    'peerKeyFingerprint',
    'peerName',
    'direction',
    'status',
    'agreementVersion',
    'lastSeen',
    'lastError',
    'eventsSent24h',
    'eventsReceived24h',
    'note',
    'createdAt',
    'updatedAt',
  ],
  properties: {
    id: { type: 'string' },
    peerDid: { type: 'string' },
    peerKeyDid: { type: 'string' },
    peerKeyFingerprint: { type: 'string' },
    peerName: NULLABLE_STRING,
    direction: { type: 'string', enum: ['inbound', 'outbound'] },
    status: { type: 'string', enum: CONNECTION_STATUSES },
    agreementVersion: { type: 'integer' },
    lastSeen: NULLABLE_STRING,
    lastError: linkErrorSchema,
    eventsSent24h: { type: 'integer' },
    eventsReceived24h: { type: 'integer' },
    note: NULLABLE_STRING,
    createdAt: { type: 'string' },
    updatedAt: { type: 'string' },
  },
} as const

export const connectionListSchema = { type: 'array', items: connectionViewSchema } as const

/** The state of the latest connection with a peer, or `none`. */
export const PEER_STATES = [...CONNECTION_STATUSES, 'none'] as const

export const peerViewSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'did',
    'name',
    'architectDid',
    'keys',
    'keyFingerprint',
    'multiaddrs',
    'protocolVersions',
    'lastSeen',
    'lastError',
    'eventsSent24h',
    'eventsReceived24h',
    'state',
    'connectionId',
    'agreementVersion',
    'queued',
  ],
  properties: {
    did: { type: 'string' },
    name: NULLABLE_STRING,
    architectDid: NULLABLE_STRING,
    keys: { type: 'array', items: { type: 'string' } },
    keyFingerprint: { type: 'string' },
    multiaddrs: { type: 'array', items: { type: 'string' } },
    protocolVersions: { type: 'array', items: { type: 'string' } },
    lastSeen: NULLABLE_STRING,
    lastError: linkErrorSchema,
    eventsSent24h: { type: 'integer' },
    eventsReceived24h: { type: 'integer' },
    state: { type: 'string', enum: PEER_STATES },
    connectionId: NULLABLE_STRING,
    agreementVersion: { type: 'integer' },
    queued: { type: 'integer' },
  },
} as const

export const peerListSchema = { type: 'array', items: peerViewSchema } as const

/** `202 {id, status}`: this mesh's state changed; the peer is told through the outbox. */
export const connectionAcceptedSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'status'],
  properties: { id: { type: 'string' }, status: { type: 'string', enum: CONNECTION_STATUSES } },
} as const

export const connectBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['target', 'ucan'],
  properties: {
    /** A mesh did or a multiaddr. */
    target: { type: 'string', minLength: 1, maxLength: 512 },
    note: { type: 'string', maxLength: 1024 },
    ucan: UCAN,
  },
} as const

/** `POST /api/connections/:id/accept|decline|disconnect`. */
export const actBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['ucan'],
  properties: { ucan: UCAN },
} as const

export const peerParamsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['did'],
  properties: { did: DID_KEY },
} as const

export const peerRefreshBodySchema = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: { manifestUrl: { type: 'string', minLength: 1, maxLength: 2048 } },
} as const
