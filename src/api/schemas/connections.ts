import { DID_KEY, idParams, NULLABLE_STRING, strictObject, UCAN } from './common.ts'

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

export const connectionViewSchema = strictObject(
  {
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
  [
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
)

export const connectionListSchema = { type: 'array', items: connectionViewSchema } as const

/** The state of the latest connection with a peer, or `none`. */
export const PEER_STATES = [...CONNECTION_STATUSES, 'none'] as const

export const peerViewSchema = strictObject(
  {
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
  [
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
)

export const peerListSchema = { type: 'array', items: peerViewSchema } as const

/** `202 {id, status}`: this mesh's state changed; the peer is told through the outbox. */
export const connectionAcceptedSchema = strictObject(
  { id: { type: 'string' }, status: { type: 'string', enum: CONNECTION_STATUSES } },
  ['id', 'status'],
)

export const connectBodySchema = strictObject(
  {
    /** A mesh did or a multiaddr. */
    target: { type: 'string', minLength: 1, maxLength: 512 },
    note: { type: 'string', maxLength: 1024 },
    ucan: UCAN,
  },
  ['target', 'ucan'],
)

/** `POST /api/connections/:id/accept|decline|disconnect`. */
export const actBodySchema = strictObject({ ucan: UCAN }, ['ucan'])

export const peerParamsSchema = strictObject({ did: DID_KEY }, ['did'])

export const peerRefreshBodySchema = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: { manifestUrl: { type: 'string', minLength: 1, maxLength: 2048 } },
} as const
