import {
  DID_KEY,
  INTEGER,
  idParams,
  NULLABLE_STRING,
  nullableObject,
  STRING,
  strictObject,
  UCAN,
} from './common.ts'

/** Connections and peers (SPEC §3): mesh to mesh, every route behind a session. */

export const connectionIdParams = idParams({ type: 'string', maxLength: 64 } as const)

const linkErrorSchema = nullableObject({ kind: STRING, code: STRING, message: STRING, at: STRING }, [
  'kind',
  'code',
  'message',
  'at',
])

// `paused`: accepted, and paused by a local human (issue 13)
export const CONNECTION_STATUSES = [
  'pending',
  'accepted',
  'declined',
  'disconnected',
  'degraded',
  'paused',
] as const

export const connectionViewSchema = strictObject(
  {
    id: STRING,
    peerDid: STRING,
    peerKeyDid: STRING,
    peerKeyFingerprint: STRING,
    peerName: NULLABLE_STRING,
    direction: { type: 'string', enum: ['inbound', 'outbound'] },
    status: { type: 'string', enum: CONNECTION_STATUSES },
    agreementVersion: INTEGER,
    lastSeen: NULLABLE_STRING,
    lastError: linkErrorSchema,
    eventsSent24h: INTEGER,
    eventsReceived24h: INTEGER,
    note: NULLABLE_STRING,
    createdAt: STRING,
    updatedAt: STRING,
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
    did: STRING,
    name: NULLABLE_STRING,
    architectDid: NULLABLE_STRING,
    keys: { type: 'array', items: STRING },
    keyFingerprint: STRING,
    multiaddrs: { type: 'array', items: STRING },
    protocolVersions: { type: 'array', items: STRING },
    lastSeen: NULLABLE_STRING,
    lastError: linkErrorSchema,
    eventsSent24h: INTEGER,
    eventsReceived24h: INTEGER,
    state: { type: 'string', enum: PEER_STATES },
    connectionId: NULLABLE_STRING,
    agreementVersion: INTEGER,
    queued: INTEGER,
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
  { id: STRING, status: { type: 'string', enum: CONNECTION_STATUSES } },
  ['id', 'status'],
)

export const connectBodySchema = strictObject(
  {
    /** A mesh did, a multiaddr, or the mesh's http(s) URL (its manifest is fetched and verified, SPEC §10). */
    target: { type: 'string', minLength: 1, maxLength: 512 },
    note: { type: 'string', maxLength: 1024 },
    ucan: UCAN,
  },
  ['target', 'ucan'],
)

/** `POST /api/connections/:id/accept|decline|disconnect|pause|resume`. */
export const actBodySchema = strictObject({ ucan: UCAN }, ['ucan'])

export const peerParamsSchema = strictObject({ did: DID_KEY }, ['did'])

export const peerRefreshBodySchema = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: { manifestUrl: { type: 'string', minLength: 1, maxLength: 2048 } },
} as const
