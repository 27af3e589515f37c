// reachable by URL (SPEC §10)

import { b64url, INTEGER, NULLABLE_STRING, optionalObject, pageOf, STRING, strictObject } from './common.ts'
import { MESH_PROFILE_LIMITS, meshProfileProperties } from './mesh-profile.ts'

/**
 * The public list of meshes (served by a registry and by any node) and the registry's
 * heartbeat. The heartbeat body is a signed document whose schema is the registry's
 * (registry/heartbeat.ts: the route and `verifyHeartbeat` must refuse exactly the same
 * inputs), so it is only named here.
 */

export const MESH_STATUSES = ['online', 'idle', 'offline'] as const
export const MESH_LIST_SORTS = ['name', 'age'] as const

/** registry/mesh-list.ts MESH_LIST_LIMITS and registry/heartbeat.ts HEARTBEAT_LIMITS (a test keeps them equal). */
export const MESH_LIST_API_LIMITS = {
  maxQueryLength: 128,
  maxCursorLength: 512,
  maxMultiaddrs: 16,
  maxProtocolVersions: 16,
} as const

// Limit is matched as digits here and range-checked by pageMeshes, which owns the rules.
export const meshListQuerySchema = optionalObject({
  q: { type: 'string', maxLength: MESH_LIST_API_LIMITS.maxQueryLength },
  status: { type: 'string', enum: MESH_STATUSES },
  /** `name` (default) or `age` (oldest first; what discovery asks). */
  sort: { type: 'string', enum: MESH_LIST_SORTS },
  limit: { type: 'string', pattern: '^[0-9]{1,3}$' },
  cursor: b64url(MESH_LIST_API_LIMITS.maxCursorLength),
  // reachable by URL (SPEC §10): only meshes listing this capability
  capability: { type: 'string', minLength: 1, maxLength: MESH_PROFILE_LIMITS.capabilityMaxLength },
})

const stringList = <const N extends number>(maxItems: N) =>
  ({ type: 'array', maxItems, items: STRING }) as const

/**
 * What a heartbeat reports of a mesh (registry/heartbeat.ts) and the public list shows of
 * it: required in both.
 */
export const MESH_REPORT_FIELDS = [
  'did',
  'peerId',
  'name',
  'multiaddrs',
  'status',
  'members',
  'bots',
  'rooms',
  'version',
  'protocolVersions',
] as const

// As a response schema it also keeps anything a source adds to an item off the wire.
export const publicMeshSchema = strictObject(
  {
    did: STRING,
    name: STRING,
    peerId: STRING,
    multiaddrs: stringList(MESH_LIST_API_LIMITS.maxMultiaddrs),
    status: { type: 'string', enum: MESH_STATUSES },
    members: INTEGER,
    bots: INTEGER,
    rooms: INTEGER,
    version: STRING,
    protocolVersions: stringList(MESH_LIST_API_LIMITS.maxProtocolVersions),
    lastHeartbeat: STRING,
    firstSeen: STRING,
    ...meshProfileProperties, // reachable by URL (SPEC §10)
  },
  [...MESH_REPORT_FIELDS, 'lastHeartbeat'],
)

export const meshPageSchema = pageOf('meshes', publicMeshSchema, NULLABLE_STRING)

/** The body of `POST /api/meshes/heartbeat`: a signed heartbeat (registry/heartbeat.ts). */
export const heartbeatBodySchema = { type: 'object', additionalProperties: true } as const

export const heartbeatAcceptedSchema = strictObject(
  {
    ok: { type: 'boolean', const: true },
    status: { type: 'string', enum: MESH_STATUSES },
  },
  ['ok', 'status'],
)
