import { DID_KEY, optionalObject, STRING, strictObject } from './common.ts'

/**
 * Reachable by URL (SPEC §10): what a mesh says of itself beyond its addresses, in its
 * DHT record (p2p/mesh-record.ts), its registry heartbeat (registry/heartbeat.ts) and the
 * public list — its HTTP base (`http`), its manifest's URL, a description, its agents
 * (`[{name, skills}]`) and the capabilities other meshes may invoke. Every field optional
 * (older records and heartbeats have none), each bounded so a record stays under 8 KB.
 */
export const MESH_PROFILE_LIMITS = {
  urlMaxLength: 256,
  descriptionMaxLength: 280,
  maxAgents: 8,
  agentNameMaxLength: 48,
  maxSkills: 6,
  skillMaxLength: 48,
  maxCapabilities: 16,
  capabilityMaxLength: 48,
} as const

export const MESH_PROFILE_FIELDS = ['http', 'manifestUrl', 'description', 'agents', 'capabilities'] as const

// Printable text only: shown in other meshes' consoles.
const PRINTABLE = '^[^\\u0000-\\u001f\\u007f]*$'
const L = MESH_PROFILE_LIMITS
const url = {
  type: 'string',
  minLength: 8,
  maxLength: L.urlMaxLength,
  pattern: '^https?://[^\\s]+$',
} as const
const text = (maxLength: number) => ({ type: 'string', minLength: 1, maxLength, pattern: PRINTABLE }) as const

/** The profile's JSON Schema properties, shared by the record, the heartbeat and the public list. */
export const meshProfileProperties = {
  http: url,
  manifestUrl: url,
  description: { type: 'string', maxLength: L.descriptionMaxLength, pattern: PRINTABLE },
  agents: {
    type: 'array',
    maxItems: L.maxAgents,
    items: strictObject(
      {
        name: text(L.agentNameMaxLength),
        skills: { type: 'array', maxItems: L.maxSkills, items: text(L.skillMaxLength) },
      },
      ['name', 'skills'],
    ),
  },
  capabilities: { type: 'array', maxItems: L.maxCapabilities, items: text(L.capabilityMaxLength) },
} as const

/** The profile alone (every field optional, nothing else). */
export const meshProfileSchema = optionalObject(meshProfileProperties)

/** `GET /api/connections/resolve?url=`: a mesh's base URL or its manifest's URL. */
export const meshUrlQuerySchema = strictObject(
  { url: { type: 'string', minLength: 8, maxLength: 2048, pattern: '^[Hh][Tt][Tt][Pp][Ss]?://' } },
  ['url'],
)

/** What a verified manifest says of its mesh: who it is, where to dial it, what it offers. */
export const meshUrlViewSchema = strictObject(
  {
    did: DID_KEY,
    name: STRING,
    /** The URL the manifest was read from, after redirects. */
    manifestUrl: STRING,
    http: STRING,
    description: STRING,
    /** Its libp2p addresses, each ending in its peer id. */
    multiaddrs: { type: 'array', items: STRING },
    agents: {
      type: 'array',
      items: strictObject({ name: STRING, skills: { type: 'array', items: STRING } }, ['name', 'skills']),
    },
    capabilities: { type: 'array', items: STRING },
  },
  ['did', 'name', 'manifestUrl', 'multiaddrs', 'agents', 'capabilities'],
)

type ProfileOf<T> = { [K in (typeof MESH_PROFILE_FIELDS)[number]]?: K extends keyof T ? T[K] : never }

/** The profile fields `source` has (deep copies, unchecked), nothing else: for records, heartbeats and lists. */
export function pickMeshProfile<T extends object>(source: T): ProfileOf<T> {
  const out: Record<string, unknown> = {}
  for (const field of MESH_PROFILE_FIELDS) {
    const value = (source as Record<string, unknown>)[field]
    if (value === undefined) continue
    out[field] = typeof value === 'object' && value !== null ? structuredClone(value) : value
  }
  return out as ProfileOf<T>
}
